package money

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

// checkFormat compares the fast formatters with shopspring on one decimal.
func checkFormat(t *testing.T, d decimal.Decimal) {
	t.Helper()
	if got, want := String(d), d.String(); got != want {
		t.Fatalf("String(%v × 10^%d) = %q, decimal.String %q", d.Coefficient(), d.Exponent(), got, want)
	}
	if got, want := string(AppendString([]byte("x"), d)), "x"+d.String(); got != want {
		t.Fatalf("AppendString(%v × 10^%d) = %q, want %q", d.Coefficient(), d.Exponent(), got, want)
	}
	for _, p := range []int32{-1, 0, 1, 2, 3, 4, 8} {
		c := Currency{Code: "T", Exponent: p}
		if got, want := c.Format(d), d.StringFixed(p); got != want {
			t.Fatalf("Format(%v × 10^%d, %d places) = %q, StringFixed %q", d.Coefficient(), d.Exponent(), p, got, want)
		}
		if got, want := string(c.AppendFormat([]byte("x"), d)), "x"+d.StringFixed(p); got != want {
			t.Fatalf("AppendFormat(%v × 10^%d, %d places) = %q, want %q", d.Coefficient(), d.Exponent(), p, got, want)
		}
	}
}

// TestStringTable: the corners of shopspring's formatting, each against
// decimal itself (String, StringFixed).
func TestStringTable(t *testing.T) {
	huge, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	for _, d := range []decimal.Decimal{
		{}, decimal.Zero, decimal.New(0, -2), decimal.New(0, 5), decimal.New(0, -100),
		decimal.New(1, 0), decimal.New(-1, 0), decimal.New(5, 2), decimal.New(-5, 2),
		decimal.New(1, -1), decimal.New(-1, -1), decimal.New(150, -2), decimal.New(-150, -2),
		decimal.New(100, -2), decimal.New(-100, -2), decimal.New(1, -18), decimal.New(-7, -30),
		decimal.New(123456789012345678, -9), decimal.New(-999999999999999999, -18),
		decimal.New(999999999999999999, 0), decimal.New(1000000000000000000, -2), // 19 digits: shopspring
		decimal.New(-9223372036854775808, -3), decimal.New(12, 64), decimal.New(12, 65), decimal.New(3, -64), decimal.New(3, -65),
		decimal.NewFromBigInt(huge, -4), decimal.NewFromBigInt(huge, 3),
		decimal.RequireFromString("12.3400"), decimal.RequireFromString("-0.000"), decimal.RequireFromString("1e-3"),
	} {
		checkFormat(t, d)
	}
}

// TestStringRandom: random coefficients (negative, zero, up to 21 digits so
// some fall back) at random exponents, against shopspring.
func TestStringRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 2026))
	for range 20000 {
		checkFormat(t, randDecimal(rng))
	}
}

func randDecimal(rng *rand.Rand) decimal.Decimal {
	digits := rng.IntN(22)
	c := new(big.Int)
	for range digits {
		c.Mul(c, big.NewInt(10))
		c.Add(c, big.NewInt(int64(rng.IntN(10))))
	}
	if rng.IntN(2) == 0 {
		c.Neg(c)
	}
	return decimal.NewFromBigInt(c, int32(rng.IntN(50))-30)
}

// FuzzString: any coefficient (as big-endian bytes, signed) at any exponent
// formats exactly like shopspring.
func FuzzString(f *testing.F) {
	f.Add([]byte{0x01}, false, int32(-2))
	f.Add([]byte{}, true, int32(0))
	f.Add([]byte{0x0d, 0xe0, 0xb6, 0xb3, 0xa7, 0x64, 0x00, 0x00}, true, int32(-18))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false, int32(70))
	f.Fuzz(func(t *testing.T, coef []byte, neg bool, exp int32) {
		if len(coef) > 40 || exp > 200 || exp < -200 {
			t.Skip() // shopspring's own cost grows with the exponent
		}
		c := new(big.Int).SetBytes(coef)
		if neg {
			c.Neg(c)
		}
		checkFormat(t, decimal.NewFromBigInt(c, exp))
	})
}

func BenchmarkString(b *testing.B) {
	d := decimal.New(-123456, -2)
	b.Run("shopspring", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = d.String()
		}
	})
	b.Run("money", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = String(d)
		}
	})
	eur := Currency{Code: "EUR", Exponent: 2}
	b.Run("format/shopspring", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = d.StringFixed(2)
		}
	})
	b.Run("format/money", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = eur.Format(d)
		}
	})
}
