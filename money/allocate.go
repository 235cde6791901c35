package money

import (
	"fmt"
	"math/big"
	"sort"

	"github.com/shopspring/decimal"
)

// Allocation names how an amount is split into parts that sum exactly to it.
// A rule always names its allocation; there is no default.
type Allocation string

const (
	// LargestRemainder floors every exact share to the minor unit, then gives
	// the leftover units one each to the largest fractional parts; equal
	// fractional parts go to the party declared first.
	// 15 JPY at 80/8/12 → 12, 1, 2.
	LargestRemainder Allocation = "largest_remainder"
	// RemainderTo rounds every share but one with the named Rounding; the
	// remainder party gets the amount minus the sum of the others.
	// 0.05 EUR at 50/30/20, rounding down, remainder to the third → 0.02, 0.01, 0.02.
	RemainderTo Allocation = "remainder_to"
	// TopDown floors every share, then gives the leftover units one each in
	// declaration order, skipping parties whose weight is zero.
	// 15 JPY at 80/8/12 → 13, 1, 1.
	TopDown Allocation = "top_down"
)

// MaxParts bounds the number of parts one Allocate call splits into.
const MaxParts = 1024

// Valid reports whether a is one of the named allocation methods.
func (a Allocation) Valid() bool {
	switch a {
	case LargestRemainder, RemainderTo, TopDown:
		return true
	}
	return false
}

// ParseAllocation returns the allocation method named s
// ("largest_remainder", "remainder_to", "top_down").
func ParseAllocation(s string) (Allocation, error) {
	a := Allocation(s)
	if !a.Valid() {
		return "", fmt.Errorf("unknown allocation %q (use %q, %q or %q)", s, LargestRemainder, RemainderTo, TopDown)
	}
	return a, nil
}

// Allocate splits amount into len(weights) parts in proportion to weights, in
// whole minor units of cur, with the named method. The parts always sum
// exactly to amount.
//
// Weights are relative (percents, stream counts, "1" for equal thirds): part i
// is exactly amount × weights[i] / Σ weights before rounding; they must be ≥ 0
// with a positive sum. A negative amount is split as its absolute value and
// every part negated, so a reversal mirrors the original and nothing is
// floored toward −∞.
//
// rounding is used only by RemainderTo (for every part except remainderIdx);
// the other methods floor by definition and ignore it, but a non-empty invalid
// mode is still an error. remainderIdx is the index of the remainder party for
// RemainderTo and ignored otherwise (pass −1). Under RemainderTo the remainder
// party's part can exceed its own proportional share, and with a tiny weight
// it can even take the opposite sign of amount when the others round up: that
// is what "gets amount − Σ others" means.
//
// All arithmetic is exact integer arithmetic on minor units: in uint64 with
// 128-bit products (allocateInt64) when the minor units and the scaled
// weights fit, else in math/big; both give the same parts.
// Bad input returns an error; a sum that does not match is a bug and panics.
func Allocate(amount decimal.Decimal, cur Currency, weights []decimal.Decimal, method Allocation, rounding Rounding, remainderIdx int) ([]decimal.Decimal, error) {
	switch {
	case !method.Valid():
		return nil, fmt.Errorf("allocate: unknown allocation %q", string(method))
	case rounding != "" && !rounding.Valid():
		return nil, fmt.Errorf("allocate: unknown rounding %q", string(rounding))
	case method == RemainderTo && rounding == "":
		return nil, fmt.Errorf("allocate: %s needs a rounding mode", RemainderTo)
	case method == RemainderTo && (remainderIdx < 0 || remainderIdx >= len(weights)):
		return nil, fmt.Errorf("allocate: remainder index %d out of range for %d parts", remainderIdx, len(weights))
	case len(weights) == 0:
		return nil, fmt.Errorf("allocate: no parts")
	case len(weights) > MaxParts:
		return nil, fmt.Errorf("allocate: %d parts exceed the limit of %d", len(weights), MaxParts)
	case cur.Exponent < 0:
		return nil, fmt.Errorf("allocate: currency %q has negative exponent %d", cur.Code, cur.Exponent)
	case !cur.Fits(amount):
		return nil, fmt.Errorf("allocate: %s has more than %d decimals for %s", amount, cur.Exponent, cur.Code)
	}

	// Scale the weights to integers with a common factor 10^scale.
	var scale int32
	for i, w := range weights {
		if w.IsNegative() {
			return nil, fmt.Errorf("allocate: weight %d is negative (%s)", i, w)
		}
		if e := w.Exponent(); e < 0 && -e > scale {
			scale = -e
		}
	}
	if out, ok := allocateInt64(amount, cur, weights, scale, method, rounding, remainderIdx); ok {
		return out, nil
	}
	return allocateBig(amount, cur, weights, scale, method, rounding, remainderIdx)
}

// allocateBig is Allocate's arithmetic in math/big, for any validated input.
func allocateBig(amount decimal.Decimal, cur Currency, weights []decimal.Decimal, scale int32, method Allocation, rounding Rounding, remainderIdx int) ([]decimal.Decimal, error) {
	ws := make([]*big.Int, len(weights))
	total := new(big.Int)
	for i, w := range weights {
		ws[i] = w.Shift(scale).BigInt() // exact: scale covers every weight's decimals
		total.Add(total, ws[i])
	}
	if total.Sign() == 0 {
		return nil, fmt.Errorf("allocate: weights sum to zero")
	}

	units := amount.Abs().Shift(cur.Exponent).BigInt() // exact: amount fits cur
	parts := make([]*big.Int, len(weights))
	rems := make([]*big.Int, len(weights))
	given := new(big.Int)
	for i, w := range ws {
		num := new(big.Int).Mul(units, w)
		parts[i], rems[i] = new(big.Int).QuoRem(num, total, new(big.Int))
	}

	switch method {
	case LargestRemainder:
		for _, p := range parts {
			given.Add(given, p)
		}
		left := new(big.Int).Sub(units, given).Int64() // < len(weights): each floor loses < 1 unit
		order := make([]int, 0, len(weights))
		for i, r := range rems {
			if r.Sign() > 0 {
				order = append(order, i)
			}
		}
		sort.SliceStable(order, func(a, b int) bool { return rems[order[a]].Cmp(rems[order[b]]) > 0 })
		if left > int64(len(order)) {
			panic(fmt.Sprintf("money: largest remainder has %d units left for %d fractional parts", left, len(order)))
		}
		for _, i := range order[:left] {
			parts[i].Add(parts[i], big.NewInt(1))
		}
	case TopDown:
		for _, p := range parts {
			given.Add(given, p)
		}
		left := new(big.Int).Sub(units, given).Int64()
		for i := 0; i < len(parts) && left > 0; i++ {
			if ws[i].Sign() > 0 {
				parts[i].Add(parts[i], big.NewInt(1))
				left--
			}
		}
		if left != 0 {
			panic(fmt.Sprintf("money: top-down has %d units left after one pass", left))
		}
	case RemainderTo:
		twice := new(big.Int)
		for i := range parts {
			if i == remainderIdx {
				continue
			}
			twice.Lsh(rems[i], 1)
			c := twice.Cmp(total)
			switch {
			case rounding == HalfUp && c >= 0,
				rounding == HalfEven && (c > 0 || c == 0 && parts[i].Bit(0) == 1):
				parts[i].Add(parts[i], big.NewInt(1))
			}
			given.Add(given, parts[i])
		}
		parts[remainderIdx] = new(big.Int).Sub(units, given)
	}

	out := make([]decimal.Decimal, len(parts))
	sum := decimal.Zero
	for i, p := range parts {
		out[i] = decimal.NewFromBigInt(p, -cur.Exponent)
		if amount.IsNegative() {
			out[i] = out[i].Neg()
		}
		sum = sum.Add(out[i])
	}
	if !sum.Equal(amount) {
		panic(fmt.Sprintf("money: %s allocation of %s %s summed to %s", method, amount, cur.Code, sum))
	}
	return out, nil
}
