package rules

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

func TestSplitExample(t *testing.T) {
	b := mustParseFile(t, "testdata/example.hcl")
	tests := []struct {
		name      string
		typ       txn.Type
		amount    string
		cur       string
		when      string
		affiliate string
		version   string
		want      map[string]string
	}{
		{"eur bet november", txn.Bet, "10.00", "EUR", "2026-11-05T10:00:00Z", "aff-7", "2026-11",
			map[string]string{"studio-x": "1.20", "aff-7": "0.50", "operator": "8.30"}},
		{"eur win is borne", txn.Win, "25.00", "EUR", "2026-11-05T10:00:00Z", "aff-7", "2026-11",
			map[string]string{"studio-x": "-3.00", "aff-7": "-1.25", "operator": "-20.75"}},
		{"no affiliate: 5% to operator", txn.Bet, "10.00", "USD", "2026-11-05T10:00:00Z", "", "2026-11",
			map[string]string{"studio-x": "1.20", "operator": "8.80"}},
		{"december: studio 15%", txn.Bet, "10.00", "EUR", "2026-12-01T00:00:00Z", "aff-7", "2026-12",
			map[string]string{"studio-x": "1.50", "aff-7": "0.50", "operator": "8.00"}},
		{"jpy largest remainder", txn.Bet, "15", "JPY", "2026-11-05T10:00:00Z", "aff-7", "2026-11",
			// exact 1.8 / 0.75 / 12.45 → floors 1/0/12, 2 units left → 0.8 then 0.75
			map[string]string{"studio-x": "2", "aff-7": "1", "operator": "12"}},
		{"kwd three decimals", txn.Purchase, "1.001", "KWD", "2026-11-05T10:00:00Z", "aff-7", "2026-11",
			// exact 0.12012 / 0.05005 / 0.83083
			map[string]string{"studio-x": "0.120", "aff-7": "0.050", "operator": "0.831"}},
		{"one cent", txn.Bet, "0.01", "EUR", "2026-11-05T10:00:00Z", "aff-7", "2026-11",
			map[string]string{"studio-x": "0.00", "aff-7": "0.00", "operator": "0.01"}},
		{"zero amount", txn.Bet, "0", "EUR", "2026-11-05T10:00:00Z", "aff-7", "2026-11",
			map[string]string{"studio-x": "0.00", "aff-7": "0.00", "operator": "0.00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := tx(t, tc.typ, tc.amount, tc.cur, tc.when)
			x.Affiliate = tc.affiliate
			res, err := b.Split("studio-x", x)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if res.Version.Name != tc.version || res.Rule != "casino" {
				t.Errorf("Split used %s/%s, want %s/casino", res.Version.Name, res.Rule, tc.version)
			}
			got := sharesMap(t, x.Currency, res.Shares)
			if len(got) != len(tc.want) {
				t.Fatalf("Split(%s %s) = %v, want %v", tc.amount, tc.cur, got, tc.want)
			}
			for p, w := range tc.want {
				if got[p] != w {
					t.Errorf("Split(%s %s) = %v, want %v", tc.amount, tc.cur, got, tc.want)
					break
				}
			}
			if sum := money.Sum(res.Shares); !sum.Equal(x.Signed()) {
				t.Errorf("Σ shares = %s, want %s", sum, x.Signed())
			}
			// Declaration order: studio, affiliate (if any), operator last.
			if res.Shares[0].Party != "studio-x" || res.Shares[len(res.Shares)-1].Party != "operator" {
				t.Errorf("share order = %v, want studio first, operator last", res.Shares)
			}
		})
	}
}

const matchSrc = head + `
  rule "slots-mt" {
    types         = ["bet", "win"]
    categories    = ["slot"]
    jurisdictions = ["MT"]
    share "studio" {
      party   = "${provider}"
      percent = "10"
    }
    remainder = "operator"
  }
  rule "acme-live" {
    providers  = ["acme"]
    games      = ["roulette"]
    brands     = ["main"]
    currencies = ["EUR"]
    share "studio" {
      party   = "${provider}"
      percent = "30"
    }
    remainder = "operator"
  }
  rule "weights" {
    types      = ["fee"]
    allocation = "remainder_to"
    rounding   = "down"
    share "a" {
      party  = "a"
      weight = "2"
    }
    share "b" {
      party  = "b"
      weight = "1"
    }
    remainder = "a"
  }
  rule "merge" {
    types = ["jackpot_contribution"]
    share "pool" {
      party   = "${provider}"
      percent = "50"
    }
    share "again" {
      party   = "operator"
      percent = "20"
    }
    remainder = "operator"
  }
}
`

func TestSplitMatching(t *testing.T) {
	b := mustParse(t, matchSrc)
	tests := []struct {
		name     string
		provider string
		edit     func(*txn.Tx)
		rule     string
		want     map[string]string
		wantErr  error
	}{
		{"first match wins", "acme", func(x *txn.Tx) { x.Category, x.Jurisdiction, x.Game, x.Brand = "slot", "MT", "roulette", "main" },
			"slots-mt", map[string]string{"acme": "10.00", "operator": "90.00"}, nil},
		{"second rule", "acme", func(x *txn.Tx) { x.Game, x.Brand = "roulette", "main" },
			"acme-live", map[string]string{"acme": "30.00", "operator": "70.00"}, nil},
		{"wrong provider", "other", func(x *txn.Tx) { x.Game, x.Brand = "roulette", "main" }, "", nil, ErrNoRule},
		{"wrong currency", "acme", func(x *txn.Tx) { x.Game, x.Brand, x.Currency = "roulette", "main", cur(t, "USD") }, "", nil, ErrNoRule},
		{"weights remainder_to", "acme", func(x *txn.Tx) { x.Type, x.Amount = txn.Fee, dec("0.10") },
			"weights", map[string]string{"a": "-0.07", "b": "-0.03"}, nil},
		{"same party merged", "acme", func(x *txn.Tx) { x.Type = txn.JackpotContribution },
			"merge", map[string]string{"acme": "50.00", "operator": "50.00"}, nil},
		{"reversal refused", "acme", func(x *txn.Tx) { x.Type = txn.Rollback }, "", nil, ErrReversal},
		{"unknown type", "acme", func(x *txn.Tx) { x.Type = "cashout" }, "", nil, ErrInvalidTx},
		{"no provider", "", func(x *txn.Tx) {}, "", nil, ErrInvalidTx},
		{"negative amount", "acme", func(x *txn.Tx) { x.Amount = dec("-1") }, "", nil, ErrInvalidTx},
		{"too many decimals", "acme", func(x *txn.Tx) { x.Amount = dec("1.001") }, "", nil, ErrInvalidTx},
		{"before first version", "acme", func(x *txn.Tx) { x.OccurredAt = ts("2020-01-01T00:00:00Z") }, "", nil, ErrNoVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := tx(t, txn.Bet, "100.00", "EUR", "2026-11-02T00:00:00Z")
			tc.edit(&x)
			res, err := b.Split(tc.provider, x)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Split error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if res.Rule != tc.rule {
				t.Errorf("Split matched %q, want %q", res.Rule, tc.rule)
			}
			got := sharesMap(t, x.Currency, res.Shares)
			if len(got) != len(tc.want) {
				t.Fatalf("Split = %v, want %v", got, tc.want)
			}
			for p, w := range tc.want {
				if got[p] != w {
					t.Fatalf("Split = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestSplitAfterCanonical checks that an auditor's copy (ParseCanonical of the
// recorded bytes) splits exactly like the original.
func TestSplitAfterCanonical(t *testing.T) {
	for _, v := range mustParse(t, matchSrc).Versions() {
		back, err := ParseCanonical(v.Canonical())
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range []txn.Type{txn.Bet, txn.Win, txn.Fee, txn.JackpotContribution} {
			x := tx(t, typ, "123.45", "EUR", "2026-11-02T00:00:00Z")
			x.Category, x.Jurisdiction = "slot", "MT"
			r1, err1 := v.Split("acme", x)
			r2, err2 := back.Split("acme", x)
			if (err1 == nil) != (err2 == nil) || len(r1.Shares) != len(r2.Shares) {
				t.Fatalf("%s: original %v %v, canonical copy %v %v", typ, r1.Shares, err1, r2.Shares, err2)
			}
			for i := range r1.Shares {
				if r1.Shares[i].Party != r2.Shares[i].Party || !r1.Shares[i].Amount.Equal(r2.Shares[i].Amount) {
					t.Fatalf("%s: original %v, canonical copy %v", typ, r1.Shares, r2.Shares)
				}
			}
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	book := mustParseFile(b, "testdata/example.hcl")
	x := tx(b, txn.Bet, "12.34", "EUR", "2026-11-05T10:00:00Z")
	x.Affiliate = "aff-7"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := book.Split("studio-x", x); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStepPrimitives: every kind of waterfall step and its cap and floor.
func TestStepPrimitives(t *testing.T) {
	const head = `ruleset "v" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "r" {
    currencies = ["EUR"]
`
	tests := []struct {
		name   string
		steps  string
		amount string
		meta   map[string]string
		want   map[string]string // "" = error
	}{
		{"percent of amount", `step "a" { party = "A" percent = "10" percent_of = "amount" }`, "10.05", nil,
			map[string]string{"A": "1.01", "op": "9.04"}}, // 1.005 → half_up 1.01
		{"percent of left", `step "a" { party = "A" percent = "50" percent_of = "amount" }
    step "b" { party = "B" percent = "50" percent_of = "left" }`, "10.00", nil,
			map[string]string{"A": "5.00", "B": "2.50", "op": "2.50"}},
		{"fixed fee", `step "a" { party = "A" fixed = "0.30" }`, "10.00", nil,
			map[string]string{"A": "0.30", "op": "9.70"}},
		{"fixed never more than the amount", `step "a" { party = "A" fixed = "0.30" }`, "0.20", nil,
			map[string]string{"A": "0.20", "op": "0.00"}},
		{"per unit", `step "a" { party = "A" per_unit = "0.002" units = "spins" }`, "10.00", map[string]string{"spins": "250"},
			map[string]string{"A": "0.50", "op": "9.50"}},
		{"per unit rounds once", `step "a" { party = "A" per_unit = "0.003" units = "spins" }`, "10.00", map[string]string{"spins": "5"},
			map[string]string{"A": "0.02", "op": "9.98"}}, // 0.015 → 0.02
		{"per unit without its meta is an error", `step "a" { party = "A" per_unit = "0.002" units = "spins" }`, "10.00", nil, nil},
		{"per unit with a bad quantity is an error", `step "a" { party = "A" per_unit = "0.002" units = "spins" }`, "10.00", map[string]string{"spins": "-3"}, nil},
		{"cap", `step "a" { party = "A" percent = "10" percent_of = "amount" cap = "5.00" }`, "100.00", nil,
			map[string]string{"A": "5.00", "op": "95.00"}},
		{"cap not reached", `step "a" { party = "A" percent = "10" percent_of = "amount" cap = "5.00" }`, "40.00", nil,
			map[string]string{"A": "4.00", "op": "36.00"}},
		{"floor", `step "a" { party = "A" percent = "1" percent_of = "amount" floor = "0.50" }`, "10.00", nil,
			map[string]string{"A": "0.50", "op": "9.50"}},
		{"floor never more than is left", `step "a" { party = "A" percent = "1" percent_of = "amount" floor = "0.50" }`, "0.30", nil,
			map[string]string{"A": "0.30", "op": "0.00"}},
		{"floor and cap", `step "a" { party = "A" percent = "10" percent_of = "amount" floor = "1.00" cap = "2.00" }`, "15.00", nil,
			map[string]string{"A": "1.50", "op": "13.50"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustParse(t, head+"    "+multiline(tc.steps)+"\n    remainder = \"op\"\n  }\n}\n")
			for _, typ := range []txn.Type{txn.Bet, txn.Win} {
				x := tx(t, typ, tc.amount, "EUR", "2026-06-01T00:00:00Z")
				x.Meta = tc.meta
				res, err := b.Split("P", x)
				if tc.want == nil {
					if !errors.Is(err, ErrInvalidTx) {
						t.Fatalf("Split = %v, %v; want ErrInvalidTx", res.Shares, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Split: %v", err)
				}
				got := sharesMap(t, x.Currency, res.Shares)
				for p, w := range tc.want {
					if typ == txn.Win && w != "0.00" {
						w = "-" + w // money out mirrors money in
					}
					if got[p] != w {
						t.Errorf("Split(%s %s) = %v, want %s: %s", typ, tc.amount, got, p, w)
					}
				}
				if len(got) != len(tc.want) {
					t.Errorf("Split(%s) = %v, want %v", tc.amount, got, tc.want)
				}
			}
		})
	}
}

// TestStepPrimitiveErrors: misuse of the step primitives is reported with its
// position and a fix.
func TestStepPrimitiveErrors(t *testing.T) {
	tests := []struct {
		name, currencies, step, want string
	}{
		{"per_unit without units", `["EUR"]`, `step "a" { party = "A" per_unit = "0.01" }`, "units: a per-unit step needs units"},
		{"units without per_unit", `["EUR"]`, `step "a" { party = "A" percent = "1" percent_of = "amount" units = "spins" }`, "units: units without per_unit"},
		{"two kinds", `["EUR"]`, `step "a" { party = "A" fixed = "1" per_unit = "0.01" units = "s" }`, "fixed: a step has one of percent, fixed or per_unit"},
		{"cap needs currencies", `[]`, `step "a" { party = "A" percent = "1" percent_of = "amount" cap = "1" }`, "cap: a cap amount needs the rule to be limited to its currencies"},
		{"cap too precise", `["JPY"]`, `step "a" { party = "A" percent = "1" percent_of = "amount" cap = "1.5" }`, "cap: 1.5 has more decimals than JPY allows (0)"},
		{"floor above cap", `["EUR"]`, `step "a" { party = "A" percent = "1" percent_of = "amount" cap = "1" floor = "2" }`, "floor: floor 2 is above cap 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := `ruleset "v" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "r" {
    currencies = ` + tc.currencies + `
    ` + multiline(tc.step) + `
    remainder = "op"
  }
}
`
			_, err := Parse([]byte(src), "t.hcl")
			re := regexp.MustCompile(`t\.hcl:\d+:\d+: ` + regexp.QuoteMeta(tc.want))
			if err == nil || !errors.Is(err, ErrInvalid) || !re.MatchString(err.Error()) {
				t.Errorf("Parse = %v, want a t.hcl:line:col problem containing %q", err, tc.want)
			}
		})
	}
}

// multiline turns one-line blocks (`step "a" { k = "v" k2 = "v2" }`) into
// HCL's multi-line form, keeping the first line where it was.
func multiline(s string) string {
	s = regexp.MustCompile(`\{ `).ReplaceAllString(s, "{\n")
	s = regexp.MustCompile(`" (\w+ =)`).ReplaceAllString(s, "\"\n$1")
	return regexp.MustCompile(`" \}`).ReplaceAllString(s, "\"\n}")
}

// TestSplitProperty: random rule sets (percent or weight shares, an
// optional affiliate and remainder, every allocation and rounding; or a
// waterfall of random steps) on random amounts in currencies of every
// exponent. The shares always sum exactly to the signed amount, every
// party appears once and every share fits the currency. The seed is printed.
func TestSplitProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	codes := []string{"JPY", "EUR", "KWD", "CLF"}
	allocs := []string{"largest_remainder", "top_down", "remainder_to"}
	rounds := []string{"half_up", "half_even", "down"}
	for i := range 300 {
		code := codes[rng.IntN(len(codes))]
		var b strings.Builder
		fmt.Fprintf(&b, "ruleset \"p\" {\n effective = \"2026-01-01T00:00:00Z\"\n rounding = %q\n allocation = %q\n rule \"r\" {\n currencies = [%q]\n",
			rounds[rng.IntN(3)], allocs[rng.IntN(3)], code)
		waterfall := rng.IntN(3) == 0
		n := 1 + rng.IntN(6)
		left := 100
		for j := range n {
			party := fmt.Sprintf("p%d", rng.IntN(4)) // repeats merge
			if j == 0 && rng.IntN(2) == 0 {
				party = "${affiliate}"
			}
			switch {
			case waterfall:
				fmt.Fprintf(&b, " step \"s%d\" {\n party = %q\n", j, party)
				switch rng.IntN(3) {
				case 0:
					fmt.Fprintf(&b, " percent = \"%d.%d\"\n percent_of = %q\n", rng.IntN(60), rng.IntN(10), []string{"amount", "left"}[rng.IntN(2)])
				case 1:
					fmt.Fprintf(&b, " fixed = \"%d\"\n", rng.IntN(50))
				default:
					fmt.Fprintf(&b, " per_unit = \"0.%03d\"\n units = \"u\"\n", rng.IntN(1000))
				}
				if rng.IntN(3) == 0 {
					fmt.Fprintf(&b, " cap = \"%d\"\n", 10+rng.IntN(100))
				}
				b.WriteString(" }\n")
			default:
				p := rng.IntN(left + 1)
				left -= p
				fmt.Fprintf(&b, " share \"s%d\" {\n party = %q\n percent = \"%d\"\n }\n", j, party, p)
			}
		}
		b.WriteString(" remainder = \"op\"\n }\n}\n")
		book, err := Parse([]byte(b.String()), "p.hcl")
		if err != nil {
			t.Fatalf("case %d (seed %d): %v\n%s", i, seed, err, b.String())
		}
		c := cur(t, code)
		x := tx(t, []txn.Type{txn.Bet, txn.Win}[rng.IntN(2)], "0", code, "2026-06-01T00:00:00Z")
		x.Amount = decimal.New(rng.Int64N(1e9), -c.Exponent)
		x.Affiliate = []string{"", "aff"}[rng.IntN(2)]
		x.Meta = map[string]string{"u": fmt.Sprint(rng.IntN(100000))}
		res, err := book.Split("P", x)
		if err != nil {
			t.Fatalf("case %d (seed %d): Split(%s %s): %v\n%s", i, seed, x.Amount, code, err, b.String())
		}
		if sum := money.Sum(res.Shares); !sum.Equal(x.Signed()) {
			t.Fatalf("case %d (seed %d): shares %v sum to %s, want %s\n%s", i, seed, res.Shares, sum, x.Signed(), b.String())
		}
		seen := map[string]bool{}
		for _, s := range res.Shares {
			if seen[s.Party] {
				t.Fatalf("case %d (seed %d): party %s twice in %v", i, seed, s.Party, res.Shares)
			}
			seen[s.Party] = true
			if !c.Fits(s.Amount) {
				t.Fatalf("case %d (seed %d): share %s does not fit %s", i, seed, s.Amount, code)
			}
		}
	}
}
