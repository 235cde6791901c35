package money

import (
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

// TestMinorUnitsMatchesMinor: the allocation-free conversion agrees with
// Currency.Minor whenever it answers, and answers for ordinary amounts.
func TestMinorUnitsMatchesMinor(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fixed := []string{"0", "-0.00", "12.50", "12.505", "1e3", "-7", "0.001", "92233720368547758.07", "92233720368547758.08",
		"-92233720368547758.08", "-92233720368547758.09", "123456789012345678901234", "1.000000000000000000000"}
	for _, code := range []string{"JPY", "EUR", "KWD", "CLF"} {
		cur, _ := Lookup(code)
		check := func(d decimal.Decimal) {
			got, ok := MinorUnits(d, cur.Exponent)
			want, err := cur.Minor(d)
			if ok && (err != nil || got != want) {
				t.Fatalf("%s: MinorUnits(%s) = %d, Minor = %d, %v", code, d, got, want, err)
			}
		}
		for _, s := range fixed {
			check(decimal.RequireFromString(s))
		}
		for range 20000 {
			d := decimal.New(rng.Int64N(1<<62)-1<<61, int32(rng.IntN(30))-20)
			check(d)
		}
		// Ordinary amounts take the fast path.
		if _, ok := MinorUnits(decimal.New(1234, -cur.Exponent), cur.Exponent); !ok {
			t.Errorf("%s: MinorUnits refused an ordinary amount", code)
		}
	}
}
