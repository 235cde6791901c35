package rules

import (
	"fmt"
	"math/big"
	"sort"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
)

// Reverse computes the shares of a rollback or refund of amount against a
// parent whose recorded shares are parent, summing to ±parentAbs. Rules are not
// consulted: a reversal replays the parent's recorded allocation even if the
// rules changed since.
//
// A full reversal (amount == parentAbs) is the exact negation of every share.
// A partial reversal takes the fraction q = amount/parentAbs of every share,
// truncated toward zero to the minor unit, and gives the leftover units one
// each to the largest truncated fractions (ties to the earlier share): the
// shares sum exactly to −Σ parent × q, and no |share| exceeds the parent's.
// The order of parent is kept.
//
// For successive partial reversals, pass what is left of the parent (its
// shares plus every earlier reversal's shares, and the remaining absolute
// amount), so the reversals of a party never exceed its original share.
//
// Errors: amount < 0, parent shares that do not fit cur or do not sum to
// ±parentAbs, and ErrOverReversal when amount > parentAbs.
func Reverse(parent []money.Share, parentAbs, amount decimal.Decimal, cur money.Currency) ([]money.Share, error) {
	switch {
	case amount.IsNegative():
		return nil, fmt.Errorf("reverse: negative amount %s", amount)
	case parentAbs.IsNegative():
		return nil, fmt.Errorf("reverse: negative parent amount %s", parentAbs)
	case cur.Exponent < 0 || !cur.Fits(amount) || !cur.Fits(parentAbs):
		return nil, fmt.Errorf("reverse: %s or %s does not fit %s", amount, parentAbs, cur.Code)
	case amount.GreaterThan(parentAbs):
		return nil, fmt.Errorf("reverse %s of %s %s: %w", amount, parentAbs, cur.Code, ErrOverReversal)
	case len(parent) > money.MaxParts:
		return nil, fmt.Errorf("reverse: %d parent shares exceed %d", len(parent), money.MaxParts)
	}
	sum := money.Sum(parent)
	if !sum.Abs().Equal(parentAbs) {
		return nil, fmt.Errorf("reverse: parent shares sum to %s, not ±%s", sum, parentAbs)
	}
	for _, s := range parent {
		if !cur.Fits(s.Amount) {
			return nil, fmt.Errorf("reverse: parent share %s of %s does not fit %s", s.Amount, s.Party, cur.Code)
		}
	}
	out := make([]money.Share, len(parent))
	if amount.Equal(parentAbs) {
		for i, s := range parent {
			out[i] = money.Share{Party: s.Party, Amount: s.Amount.Neg()}
		}
		return out, nil
	}

	// Work in minor units: e_i = −s_i × a / P exactly, as a quotient and a
	// remainder truncated toward zero (big.Int.QuoRem truncates).
	a := amount.Shift(cur.Exponent).BigInt()
	pAbs := parentAbs.Shift(cur.Exponent).BigInt() // > 0: amount < parentAbs
	target := new(big.Int).Mul(sum.Shift(cur.Exponent).BigInt(), a)
	target.Neg(target).Quo(target, pAbs) // exact: |Σ s_i| == P, so Σ s_i × a / P == ±a
	parts := make([]*big.Int, len(parent))
	rems := make([]*big.Int, len(parent))
	given := new(big.Int)
	for i, s := range parent {
		num := new(big.Int).Mul(s.Amount.Shift(cur.Exponent).BigInt(), a)
		num.Neg(num)
		parts[i], rems[i] = new(big.Int).QuoRem(num, pAbs, new(big.Int))
		given.Add(given, parts[i])
	}
	// The leftover units have the sign of the target; only shares whose exact
	// part has that sign and a fraction can take one, one unit each, which
	// moves them to the ceiling of their |exact| part, never past |s_i|.
	left := new(big.Int).Sub(target, given)
	sign := left.Sign()
	n := new(big.Int).Abs(left).Int64()
	var order []int
	for i, r := range rems {
		if r.Sign() == sign && sign != 0 {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(x, y int) bool {
		return new(big.Int).Abs(rems[order[x]]).Cmp(new(big.Int).Abs(rems[order[y]])) > 0
	})
	if n > int64(len(order)) {
		panic(fmt.Sprintf("rules: reversal has %d units left for %d fractional shares", n, len(order)))
	}
	for _, i := range order[:n] {
		parts[i].Add(parts[i], big.NewInt(int64(sign)))
	}
	total := decimal.Zero
	for i, s := range parent {
		out[i] = money.Share{Party: s.Party, Amount: decimal.NewFromBigInt(parts[i], -cur.Exponent)}
		if out[i].Amount.Abs().GreaterThan(s.Amount.Abs()) || out[i].Amount.Sign()*s.Amount.Sign() > 0 {
			panic(fmt.Sprintf("rules: reversal share %s of %s exceeds or has the sign of the parent's %s", out[i].Amount, s.Party, s.Amount))
		}
		total = total.Add(out[i].Amount)
	}
	if want := decimal.NewFromBigInt(target, -cur.Exponent); !total.Equal(want) {
		panic(fmt.Sprintf("rules: reversal shares sum to %s, want %s", total, want))
	}
	return out, nil
}
