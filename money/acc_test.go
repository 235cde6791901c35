package money

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/shopspring/decimal"
)

// chainedAdd is what Acc replaces: Decimal.Add from the zero Decimal.
func chainedAdd(xs []decimal.Decimal) decimal.Decimal {
	var s decimal.Decimal
	for _, x := range xs {
		s = s.Add(x)
	}
	return s
}

// sameDecimal requires the same value and the same exponent (so the same
// String, StringFixed and coefficient).
func sameDecimal(t *testing.T, what string, got, want decimal.Decimal) {
	t.Helper()
	if got.Exponent() != want.Exponent() || got.Coefficient().Cmp(want.Coefficient()) != 0 {
		t.Fatalf("%s: got %s (coefficient %s, exponent %d), want %s (coefficient %s, exponent %d)",
			what, got, got.Coefficient(), got.Exponent(), want, want.Coefficient(), want.Exponent())
	}
}

func accSum(xs []decimal.Decimal) (decimal.Decimal, bool) {
	var a Acc
	for _, x := range xs {
		a.Add(x)
	}
	return a.Decimal(), a.dec
}

// randFigure is a decimal of any size tally might meet, and some it never
// does: up to 25 digits, exponents −8…+3, both signs, and int64 edges.
func randFigure(r *rand.Rand) decimal.Decimal {
	switch r.IntN(10) {
	case 0: // beyond int64
		c := new(big.Int).Lsh(big.NewInt(r.Int64N(1<<40)+1), 40+uint(r.IntN(30)))
		if r.IntN(2) == 0 {
			c.Neg(c)
		}
		return decimal.NewFromBigInt(c, -int32(r.IntN(9)))
	case 1: // near the 18-digit and int64 edges
		cs := []int64{999_999_999_999_999_999, 1_000_000_000_000_000_000, math.MaxInt64, math.MinInt64, math.MaxInt64 / 10, -999_999_999_999_999_999}
		return decimal.New(cs[r.IntN(len(cs))], -int32(r.IntN(9)))
	case 2:
		return decimal.New(0, int32(r.IntN(12))-8)
	default: // money: minor units
		c := r.Int64N(1_000_000_000) - 500_000_000
		return decimal.New(c, int32(r.IntN(12))-8)
	}
}

func TestAccMatchesDecimalAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 2))
	fell := 0
	for i := range 20000 {
		xs := make([]decimal.Decimal, r.IntN(12))
		for j := range xs {
			xs[j] = randFigure(r)
		}
		got, dec := accSum(xs)
		if dec {
			fell++
		}
		sameDecimal(t, "case "+strconv.Itoa(i), got, chainedAdd(xs))
	}
	if fell == 0 {
		t.Fatal("no case took the decimal fallback: the test does not cover it")
	}
}

func TestAccEdges(t *testing.T) {
	cases := map[string][]decimal.Decimal{
		"empty":                  nil,
		"zero value":             {{}},
		"decimal.Zero (exp 1)":   {decimal.Zero},
		"positive exponent":      {decimal.New(5, 3), decimal.New(7, 1)},
		"overflow upward":        {decimal.New(math.MaxInt64/10*9, 0), decimal.New(math.MaxInt64/10*9, 0)},
		"overflow downward":      {decimal.New(-999_999_999_999_999_999, 0), decimal.New(-999_999_999_999_999_999, 0), decimal.New(-999_999_999_999_999_999, 0), decimal.New(-999_999_999_999_999_999, 0), decimal.New(-999_999_999_999_999_999, 0), decimal.New(-999_999_999_999_999_999, 0), decimal.New(-999_999_999_999_999_999, 0), decimal.New(-999_999_999_999_999_999, 0), decimal.New(-999_999_999_999_999_999, 0), decimal.New(-999_999_999_999_999_999, 0)},
		"rescale overflow":       {decimal.New(999_999_999_999_999, 0), decimal.New(1, -8)},
		"min int64 reached":      {decimal.New(-1<<62, 0), decimal.New(-1<<62, 0), decimal.New(5, -1)},
		"cancel to zero":         {decimal.RequireFromString("12.34"), decimal.RequireFromString("-12.34")},
		"big then small":         {decimal.RequireFromString("123456789012345678901234.5"), decimal.RequireFromString("0.01")},
		"mixed exponents":        {decimal.RequireFromString("1.5"), decimal.RequireFromString("-0.25"), decimal.RequireFromString("100")},
		"nineteen digits at end": {decimal.New(1, -2), decimal.New(1_000_000_000_000_000_000, 0)},
	}
	for name, xs := range cases {
		got, _ := accSum(xs)
		sameDecimal(t, name, got, chainedAdd(xs))
		if got.String() != chainedAdd(xs).String() {
			t.Fatalf("%s: String %q, want %q", name, got.String(), chainedAdd(xs).String())
		}
	}
}

func FuzzAcc(f *testing.F) {
	f.Add(int64(12345), int32(-2), int64(-99), int32(0), int64(math.MaxInt64), int32(-3))
	f.Fuzz(func(t *testing.T, c1 int64, e1 int32, c2 int64, e2 int32, c3 int64, e3 int32) {
		clamp := func(e int32) int32 { return e%20 - 10 }
		xs := []decimal.Decimal{decimal.New(c1, clamp(e1)), decimal.New(c2, clamp(e2)), decimal.New(c3, clamp(e3))}
		got, _ := accSum(xs)
		sameDecimal(t, "fuzz", got, chainedAdd(xs))
	})
}

func TestAccAllocations(t *testing.T) {
	xs := []decimal.Decimal{decimal.RequireFromString("12.25"), decimal.RequireFromString("-3.5"), decimal.RequireFromString("0.125")}
	n := testing.AllocsPerRun(100, func() {
		var a Acc
		for _, x := range xs {
			a.Add(x)
		}
	})
	if n != 0 {
		t.Fatalf("Acc.Add allocated %.0f times on small figures, want 0", n)
	}
}

func BenchmarkAcc(b *testing.B) {
	xs := []decimal.Decimal{decimal.RequireFromString("12.25"), decimal.RequireFromString("-3.5"), decimal.RequireFromString("0.125")}
	b.Run("decimal.Add", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = chainedAdd(xs)
		}
	})
	b.Run("Acc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var a Acc
			for _, x := range xs {
				a.Add(x)
			}
			_ = a.Decimal()
		}
	})
}
