package money

import (
	"github.com/shopspring/decimal"
)

// Acc is an exact running sum of decimals. Its Decimal is what adding the
// same figures in the same order with Decimal.Add, starting from the zero
// Decimal{}, gives: the same value and the same exponent (the smallest of 0
// and every figure's). While every figure's coefficient has at most 18
// digits and the sum fits, it is kept as an int64 coefficient (no
// allocation); from the first figure that does not fit, or on overflow, it
// continues on decimals. The zero Acc is an empty sum.
type Acc struct {
	c   int64 // the sum's coefficient at exponent e, while !dec
	e   int32 // min(0, exponents added so far)
	dec bool  // d holds the sum; c and e are no longer used
	d   decimal.Decimal
}

// Add adds x to the sum.
func (a *Acc) Add(x decimal.Decimal) {
	if !a.dec {
		if a.add64(x) {
			return
		}
		a.d, a.dec = decimal.New(a.c, a.e), true
	}
	a.d = a.d.Add(x)
}

// add64 adds x on the int64 coefficient; false (a unchanged) when x or the
// sum does not fit.
func (a *Acc) add64(x decimal.Decimal) bool {
	if x.NumDigits() > 18 {
		return false
	}
	e := min(a.e, x.Exponent())
	c, ok := ShiftInt64(a.c, int64(a.e)-int64(e))
	if !ok {
		return false
	}
	v, ok := ShiftInt64(x.CoefficientInt64(), int64(x.Exponent())-int64(e))
	if !ok {
		return false
	}
	s := c + v
	if (v > 0 && s < c) || (v < 0 && s > c) {
		return false
	}
	a.c, a.e = s, e
	return true
}

// Decimal is the sum.
func (a *Acc) Decimal() decimal.Decimal {
	if a.dec {
		return a.d
	}
	return decimal.New(a.c, a.e)
}
