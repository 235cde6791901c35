package money

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func decs(ss ...string) []decimal.Decimal {
	out := make([]decimal.Decimal, len(ss))
	for i, s := range ss {
		out[i] = decimal.RequireFromString(s)
	}
	return out
}

func mustCur(t testing.TB, code string) Currency {
	t.Helper()
	c, ok := Lookup(code)
	if !ok {
		t.Fatalf("unknown currency %s", code)
	}
	return c
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name     string
		amount   string
		cur      string
		weights  []string
		method   Allocation
		rounding Rounding
		rem      int
		want     []string
	}{
		{"numscript 99 at 50/50", "99", "JPY", []string{"50", "50"}, LargestRemainder, "", -1, []string{"50", "49"}},
		{"numscript 99 in fifths", "99", "JPY", []string{"1", "1", "1", "1", "1"}, LargestRemainder, "", -1, []string{"20", "20", "20", "20", "19"}},
		{"kwd 12.345 at 50/50", "12.345", "KWD", []string{"50", "50"}, LargestRemainder, "", -1, []string{"6.173", "6.172"}},
		{"pool 100.00 in thirds", "100.00", "EUR", []string{"1", "1", "1"}, LargestRemainder, "", -1, []string{"33.34", "33.33", "33.33"}},
		{"negative mirrors positive", "-0.05", "EUR", []string{"50", "30", "20"}, LargestRemainder, "", -1, []string{"-0.03", "-0.01", "-0.01"}},
		{"negative remainder_to", "-0.05", "EUR", []string{"50", "30", "20"}, RemainderTo, Down, 2, []string{"-0.02", "-0.01", "-0.02"}},
		{"remainder_to half_up", "0.05", "EUR", []string{"50", "30", "20"}, RemainderTo, HalfUp, 2, []string{"0.03", "0.02", "0"}},
		{"remainder_to half_even", "0.05", "EUR", []string{"50", "30", "20"}, RemainderTo, HalfEven, 0, []string{"0.02", "0.02", "0.01"}},
		{"remainder_to half_even tie to even", "0.05", "EUR", []string{"50", "30", "20"}, RemainderTo, HalfEven, 2, []string{"0.02", "0.02", "0.01"}},
		{"remainder party can go negative", "0.01", "EUR", []string{"1", "1", "0"}, RemainderTo, HalfUp, 2, []string{"0.01", "0.01", "-0.01"}},
		{"top_down skips zero weight", "0.02", "EUR", []string{"0", "1", "1", "1"}, TopDown, "", -1, []string{"0", "0.01", "0.01", "0"}},
		{"largest remainder zero weight gets nothing", "0.02", "EUR", []string{"0", "1", "1", "1"}, LargestRemainder, "", -1, []string{"0", "0.01", "0.01", "0"}},
		{"decimal weights", "10.00", "EUR", []string{"12.5", "87.5"}, LargestRemainder, "", -1, []string{"1.25", "8.75"}},
		{"huge weights", "1", "JPY", []string{"1e30", "1e30"}, LargestRemainder, "", -1, []string{"1", "0"}},
		{"zero amount", "0", "EUR", []string{"1", "2"}, TopDown, "", -1, []string{"0", "0"}},
		{"single part", "7.777", "KWD", []string{"3"}, LargestRemainder, "", -1, []string{"7.777"}},
		{"clf exponent 4", "1.0000", "CLF", []string{"1", "1", "1"}, LargestRemainder, "", -1, []string{"0.3334", "0.3333", "0.3333"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Allocate(decimal.RequireFromString(tc.amount), mustCur(t, tc.cur), decs(tc.weights...), tc.method, tc.rounding, tc.rem)
			if err != nil {
				t.Fatalf("Allocate(%s %s, %v, %s) error: %v", tc.amount, tc.cur, tc.weights, tc.method, err)
			}
			want := decs(tc.want...)
			if len(got) != len(want) {
				t.Fatalf("Allocate(%s %s, %v, %s) = %v, want %v", tc.amount, tc.cur, tc.weights, tc.method, got, tc.want)
			}
			for i := range got {
				if !got[i].Equal(want[i]) {
					t.Fatalf("Allocate(%s %s, %v, %s) = %v, want %v", tc.amount, tc.cur, tc.weights, tc.method, got, tc.want)
				}
			}
		})
	}
}

func TestAllocateErrors(t *testing.T) {
	eur := Currency{Code: "EUR", Exponent: 2}
	one := decimal.NewFromInt(1)
	tests := []struct {
		name     string
		amount   decimal.Decimal
		weights  []decimal.Decimal
		method   Allocation
		rounding Rounding
		rem      int
		errHas   string
	}{
		{"too many decimals", decimal.RequireFromString("0.001"), decs("1"), LargestRemainder, "", -1, "decimals"},
		{"no parts", one, nil, LargestRemainder, "", -1, "no parts"},
		{"negative weight", one, decs("1", "-1"), LargestRemainder, "", -1, "negative"},
		{"zero weights", one, decs("0", "0"), TopDown, "", -1, "zero"},
		{"unknown method", one, decs("1"), "pro_rata", "", -1, "unknown allocation"},
		{"unknown rounding", one, decs("1"), LargestRemainder, "up", -1, "unknown rounding"},
		{"remainder_to without rounding", one, decs("1"), RemainderTo, "", 0, "needs a rounding"},
		{"remainder index out of range", one, decs("1"), RemainderTo, Down, 1, "out of range"},
		{"too many parts", one, make([]decimal.Decimal, MaxParts+1), LargestRemainder, "", -1, "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Allocate(tc.amount, eur, tc.weights, tc.method, tc.rounding, tc.rem)
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("Allocate(%s, %v, %s) error = %v, want containing %q", tc.amount, tc.weights, tc.method, err, tc.errHas)
			}
		})
	}
}

// TestAllocateSumProperty splits random amounts in random currencies by random
// weights with every method and checks that the parts always sum exactly, that
// floor-based methods stay within one unit of the exact share, and that a
// negative amount mirrors the positive one.
func TestAllocateSumProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TALLY_SEED"); s != "" {
		seed = uint64(decimal.RequireFromString(s).IntPart())
	}
	t.Logf("seed %d (rerun with TALLY_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	codes := []string{"JPY", "EUR", "USD", "KWD", "CLF"}
	methods := []Allocation{LargestRemainder, RemainderTo, TopDown}
	modes := []Rounding{HalfUp, HalfEven, Down}
	iterations := 3000
	if testing.Short() {
		iterations = 300
	}
	for it := 0; it < iterations; it++ {
		cur := mustCur(t, codes[rng.IntN(len(codes))])
		amount := decimal.New(rng.Int64N(1_000_000_000)-1000, -cur.Exponent)
		if rng.IntN(10) == 0 {
			amount = decimal.New(rng.Int64N(7), -cur.Exponent) // tiny amounts stress leftovers
		}
		n := 1 + rng.IntN(8)
		weights := make([]decimal.Decimal, n)
		positive := false
		for i := range weights {
			if rng.IntN(6) > 0 {
				weights[i] = decimal.New(rng.Int64N(100_000), -int32(rng.IntN(4)))
			}
			positive = positive || weights[i].IsPositive()
		}
		if !positive {
			weights[0] = decimal.NewFromInt(1)
		}
		method := methods[rng.IntN(len(methods))]
		mode := modes[rng.IntN(len(modes))]
		rem := rng.IntN(n)
		got, err := Allocate(amount, cur, weights, method, mode, rem)
		if err != nil {
			t.Fatalf("seed %d iteration %d: Allocate(%s %s, %v, %s, %s, %d) error: %v", seed, it, amount, cur.Code, weights, method, mode, rem, err)
		}
		sum := decimal.Zero
		for _, p := range got {
			sum = sum.Add(p)
			if !cur.Fits(p) {
				t.Fatalf("seed %d iteration %d: part %s does not fit %s", seed, it, p, cur.Code)
			}
		}
		if !sum.Equal(amount) {
			t.Fatalf("seed %d iteration %d: Allocate(%s %s, %v, %s, %s, %d) = %v, sum %s", seed, it, amount, cur.Code, weights, method, mode, rem, got, sum)
		}
		if method != RemainderTo {
			total := decimal.Zero
			for _, w := range weights {
				total = total.Add(w)
			}
			for i, p := range got {
				// |p − exact| < 1 unit  ⇔  |p·total − amount·w| < unit·total (no division needed)
				diff := p.Mul(total).Sub(amount.Mul(weights[i])).Abs()
				if diff.GreaterThanOrEqual(cur.Unit().Mul(total)) {
					t.Fatalf("seed %d iteration %d: part %d = %s is a unit or more from exact %s×%s/%s", seed, it, i, p, amount, weights[i], total)
				}
			}
		}
		neg, err := Allocate(amount.Neg(), cur, weights, method, mode, rem)
		if err != nil {
			t.Fatalf("seed %d iteration %d: negated amount: %v", seed, it, err)
		}
		for i := range got {
			if !neg[i].Equal(got[i].Neg()) {
				t.Fatalf("seed %d iteration %d: Allocate(−amount) = %v, not the mirror of %v", seed, it, neg, got)
			}
		}
	}
}

// vectorsDir is the repository's copy of the acceptance vectors, kept with
// the rule engine's tests (settle/rules/testdata/vectors, one copy for the
// whole repository; settle/rules.TestVectorCopies checks it against the
// originals). A missing copy fails the test, never skips it.
func vectorsDir(t *testing.T) string {
	t.Helper()
	return filepath.Join("..", "settle", "rules", "testdata", "vectors")
}

type allocationVectors struct {
	Cases []struct {
		Name     string `json:"name"`
		Amount   string `json:"amount"`
		Currency string `json:"currency"`
		Shares   []struct {
			Party     string `json:"party"`
			Percent   string `json:"percent"`
			Weight    string `json:"weight"`
			Remainder bool   `json:"remainder"`
		} `json:"shares"`
		Method   string            `json:"method"`
		Rounding string            `json:"rounding"`
		Expect   map[string]string `json:"expect"`
		Note     string            `json:"note"`
	} `json:"cases"`
}

// TestAllocationVectors asserts every figure of vectors/allocation.json.
func TestAllocationVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(vectorsDir(t), "allocation.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v allocationVectors
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("allocation.json: %v", err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("allocation.json has no cases")
	}
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			cur := mustCur(t, c.Currency)
			amount := decimal.RequireFromString(c.Amount)
			weights := make([]decimal.Decimal, len(c.Shares))
			rem := -1
			for i, s := range c.Shares {
				w := s.Percent
				if w == "" {
					w = s.Weight
				}
				weights[i] = decimal.RequireFromString(w)
				if s.Remainder {
					rem = i
				}
			}
			if c.Method == "" {
				// The naive case: per-share half-up over-allocates; Allocate must not,
				// with any method.
				naive := decimal.Zero
				for _, w := range weights {
					naive = naive.Add(Round(amount.Mul(w).Div(decimal.NewFromInt(100)), cur.Exponent, HalfUp))
				}
				if !naive.Equal(decimal.RequireFromString("0.06")) {
					t.Fatalf("naive per-share half-up sums to %s, the vector says 0.06", naive)
				}
				for _, m := range []Allocation{LargestRemainder, TopDown, RemainderTo} {
					for _, r := range []Rounding{HalfUp, HalfEven, Down} {
						for idx := range weights {
							parts, err := Allocate(amount, cur, weights, m, r, idx)
							if err != nil {
								t.Fatalf("Allocate(%s, %s, %s, %d): %v", c.Amount, m, r, idx, err)
							}
							sum := decimal.Zero
							for _, p := range parts {
								sum = sum.Add(p)
							}
							if !sum.Equal(amount) {
								t.Errorf("Allocate(%s, %s, %s, %d) = %v sums to %s, want %s", c.Amount, m, r, idx, parts, sum, amount)
							}
						}
					}
				}
				return
			}
			method, err := ParseAllocation(c.Method)
			if err != nil {
				t.Fatal(err)
			}
			var rounding Rounding
			if c.Rounding != "" {
				if rounding, err = ParseRounding(c.Rounding); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Allocate(amount, cur, weights, method, rounding, rem)
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			if len(c.Expect) != len(c.Shares) {
				t.Fatalf("vector expects %d parties for %d shares", len(c.Expect), len(c.Shares))
			}
			for i, s := range c.Shares {
				want := decimal.RequireFromString(c.Expect[s.Party])
				if !got[i].Equal(want) {
					t.Errorf("Allocate(%s %s, %s) party %s = %s, want %s", c.Amount, c.Currency, c.Method, s.Party, cur.Format(got[i]), cur.Format(want))
				}
			}
		})
	}
}
