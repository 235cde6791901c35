package money

import (
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/shopspring/decimal"
)

// allocateInt64 is Allocate's arithmetic on uint64 minor units, for input
// whose minor units and weights (scaled by 10^scale) fit: |amount| ≤ 2^62
// minor units, every scaled weight and their sum < 2^64. Products are
// 128-bit (bits.Mul64) and divisions bits.Div64, so every share is the exact
// same floor and remainder the math/big path computes; false means "does not
// fit, use math/big". The caller has validated the input (Allocate's checks).
func allocateInt64(amount decimal.Decimal, cur Currency, weights []decimal.Decimal, scale int32, method Allocation, rounding Rounding, remainderIdx int) ([]decimal.Decimal, bool) {
	m, ok := MinorUnits(amount, cur.Exponent)
	if !ok {
		return nil, false
	}
	neg := m < 0
	if neg {
		m = -m
	}
	if m > math.MaxInt64/2 { // headroom: RemainderTo's parts can exceed units by < len(weights)
		return nil, false
	}
	units := uint64(m)
	n := len(weights)
	var wsBuf, partsBuf, remsBuf [8]uint64
	ws, parts, rems := wsBuf[:0], partsBuf[:0], remsBuf[:0]
	var total uint64
	for _, w := range weights {
		if w.NumDigits() > 18 {
			return nil, false
		}
		k := w.Exponent() + scale // ≥ 0: scale covers every weight's decimals
		if k > 19 {
			return nil, false
		}
		hi, v := bits.Mul64(uint64(w.CoefficientInt64()), pow10u[k]) // ≥ 0: weights checked non-negative
		var carry uint64
		if total, carry = bits.Add64(total, v, 0); hi != 0 || carry != 0 {
			return nil, false
		}
		ws = append(ws, v)
	}
	if total == 0 {
		return nil, false // Allocate reports it
	}
	for _, w := range ws {
		hi, lo := bits.Mul64(units, w)
		q, r := bits.Div64(hi, lo, total) // hi < total: w ≤ total, so q ≤ units
		parts, rems = append(parts, q), append(rems, r)
	}
	var given uint64
	switch method {
	case LargestRemainder:
		for _, p := range parts {
			given += p
		}
		left := units - given // < n: each floor loses < 1 unit
		var orderBuf [8]int
		order := orderBuf[:0]
		for i, r := range rems {
			if r > 0 {
				order = append(order, i)
			}
		}
		slices.SortStableFunc(order, func(a, b int) int { // largest remainder first, ties in declaration order
			switch {
			case rems[a] > rems[b]:
				return -1
			case rems[a] < rems[b]:
				return 1
			}
			return 0
		})
		if left > uint64(len(order)) {
			panic(fmt.Sprintf("money: largest remainder has %d units left for %d fractional parts", left, len(order)))
		}
		for _, i := range order[:left] {
			parts[i]++
		}
	case TopDown:
		for _, p := range parts {
			given += p
		}
		left := units - given
		for i := 0; i < n && left > 0; i++ {
			if ws[i] > 0 {
				parts[i]++
				left--
			}
		}
		if left != 0 {
			panic(fmt.Sprintf("money: top-down has %d units left after one pass", left))
		}
	}
	out := make([]decimal.Decimal, n)
	var sum int64
	for i, p := range parts {
		v := int64(p)
		if method == RemainderTo {
			if i == remainderIdx {
				continue
			}
			// Round up when the remainder is at least half of total
			// (HalfUp), or more than half, or exactly half of an odd part
			// (HalfEven): r ≥ total − r ⇔ 2r ≥ total, without overflow.
			r, rest := rems[i], total-rems[i]
			if rounding == HalfUp && r >= rest || rounding == HalfEven && (r > rest || r == rest && p&1 == 1) {
				v++
			}
		}
		sum += v
		if neg {
			v = -v
		}
		out[i] = decimal.New(v, -cur.Exponent)
	}
	if method == RemainderTo {
		v := int64(units) - sum // can be negative: "gets amount − Σ others"
		sum += v
		if neg {
			v = -v
		}
		out[remainderIdx] = decimal.New(v, -cur.Exponent)
	}
	if sum != int64(units) {
		panic(fmt.Sprintf("money: %s allocation of %s %s summed to %d minor units", method, amount, cur.Code, sum))
	}
	return out, true
}
