package settle

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/store"
)

// appendEntryDedupV2 appends exactly appendDedupV2(&rec, rs) for rec =
// entryDedup(e) (whose record hash is h = e.Tx.Hash()), computed from the
// entry's decimals: no record, no figure strings parsed back. It returns
// dst unchanged in length and false whenever it cannot be sure, and the
// caller then takes the record path: a figure of more than 18 digits, an
// amount not in an int64 of minor units, or decimal formatting settings
// other than the defaults the record's strings rely on.
func appendEntryDedupV2(dst []byte, e *store.Entry, h [32]byte, rs uint64) ([]byte, bool) {
	if !decimal.TrimTrailingZeros || decimal.UseScientificNotation {
		return dst, false
	}
	exp, ok := decScale(e.Net)
	if !ok {
		return dst, false
	}
	for _, s := range e.Shares {
		sc, ok := decScale(s.Amount)
		if !ok {
			return dst, false
		}
		exp = max(exp, sc)
	}
	if exp > dedupMaxExp {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, dedupTagV2, dedupMinor|dedupHasNet)
	dst = binary.AppendUvarint(dst, uint64(e.Partition))
	dst = binary.AppendUvarint(dst, e.Index)
	dst = appendLV(dst, h[:])
	dst = appendLVs(dst, e.Tx.Currency.Code)
	dst = binary.AppendUvarint(dst, rs)
	dst = append(dst, byte(exp))
	v, ok := decMinor(e.Net, exp)
	if !ok {
		return dst[:start], false
	}
	dst = binary.AppendVarint(dst, v)
	dst = binary.AppendUvarint(dst, uint64(len(e.Shares)))
	for _, s := range e.Shares {
		dst = appendLVs(dst, s.Party)
		v, ok := decMinor(s.Amount, exp)
		if !ok {
			return dst[:start], false
		}
		dst = binary.AppendVarint(dst, v)
	}
	return dst, true
}

// decScale is the number of decimals of d.String() (trailing zeros
// trimmed), for a coefficient of at most 18 digits.
func decScale(d decimal.Decimal) (int, bool) {
	if d.NumDigits() > 18 {
		return 0, false
	}
	c, e := d.CoefficientInt64(), d.Exponent()
	if c == 0 || e >= 0 {
		return 0, true
	}
	for e < 0 && c%10 == 0 {
		c /= 10
		e++
	}
	return int(-e), true
}

// decMinor is d × 10^exp, an integer when exp ≥ decScale(d), if its
// magnitude is at most MaxInt64 (as minorUnits requires).
func decMinor(d decimal.Decimal, exp int) (int64, bool) {
	c := d.CoefficientInt64() // |c| < 10^18: decScale checked the digits
	k := int64(d.Exponent()) + int64(exp)
	switch {
	case c == 0:
		return 0, true
	case k < 0:
		if -k > 18 {
			return 0, false
		}
		p := int64(pow10[-k])
		if c%p != 0 {
			return 0, false
		}
		return c / p, true
	case k > 19:
		return 0, false
	}
	neg := c < 0
	if neg {
		c = -c
	}
	hi, lo := bits.Mul64(uint64(c), pow10[k])
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(lo), true
	}
	return int64(lo), true
}

var pow10 = [20]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}
