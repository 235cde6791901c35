package money

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

// allocScale is Allocate's common weight scale (the most decimals of any weight).
func allocScale(weights []decimal.Decimal) int32 {
	var scale int32
	for _, w := range weights {
		if e := w.Exponent(); e < 0 && -e > scale {
			scale = -e
		}
	}
	return scale
}

// TestAllocateInt64MatchesBig: the uint64 path gives exactly the parts of the
// math/big path (same values, same exponent, same String) on random input
// with every method and rounding, including amounts and weights near the
// limits of the fast path; input that does not fit must say so, not guess.
func TestAllocateInt64MatchesBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 0xa110c))
	codes := []string{"JPY", "EUR", "KWD", "CLF"}
	methods := []Allocation{LargestRemainder, RemainderTo, TopDown}
	modes := []Rounding{HalfUp, HalfEven, Down}
	fast := 0
	const iterations = 20000
	for it := range iterations {
		cur := mustCur(t, codes[rng.IntN(len(codes))])
		var amount decimal.Decimal
		switch rng.IntN(4) {
		case 0:
			amount = decimal.New(rng.Int64N(20)-10, -cur.Exponent)
		case 1:
			amount = decimal.New(rng.Int64()>>rng.IntN(63), -cur.Exponent) // up to 2^63: some fall back
			if rng.IntN(2) == 0 {
				amount = amount.Neg()
			}
		default:
			amount = decimal.New(rng.Int64N(2_000_000_000)-1_000_000_000, -cur.Exponent)
		}
		if rng.IntN(8) == 0 { // trailing zeros beyond the currency: still fits
			amount = decimal.NewFromBigInt(new(big.Int).Mul(amount.Coefficient(), big.NewInt(10)), amount.Exponent()-1)
		}
		n := 1 + rng.IntN(12)
		weights := make([]decimal.Decimal, n)
		positive := false
		for i := range weights {
			switch rng.IntN(8) {
			case 0: // zero weight
			case 1:
				weights[i] = decimal.New(rng.Int64()>>rng.IntN(63), -int32(rng.IntN(20))) // huge: may overflow the sum
			case 2:
				weights[i] = decimal.New(rng.Int64N(100), int32(rng.IntN(22))) // positive exponent
			case 3, 4:
				weights[i] = decimal.New(rng.Int64N(5), -int32(rng.IntN(2))) // small: exact halves and ties
			default:
				weights[i] = decimal.New(rng.Int64N(100_000), -int32(rng.IntN(5)))
			}
			positive = positive || weights[i].IsPositive()
		}
		if !positive {
			weights[rng.IntN(n)] = decimal.NewFromInt(1)
		}
		method, mode, rem := methods[rng.IntN(len(methods))], modes[rng.IntN(len(modes))], rng.IntN(n)
		scale := allocScale(weights)
		want, err := allocateBig(amount, cur, weights, scale, method, mode, rem)
		if err != nil {
			t.Fatalf("iteration %d: allocateBig(%s %s, %v): %v", it, amount, cur.Code, weights, err)
		}
		got, ok := allocateInt64(amount, cur, weights, scale, method, mode, rem)
		if !ok {
			continue
		}
		fast++
		for i := range want {
			if got[i].Exponent() != want[i].Exponent() || !got[i].Equal(want[i]) || got[i].String() != want[i].String() {
				t.Fatalf("iteration %d: %s %s by %v (%s, %s, rem %d): uint64 path %v, math/big %v", it, amount, cur.Code, weights, method, mode, rem, got, want)
			}
		}
		// Allocate itself must agree too (it takes the fast path here).
		all, err := Allocate(amount, cur, weights, method, mode, rem)
		if err != nil || len(all) != n {
			t.Fatalf("iteration %d: Allocate: %v %v", it, all, err)
		}
		for i := range all {
			if !all[i].Equal(want[i]) {
				t.Fatalf("iteration %d: Allocate %v, math/big %v", it, all, want)
			}
		}
	}
	if fast < iterations/2 {
		t.Fatalf("only %d of %d inputs took the uint64 path: the test does not exercise it", fast, iterations)
	}
	t.Logf("%d of %d inputs on the uint64 path", fast, iterations)
}

// TestAllocateInt64Refuses: input beyond the fast path's range is refused,
// never approximated.
func TestAllocateInt64Refuses(t *testing.T) {
	eur := Currency{Code: "EUR", Exponent: 2}
	for _, tc := range []struct {
		name    string
		amount  decimal.Decimal
		weights []decimal.Decimal
	}{
		{"amount over 2^62 units", decimal.New(1<<62, -2), decs("1", "1")},
		{"19-digit amount", decimal.RequireFromString("1234567890123456789"), decs("1")},
		{"weight with positive exponent 30", decimal.NewFromInt(1), decs("1e30", "1")},
		{"weights summing past 2^64", decimal.NewFromInt(1), decs("9000000000000000000", "9000000000000000000", "9000000000000000000")},
		{"19-digit weight", decimal.NewFromInt(1), decs("1234567890123456789", "1")},
	} {
		if _, ok := allocateInt64(tc.amount, eur, tc.weights, allocScale(tc.weights), LargestRemainder, "", -1); ok {
			t.Errorf("%s: the uint64 path accepted it", tc.name)
		}
	}
}

func BenchmarkAllocate(b *testing.B) {
	eur := Currency{Code: "EUR", Exponent: 2}
	amount := decimal.RequireFromString("-123.45")
	weights := decs("12.5", "7", "80.5")
	b.Run("largest_remainder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Allocate(amount, eur, weights, LargestRemainder, "", -1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("math_big", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := allocateBig(amount, eur, weights, 1, LargestRemainder, "", -1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzAllocateInt64: for any amount, weights (as coefficient/exponent pairs
// from the input bytes), method, rounding and remainder party, the uint64
// path either refuses or gives exactly the math/big parts.
func FuzzAllocateInt64(f *testing.F) {
	f.Add(int64(12345), uint8(2), []byte{50, 0, 30, 0, 20, 0}, uint8(0), uint8(0), uint8(2))
	f.Add(int64(-5), uint8(0), []byte{1, 0, 1, 0, 0, 0}, uint8(1), uint8(1), uint8(0))
	f.Add(int64(1)<<61, uint8(3), []byte{255, 3, 7, 1}, uint8(2), uint8(2), uint8(1))
	f.Fuzz(func(t *testing.T, units int64, curExp uint8, wb []byte, m, r, rem uint8) {
		cur := Currency{Code: "T", Exponent: int32(curExp % 5)}
		if len(wb) < 2 || len(wb) > 2*MaxParts {
			t.Skip()
		}
		weights := make([]decimal.Decimal, len(wb)/2)
		positive := false
		for i := range weights {
			weights[i] = decimal.New(int64(wb[2*i])*int64(wb[2*i]), int32(wb[2*i+1]%24)-12)
			positive = positive || weights[i].IsPositive()
		}
		if !positive {
			t.Skip()
		}
		method := []Allocation{LargestRemainder, RemainderTo, TopDown}[m%3]
		mode := []Rounding{HalfUp, HalfEven, Down}[r%3]
		remIdx := int(rem) % len(weights)
		amount := decimal.New(units, -cur.Exponent)
		scale := allocScale(weights)
		want, err := allocateBig(amount, cur, weights, scale, method, mode, remIdx)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := allocateInt64(amount, cur, weights, scale, method, mode, remIdx)
		if !ok {
			return
		}
		for i := range want {
			if got[i].Exponent() != want[i].Exponent() || !got[i].Equal(want[i]) {
				t.Fatalf("%s by %v (%s, %s, rem %d): uint64 path %v, math/big %v", amount, weights, method, mode, remIdx, got, want)
			}
		}
	})
}
