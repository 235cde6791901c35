package statement_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
)

// TestCarryResetAndMinimumPayout asserts the worked example of docs/fees.md
// "Carry-over resets and minimum payouts" (testdata carry-payout.hcl): A is
// paid 25% of NGR, negative NGR carried but dropped at a new quarter,
// minimum payout 100.00. With the reset removed, January's figure changes.
func TestCarryResetAndMinimumPayout(t *testing.T) {
	path := filepath.Join("..", "rules", "testdata", "carry-payout.hcl")
	book, err := rules.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{
		`{"provider":"p","id":"nov-b","type":"bet","amount":"100.00","currency":"EUR","occurred_at":"2026-11-05T10:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"nov-w","type":"win","amount":"500.00","currency":"EUR","occurred_at":"2026-11-06T10:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"dec-b","type":"bet","amount":"350.00","currency":"EUR","occurred_at":"2026-12-05T10:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"dec-x","type":"bonus_cost","amount":"50.00","currency":"EUR","occurred_at":"2026-12-06T10:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"jan-b","type":"bet","amount":"360.00","currency":"EUR","occurred_at":"2027-01-05T10:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"feb-b","type":"bet","amount":"80.00","currency":"EUR","occurred_at":"2027-02-05T10:00:00Z","affiliate":"A"}`,
	}
	run := func(book *rules.Book) []*statement.Statement {
		l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
		for _, line := range lines {
			l.apply([]byte(line))
		}
		src := &statement.Source{Entries: l.entries, Book: book}
		var out []*statement.Statement
		var prior *statement.Statement
		for _, ps := range []string{"2026-11", "2026-12", "2027-01", "2027-02"} {
			p, _ := statement.ParsePeriod(ps)
			s, err := statement.Build(src, "A", "EUR", p, prior)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
			prior = s
		}
		return out
	}
	type row struct{ ngr, carriedIn, dropped, base, fee, carryOut, closing, withheldIn, due, withheld string }
	want := []row{
		{"-400.00", "0.00", "0.00", "-400.00", "0.00", "-400.00", "0.00", "0.00", "0.00", "0.00"},
		{"300.00", "-400.00", "0.00", "-100.00", "0.00", "-100.00", "0.00", "0.00", "0.00", "0.00"},
		{"360.00", "0.00", "-100.00", "360.00", "90.00", "0.00", "90.00", "0.00", "0.00", "90.00"},
		{"80.00", "0.00", "0.00", "80.00", "20.00", "0.00", "110.00", "90.00", "110.00", "0.00"},
	}
	got := func(s *statement.Statement) row {
		f := s.Fees[0]
		return row{f.NGR, f.CarriedIn, f.CarryDropped, f.Base, f.Fee, f.CarryOut, s.Closing, s.Payout.WithheldIn, s.Payout.Due, s.Payout.Withheld}
	}
	for i, s := range run(book) {
		if g := got(s); g != want[i] {
			t.Errorf("%s: got %+v\nwant %+v", s.Period, g, want[i])
		}
		if c := string(statement.CSV(s)); !strings.Contains(c, "payout_withheld") || !strings.Contains(c, "fee_carry_dropped") {
			t.Errorf("%s CSV lacks the payout or carry lines:\n%s", s.Period, c)
		}
	}
	// Without the reset, January nets the −100.00 carried from December.
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	noReset, err := rules.Parse([]byte(strings.Replace(string(src), `carry_reset    = "quarter"`, "", 1)), "no-reset.hcl")
	if err != nil {
		t.Fatal(err)
	}
	ss := run(noReset)
	if g := fmt.Sprint(ss[2].Fees[0].Base, " ", ss[2].Fees[0].Fee, " ", ss[3].Closing, " ", ss[3].Payout.Due, " ", ss[3].Payout.Withheld); g != "260.00 65.00 85.00 0.00 85.00" {
		t.Errorf("without reset: January base, fee; February closing, due, withheld = %s, want 260.00 65.00 85.00 0.00 85.00", g)
	}
}

// TestTurnoverBasis: a fee on turnover is a percent of the stakes net of
// their rollbacks, whatever the wins: 0.5% of (2,000.00 − 500.00 rolled
// back) = 7.50, with a 3,000.00 win in the month.
func TestTurnoverBasis(t *testing.T) {
	book, err := rules.Parse([]byte(`ruleset "t" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
  fee "studio-turnover" {
    party          = "studio"
    basis          = "turnover"
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = false
    tier {
      percent = "0.5"
    }
  }
}
`), "t.hcl")
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
	for _, line := range []string{
		`{"provider":"p","id":"b","type":"bet","amount":"2000.00","currency":"EUR","occurred_at":"2026-11-05T10:00:00Z"}`,
		`{"provider":"p","id":"r","type":"rollback","parent":"b","amount":"500.00","currency":"EUR","occurred_at":"2026-11-05T10:01:00Z"}`,
		`{"provider":"p","id":"w","type":"win","amount":"3000.00","currency":"EUR","occurred_at":"2026-11-06T10:00:00Z"}`,
	} {
		l.apply([]byte(line))
	}
	nov, _ := statement.ParsePeriod("2026-11")
	s, err := statement.Build(&statement.Source{Entries: l.entries, Book: book}, "studio", "EUR", nov, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Fees[0]; f.Stakes != "1500.00" || f.Base != "1500.00" || f.Fee != "7.50" {
		t.Fatalf("turnover fee %+v, want stakes and base 1500.00, fee 7.50", f)
	}
}

// TestFeeMetaWorkedExample asserts the worked example of docs/fees.md
// "Conditions on player attributes": aff is paid 25% of the GGR of the
// cash-funded play of its players (meta.funds = "cash"); bonus-funded
// play and play whose funds are not stated are not in the basis. November:
// cash bet 1,000.00, cash win 300.00, bonus bet 400.00, bonus win 900.00,
// a bet of 100.00 without meta: stakes 1,000.00, wins 300.00, GGR 700.00
// from 2 entries, fee 175.00. Without the condition the GGR would be
// 300.00 and the fee 75.00 (also asserted).
func TestFeeMetaWorkedExample(t *testing.T) {
	src := `ruleset "m" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  party "operator" {}
  party "aff" {}
  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
  fee "aff cash revenue share" {
    party          = "aff"
    basis          = "ggr"
    affiliates     = ["aff"]
    meta           = { funds = ["cash"] }
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = false
    tier {
      percent = "25"
    }
  }
}
`
	lines := []string{
		`{"provider":"p","id":"c1","type":"bet","amount":"1000.00","currency":"EUR","occurred_at":"2026-11-05T10:00:00Z","affiliate":"aff","meta":{"funds":"cash"}}`,
		`{"provider":"p","id":"c2","type":"win","amount":"300.00","currency":"EUR","occurred_at":"2026-11-05T10:05:00Z","affiliate":"aff","meta":{"funds":"cash"}}`,
		`{"provider":"p","id":"x1","type":"bet","amount":"400.00","currency":"EUR","occurred_at":"2026-11-06T10:00:00Z","affiliate":"aff","meta":{"funds":"bonus"}}`,
		`{"provider":"p","id":"x2","type":"win","amount":"900.00","currency":"EUR","occurred_at":"2026-11-06T10:05:00Z","affiliate":"aff","meta":{"funds":"bonus"}}`,
		`{"provider":"p","id":"n1","type":"bet","amount":"100.00","currency":"EUR","occurred_at":"2026-11-07T10:00:00Z","affiliate":"aff"}`,
	}
	nov, _ := statement.ParsePeriod("2026-11")
	for _, c := range []struct {
		name, src                 string
		stakes, wins, ggr, fee, n string
	}{
		{"cash only", src, "1000.00", "300.00", "700.00", "175.00", "2"},
		{"no condition", strings.Replace(src, `meta           = { funds = ["cash"] }`, "", 1), "1500.00", "1200.00", "300.00", "75.00", "5"},
	} {
		book, err := rules.Parse([]byte(c.src), "m.hcl")
		if err != nil {
			t.Fatal(err)
		}
		l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
		for _, line := range lines {
			l.apply([]byte(line))
		}
		s, err := statement.Build(&statement.Source{Entries: l.entries, Book: book}, "aff", "EUR", nov, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Fees) != 1 {
			t.Fatalf("%s: fees %+v", c.name, s.Fees)
		}
		f := s.Fees[0]
		if f.Stakes != c.stakes || f.Wins != c.wins || f.GGR != c.ggr || f.Fee != c.fee || fmt.Sprint(f.Entries) != c.n || s.Closing != c.fee {
			t.Errorf("%s: stakes %s wins %s GGR %s entries %d fee %s closing %s; want %s %s %s %s %s %s",
				c.name, f.Stakes, f.Wins, f.GGR, f.Entries, f.Fee, s.Closing, c.stakes, c.wins, c.ggr, c.n, c.fee, c.fee)
		}
	}
}
