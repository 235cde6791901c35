package money

import (
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

// TestSumEqualsMatchesSum: SumEquals agrees with Sum(shares).Equal(want) on
// random shares at mixed exponents, sums that match exactly, are off by one
// unit, overflow an int64 or have 19-digit coefficients.
func TestSumEqualsMatchesSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 0x5ee))
	equal, fast := 0, 0
	for it := range 20000 {
		n := rng.IntN(6)
		shares := make([]Share, n)
		for i := range shares {
			var c int64
			switch rng.IntN(6) {
			case 0:
				c = rng.Int64() // near the int64 limit: overflows when aligned or summed
			case 1:
				c = 0
			default:
				c = rng.Int64N(2_000_000) - 1_000_000
			}
			if rng.IntN(2) == 0 {
				c = -c
			}
			shares[i] = Share{Party: "p", Amount: decimal.New(c, -int32(rng.IntN(6)))}
		}
		want := Sum(shares)
		switch rng.IntN(4) {
		case 0:
			want = want.Add(decimal.New(1, -int32(rng.IntN(7)))) // off by one small unit
		case 1:
			want = decimal.New(rng.Int64N(100), -int32(rng.IntN(4)))
		case 2: // the same value at a different exponent
			want = decimal.NewFromBigInt(want.Coefficient(), want.Exponent()).Round(want.Exponent()*-1 + 3)
		}
		if _, ok := sumEqualsInt64(shares, want); ok {
			fast++
		}
		got, exp := SumEquals(shares, want), Sum(shares).Equal(want)
		if got != exp {
			t.Fatalf("iteration %d: SumEquals(%v, %s) = %v, Sum %s", it, shares, want, got, Sum(shares))
		}
		if got {
			equal++
		}
	}
	// Two shares whose int64 sum wraps around to exactly want: only the
	// overflow check tells them apart.
	nine := decimal.New(900_000_000_000_000_000, 1)
	wrapped := decimal.New(2*9_000_000_000_000_000_000-(1<<64), 0)
	if SumEquals([]Share{{"a", nine}, {"b", nine}}, wrapped) {
		t.Fatalf("SumEquals says 2 × %s = %s: an int64 overflow went unnoticed", nine, wrapped)
	}
	if equal < 2000 || fast < 10000 {
		t.Fatalf("%d equal sums, %d on the int64 path: the test does not exercise both answers", equal, fast)
	}
}
