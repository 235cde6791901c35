package money

import (
	"github.com/shopspring/decimal"
)

// Share is one party's part of a transaction, signed: positive is money the
// party earns, negative is money it bears.
type Share struct {
	Party  string
	Amount decimal.Decimal
}

// Sum adds the shares' amounts.
func Sum(shares []Share) decimal.Decimal {
	s := decimal.Zero
	for _, x := range shares {
		s = s.Add(x.Amount)
	}
	return s
}

// SumEquals reports whether the shares' amounts sum exactly to want:
// Sum(shares).Equal(want), computed on int64 coefficients aligned to the
// smallest exponent when every figure fits (no allocation), with decimals
// otherwise.
func SumEquals(shares []Share, want decimal.Decimal) bool {
	if eq, ok := sumEqualsInt64(shares, want); ok {
		return eq
	}
	return Sum(shares).Equal(want)
}

func sumEqualsInt64(shares []Share, want decimal.Decimal) (eq, ok bool) {
	emin := want.Exponent()
	for _, s := range shares {
		emin = min(emin, s.Amount.Exponent())
	}
	w, ok := MinorUnits(want, -emin) // the coefficient at exponent emin
	if !ok {
		return false, false
	}
	var sum int64
	for _, s := range shares {
		v, ok := MinorUnits(s.Amount, -emin)
		if !ok {
			return false, false
		}
		t := sum + v
		if (v > 0 && t < sum) || (v < 0 && t > sum) {
			return false, false // overflow: decimals decide
		}
		sum = t
	}
	return sum == w, true
}
