package money

import "github.com/shopspring/decimal"

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
