package settle

import (
	"encoding/binary"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
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
	v, ok := money.ShiftInt64(e.Net.CoefficientInt64(), int64(e.Net.Exponent())+int64(exp)) // digits: decScale
	if !ok {
		return dst[:start], false
	}
	dst = binary.AppendVarint(dst, v)
	dst = binary.AppendUvarint(dst, uint64(len(e.Shares)))
	for _, s := range e.Shares {
		dst = appendLVs(dst, s.Party)
		v, ok := money.ShiftInt64(s.Amount.CoefficientInt64(), int64(s.Amount.Exponent())+int64(exp))
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
