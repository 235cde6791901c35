package money

import (
	"math"
	"math/bits"

	"github.com/shopspring/decimal"
)

// MinorUnits is d × 10^exp as an int64 when that is an integer and d's
// coefficient has at most 18 digits; false when it cannot be sure (the
// caller then takes the exact decimal path). With exp a currency's exponent
// it is the currency's minor units of d, without allocating.
func MinorUnits(d decimal.Decimal, exp int32) (int64, bool) {
	if d.NumDigits() > 18 {
		return 0, false
	}
	return ShiftInt64(d.CoefficientInt64(), int64(d.Exponent())+int64(exp))
}

// ShiftInt64 is c × 10^k as an int64: for k < 0 only when 10^-k divides c
// (the result is exact), for k > 0 only when it fits (and is not
// MinInt64); false otherwise. It is the one int64 fast path of the money
// figures (allocation, sums, minor units, the settle index's records).
func ShiftInt64(c int64, k int64) (int64, bool) {
	switch {
	case c == 0 || k == 0:
		return c, true
	case k < 0:
		if k < -18 {
			return 0, false
		}
		p := int64(pow10u[-k])
		if c%p != 0 {
			return 0, false
		}
		return c / p, true
	case k > 18 || c == math.MinInt64:
		return 0, false
	}
	neg := c < 0
	if neg {
		c = -c
	}
	hi, lo := bits.Mul64(uint64(c), pow10u[k])
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(lo), true
	}
	return int64(lo), true
}

var pow10u = [20]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}
