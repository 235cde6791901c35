package rules

import (
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

func shares(kv ...string) []money.Share {
	var out []money.Share
	for i := 0; i < len(kv); i += 2 {
		out = append(out, money.Share{Party: kv[i], Amount: dec(kv[i+1])})
	}
	return out
}

func TestReverse(t *testing.T) {
	tests := []struct {
		name      string
		parent    []money.Share
		parentAbs string
		amount    string
		cur       string
		want      []money.Share
		wantErr   error
	}{
		{"full bet", shares("studio", "1.20", "aff", "0.50", "operator", "8.30"), "10.00", "10.00", "EUR",
			shares("studio", "-1.20", "aff", "-0.50", "operator", "-8.30"), nil},
		{"full win", shares("studio", "-3.00", "operator", "-22.00"), "25.00", "25.00", "EUR",
			shares("studio", "3.00", "operator", "22.00"), nil},
		{"stripe-style partial refund", shares("platform", "10.00", "seller", "90.00"), "100.00", "33.33", "EUR",
			// exact 3.333 / 29.997 → 3.33 / 29.99, 1 cent left to the larger fraction (0.997)
			shares("platform", "-3.33", "seller", "-30.00"), nil},
		{"partial win", shares("a", "-5", "b", "-5", "c", "-5"), "15", "10", "JPY",
			// exact 3.33… each → 3,3,3 + 1 to the first
			shares("a", "4", "b", "3", "c", "3"), nil},
		{"zero share stays zero", shares("a", "0.00", "b", "0.01"), "0.01", "0.00", "EUR",
			shares("a", "0.00", "b", "0.00"), nil},
		{"mixed signs", shares("op", "12.00", "bonus", "-2.00"), "10.00", "5.00", "EUR",
			shares("op", "-6.00", "bonus", "1.00"), nil},
		{"mixed signs with fractions", shares("op", "0.07", "bonus", "-0.02"), "0.05", "0.03", "EUR",
			// exact −0.042 / +0.012, target −0.03 → −0.04 / +0.01
			shares("op", "-0.04", "bonus", "0.01"), nil},
		{"over-reversal", shares("a", "1.00"), "1.00", "1.01", "EUR", nil, ErrOverReversal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Reverse(tc.parent, dec(tc.parentAbs), dec(tc.amount), cur(t, tc.cur))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Reverse error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Reverse(%v, %s) = %v, want %v", tc.parent, tc.amount, got, tc.want)
			}
			for i := range got {
				if got[i].Party != tc.want[i].Party || !got[i].Amount.Equal(tc.want[i].Amount) {
					t.Fatalf("Reverse(%v, %s) = %v, want %v", tc.parent, tc.amount, got, tc.want)
				}
			}
		})
	}
}

func TestReverseErrors(t *testing.T) {
	eur := cur(t, "EUR")
	p := shares("a", "1.00", "b", "2.00")
	tests := []struct {
		name              string
		parent            []money.Share
		parentAbs, amount string
	}{
		{"negative amount", p, "3.00", "-1"},
		{"sum mismatch", p, "4.00", "1.00"},
		{"share does not fit", shares("a", "1.001", "b", "1.999"), "3.00", "1.00"},
		{"amount does not fit", p, "3.00", "0.001"},
		{"negative parent", p, "-3.00", "1.00"},
	}
	for _, tc := range tests {
		if _, err := Reverse(tc.parent, dec(tc.parentAbs), dec(tc.amount), eur); err == nil {
			t.Errorf("Reverse(%s) = nil error, want an error", tc.name)
		}
	}
}

// TestReverseProperty splits random transactions with the example rules, then
// reverses them in random partial steps until nothing is left, always passing
// what is left of the parent. Every step sums exactly, no party's reversals
// ever exceed its original share, and the last step leaves every party at zero.
func TestReverseProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TALLY_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = n
	}
	t.Logf("seed %d (rerun with TALLY_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	book := mustParseFile(t, "testdata/example.hcl")
	codes := []string{"EUR", "USD", "JPY", "KWD"}
	types := []txn.Type{txn.Bet, txn.Win, txn.Purchase, txn.JackpotWin}
	for it := 0; it < 500; it++ {
		c := cur(t, codes[rng.IntN(len(codes))])
		x := txn.Tx{ID: "p", Type: types[rng.IntN(len(types))], Currency: c,
			Amount: decimal.New(rng.Int64N(100_000), -c.Exponent), OccurredAt: ts("2026-11-15T00:00:00Z")}
		if rng.IntN(2) == 0 {
			x.Affiliate = "aff"
		}
		res, err := book.Split("studio", x)
		if err != nil {
			t.Fatalf("seed %d: Split: %v", seed, err)
		}
		left := append([]money.Share(nil), res.Shares...)
		leftAbs := x.Amount
		for step := 0; leftAbs.IsPositive(); step++ {
			amt := leftAbs
			if rng.IntN(3) > 0 && step < 5 {
				amt = decimal.New(rng.Int64N(leftAbs.Shift(c.Exponent).IntPart()+1), -c.Exponent)
			}
			rev, err := Reverse(left, leftAbs, amt, c)
			if err != nil {
				t.Fatalf("seed %d iteration %d: Reverse(%v, %s, %s): %v", seed, it, left, leftAbs, amt, err)
			}
			want := amt
			if x.Type.Sign() > 0 {
				want = amt.Neg()
			}
			if sum := money.Sum(rev); !sum.Equal(want) {
				t.Fatalf("seed %d iteration %d: Reverse(%v, %s, %s) = %v, sum %s want %s", seed, it, left, leftAbs, amt, rev, sum, want)
			}
			for i := range left {
				left[i].Amount = left[i].Amount.Add(rev[i].Amount)
				orig := res.Shares[i].Amount
				if left[i].Amount.Sign()*orig.Sign() < 0 || left[i].Amount.Abs().GreaterThan(orig.Abs()) {
					t.Fatalf("seed %d iteration %d: party %s left with %s of original %s", seed, it, left[i].Party, left[i].Amount, orig)
				}
			}
			leftAbs = leftAbs.Sub(amt)
		}
		for _, s := range left {
			if !s.Amount.IsZero() {
				t.Fatalf("seed %d iteration %d: after reversing everything %s has %s", seed, it, s.Party, s.Amount)
			}
		}
	}
}
