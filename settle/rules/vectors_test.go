package rules

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

func readVector(t *testing.T, name string, dst any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorsDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(dst); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestAllocationVectors runs every case of vectors/allocation.json through the
// rule engine, with the contracts written in testdata/vectors/allocation.hcl.
func TestAllocationVectors(t *testing.T) {
	var v struct {
		Cases []struct {
			Name     string            `json:"name"`
			Amount   string            `json:"amount"`
			Currency string            `json:"currency"`
			Shares   []json.RawMessage `json:"shares"`
			Method   string            `json:"method"`
			Rounding string            `json:"rounding"`
			Expect   map[string]string `json:"expect"`
			Note     string            `json:"note"`
		} `json:"cases"`
	}
	readVector(t, "allocation.json", &v)
	book := mustParseFile(t, "testdata/vectors/allocation.hcl")
	games := map[string]string{ // vector case → rule (and game) in allocation.hcl
		"15 at 80/8/12, largest remainder":                                     "lr-80-8-12",
		"15 at 80/8/12, top down":                                              "td-80-8-12",
		"EUR 0.05 at 50/30/20, largest remainder, tie to first declared":       "lr-50-30-20",
		"EUR 0.05 at 50/30/20, remainder to C (others floored)":                "rt-50-30-20",
		"JPY 1000 in thirds":                                                   "thirds",
		"naive half-up per share over-allocates: must be refused or corrected": "lr-50-30-20",
	}
	if len(v.Cases) != len(games) {
		t.Fatalf("allocation.json has %d cases, the test maps %d: map the new ones", len(v.Cases), len(games))
	}
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			game, ok := games[c.Name]
			if !ok {
				t.Fatalf("vector case %q has no rule in allocation.hcl", c.Name)
			}
			x := tx(t, txn.Bet, c.Amount, c.Currency, "2026-06-01T00:00:00Z")
			x.Game = game
			res, err := book.Split("P", x)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if res.Rule != game {
				t.Fatalf("Split matched rule %q, want %q", res.Rule, game)
			}
			got := sharesMap(t, x.Currency, res.Shares)
			if c.Expect == nil { // the naive case: the split must still sum exactly
				if sum := money.Sum(res.Shares); !sum.Equal(x.Amount) {
					t.Fatalf("Split(%s) shares %v sum to %s", c.Amount, got, sum)
				}
				return
			}
			if len(got) != len(c.Expect) {
				t.Fatalf("Split(%s %s) = %v, want %v", c.Amount, c.Currency, got, c.Expect)
			}
			for party, want := range c.Expect {
				if !dec(got[party]).Equal(dec(want)) {
					t.Errorf("Split(%s %s) party %s = %s, want %s", c.Amount, c.Currency, party, got[party], want)
				}
			}
		})
	}
}

// TestNaiveHalfUpNeverProduced checks the "naive half-up" vector: rounding each
// share half-up gives 0.06 for 0.05, and no rule, whatever its method and
// rounding, produces that split.
func TestNaiveHalfUpNeverProduced(t *testing.T) {
	eur := cur(t, "EUR")
	naive := decimal.Zero
	for _, p := range []string{"50", "30", "20"} {
		naive = naive.Add(money.Round(dec("0.05").Mul(dec(p)).Shift(-2), eur.Exponent, money.HalfUp))
	}
	if !naive.Equal(dec("0.06")) {
		t.Fatalf("naive per-share half-up = %s, the vector says 0.06", naive)
	}
	for _, alloc := range []string{"largest_remainder", "top_down", "remainder_to"} {
		for _, rnd := range []string{"half_up", "half_even", "down"} {
			book := mustParse(t, `ruleset "v" {
  effective = "2026-01-01T00:00:00Z"
  rounding = "`+rnd+`"
  allocation = "`+alloc+`"
  rule "r" {
    share "A" { 
      party = "A"
      percent = "50"
    }
    share "B" {
      party = "B"
      percent = "30"
    }
    share "C" {
      party = "C"
      percent = "20"
    }
    remainder = "C"
  }
}`)
			res, err := book.Split("P", tx(t, txn.Bet, "0.05", "EUR", "2026-02-01T00:00:00Z"))
			if err != nil {
				t.Fatal(err)
			}
			if sum := money.Sum(res.Shares); !sum.Equal(dec("0.05")) {
				t.Errorf("%s/%s: Split(0.05) = %v, sum %s", alloc, rnd, res.Shares, sum)
			}
		}
	}
}

// TestWaterfallVector asserts every figure of vectors/waterfall-jpy.json with
// testdata/vectors/waterfall-jpy.hcl.
func TestWaterfallVector(t *testing.T) {
	var v struct {
		Currency  string `json:"currency"`
		Rounding  string `json:"rounding"`
		GGR       string `json:"ggr"`
		Waterfall []struct {
			Step      string `json:"step"`
			Party     string `json:"party"`
			PercentOf string `json:"percent_of"`
			Percent   string `json:"percent"`
			Exact     string `json:"exact"`
			Fixed     string `json:"fixed"`
			Derived   string `json:"derived"`
			Remainder bool   `json:"remainder"`
			Expect    string `json:"expect"`
		} `json:"waterfall"`
		Check string `json:"check"`
	}
	readVector(t, "waterfall-jpy.json", &v)
	book := mustParseFile(t, "testdata/vectors/waterfall-jpy.hcl")
	x := tx(t, txn.Bet, v.GGR, v.Currency, "2026-06-01T00:00:00Z")
	x.Affiliate = "affiliate"
	res, err := book.Split("provider", x)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	got := sharesMap(t, x.Currency, res.Shares)
	checked := 0
	for _, s := range v.Waterfall {
		if s.Party == "" {
			continue // a derived figure (NGR), checked below
		}
		checked++
		if got[s.Party] != s.Expect {
			t.Errorf("step %q: party %s = %s, want %s", s.Step, s.Party, got[s.Party], s.Expect)
		}
	}
	if checked != len(got) {
		t.Errorf("Split gave %d parties %v, the vector has %d", len(got), got, checked)
	}
	ngr := dec(v.GGR).Sub(dec(got["tax"])).Sub(dec(got["provider"])).Sub(dec(got["bonus"]))
	if !ngr.Equal(dec("875308")) {
		t.Errorf("NGR = %s, want 875308", ngr)
	}
	if sum := money.Sum(res.Shares); !sum.Equal(dec(v.GGR)) {
		t.Errorf("Σ shares = %s, want %s", sum, v.GGR)
	}
	// Money out (a win of the same size) mirrors it exactly.
	x.Type = txn.Win
	res, err = book.Split("provider", x)
	if err != nil {
		t.Fatal(err)
	}
	for party, amt := range sharesMap(t, x.Currency, res.Shares) {
		if !dec(amt).Equal(dec(got[party]).Neg()) {
			t.Errorf("win: party %s = %s, want −%s", party, amt, got[party])
		}
	}
}

// TestVectorCopiesPresent fails when a vector's copy is missing or empty,
// with or without ../shared: the tests must never pass by not finding one.
func TestVectorCopiesPresent(t *testing.T) {
	for orig, cp := range vectorFiles {
		b, err := os.ReadFile(filepath.Join(vectorsDir(t), cp))
		if err != nil {
			t.Errorf("vector %s: copy missing: %v", orig, err)
			continue
		}
		if len(b) == 0 {
			t.Errorf("vector %s: copy %s is empty", orig, cp)
		}
	}
}

// TestVectorCopies checks that the copies under testdata/vectors are the
// shared acceptance vectors, byte for byte, that every shared vector has a
// copy, and that vectorFiles lists them all. It needs ../shared/vectors,
// which only the lead's workspace has; a clone skips this comparison alone
// (the vector tests themselves still run on the copies).
func TestVectorCopies(t *testing.T) {
	shared := sharedVectorsDir(t)
	if shared == "" {
		t.Skip("../shared/vectors is absent (not part of the repository): cannot compare the testdata copies with the originals")
	}
	names, err := filepath.Glob(filepath.Join(shared, "*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no vectors in %s: %v", shared, err)
	}
	for _, n := range names {
		base := filepath.Base(n)
		cp, ok := vectorFiles[base]
		if !ok {
			t.Errorf("%s is not in vectorFiles: copy it into testdata/vectors and list it", base)
			continue
		}
		want, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(vectorsDir(t), cp))
		if err != nil {
			t.Errorf("vector %s not copied into testdata/vectors: %v", base, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/vectors/%s differs from %s: copy it again", cp, n)
		}
	}
}
