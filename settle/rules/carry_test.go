package rules

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
)

// TestCarryProperties: random runs of up to 36 monthly bases through a
// carrying contract (never reset, quarterly, yearly, or not carrying). No
// basis is created or lost: Σ positive bases charged = Σ bases − the last
// carry out + Σ carries dropped at resets (not carrying: Σ max(basis, 0));
// a carry is always ≤ 0 and fits the currency; a reset happens exactly at
// the first month of a new quarter or year, and only drops a negative carry.
func TestCarryProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 3))
	eur := cur(t, "EUR")
	for iter := 0; iter < 500; iter++ {
		fc := FeeContract{Name: "f", Party: "A", Basis: BasisNGR, Period: PeriodMonth, Currency: eur, Rounding: money.HalfUp,
			Mode: Marginal, MinimumFee: decimal.Zero, CarryNegative: rng.IntN(4) > 0, Tiers: []Tier{{Percent: dec("25")}}}
		if fc.CarryNegative {
			fc.CarryReset = []string{CarryResetNever, CarryResetQuarter, CarryResetYear}[rng.IntN(3)]
		}
		start := time.Date(2026, time.Month(1+rng.IntN(12)), 1, 0, 0, 0, 0, time.UTC)
		n := 1 + rng.IntN(36)
		carry, sumBasis, sumCharged, sumDropped, sumPos := decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero
		prev := start.AddDate(0, -1, 0)
		for i := 0; i < n; i++ {
			m := start.AddDate(0, i, 0)
			if fc.ResetsAt(prev, m) {
				q := func(t time.Time) int { return t.Year()*4 + (int(t.Month())-1)/3 }
				if (fc.CarryReset == CarryResetYear && prev.Year() == m.Year()) || (fc.CarryReset == CarryResetQuarter && q(prev) == q(m)) {
					t.Fatalf("%s resets between %s and %s", fc.CarryReset, prev, m)
				}
				sumDropped = sumDropped.Add(carry)
				carry = decimal.Zero
			}
			basis := decimal.New(rng.Int64N(2_000_000)-1_000_000, -2)
			r, err := fc.Compute(basis, carry)
			if err != nil {
				t.Fatal(err)
			}
			if r.CarryOut.IsPositive() || !eur.Fits(r.CarryOut) {
				t.Fatalf("carry out %s", r.CarryOut)
			}
			if want := money.Round(decimal.Max(r.Base, decimal.Zero).Mul(dec("25")).Shift(-2), 2, money.HalfUp); !r.Fee.Equal(want) {
				t.Fatalf("fee %s on base %s, want %s", r.Fee, r.Base, want)
			}
			sumBasis = sumBasis.Add(basis)
			sumPos = sumPos.Add(decimal.Max(basis, decimal.Zero))
			if r.Base.IsPositive() {
				sumCharged = sumCharged.Add(r.Base)
			}
			carry, prev = r.CarryOut, m
		}
		want := sumBasis.Sub(carry).Sub(sumDropped)
		if !fc.CarryNegative {
			want = sumPos
		}
		if !sumCharged.Equal(want) {
			t.Fatalf("carry %v reset %q over %d months: charged %s, want %s (bases %s, last carry %s, dropped %s)", fc.CarryNegative, fc.CarryReset, n, sumCharged, want, sumBasis, carry, sumDropped)
		}
	}
}

func TestCarryResetValidation(t *testing.T) {
	fc := FeeContract{Name: "f", Party: "A", Basis: BasisGGR, Period: PeriodMonth, Currency: cur(t, "EUR"), Rounding: money.HalfUp,
		Mode: Marginal, MinimumFee: decimal.Zero, Tiers: []Tier{{Percent: dec("25")}}, CarryReset: CarryResetYear}
	if err := fc.Validate(); err == nil {
		t.Fatal("carry_reset without carry_negative accepted")
	}
	fc.CarryNegative, fc.CarryReset = true, "month"
	if err := fc.Validate(); err == nil {
		t.Fatal(`carry_reset "month" accepted`)
	}
}
