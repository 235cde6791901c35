package statement_test

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/engine"
	"github.com/tally-mesh/tally/settle/oplog"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
)

// TestCorrectionOnStatement: an approved adjustment (a correction entry of
// the operator log) moves the party's balance as its own activity line, and
// is never an event of a fee's basis: the revenue share is computed on the
// same GGR and entries as without it.
func TestCorrectionOnStatement(t *testing.T) {
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
  fee "aff revenue share" {
    party          = "aff"
    basis          = "ggr"
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
	book, err := rules.Parse([]byte(src), "m.hcl")
	if err != nil {
		t.Fatal(err)
	}
	nov, _ := statement.ParsePeriod("2026-11")
	build := func(withCorrection bool) *statement.Statement {
		l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
		l.apply([]byte(`{"provider":"p","id":"b1","type":"bet","amount":"1000.00","currency":"EUR","occurred_at":"2026-11-05T10:00:00Z"}`))
		l.apply([]byte(`{"provider":"p","id":"w1","type":"win","amount":"300.00","currency":"EUR","occurred_at":"2026-11-05T10:05:00Z"}`))
		if withCorrection {
			c := oplog.Correction{Exception: "x-0-1-0", N: 1, Currency: "EUR", ProposedBy: "ops", ApprovedBy: []string{"checker"}, ApprovalsRequired: 1,
				Reason: "over-reversal refunded", ApprovedAt: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC),
				Lines: []money.Share{{Party: "aff", Amount: decimal.RequireFromString("50.00")}, {Party: "operator", Amount: decimal.RequireFromString("-50.00")}}}
			tx, err := c.Tx()
			if err != nil {
				t.Fatal(err)
			}
			e, err := engine.OperatorEntry(tx, tx.OccurredAt)
			if err != nil {
				t.Fatal(err)
			}
			l.Entry(e)
		}
		s, err := statement.Build(&statement.Source{Entries: l.entries, Book: book}, "aff", "EUR", nov, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	plain, corrected := build(false), build(true)
	if len(plain.Fees) != 1 || len(corrected.Fees) != 1 {
		t.Fatalf("fees %+v / %+v", plain.Fees, corrected.Fees)
	}
	pf, cf := plain.Fees[0], corrected.Fees[0]
	if pf.GGR != "700.00" || pf.Fee != "175.00" || cf.GGR != pf.GGR || cf.Fee != pf.Fee || cf.Entries != pf.Entries {
		t.Errorf("fee without the correction: GGR %s fee %s entries %d; with it: GGR %s fee %s entries %d", pf.GGR, pf.Fee, pf.Entries, cf.GGR, cf.Fee, cf.Entries)
	}
	found := false
	for _, a := range corrected.Activity {
		if a.Type == "correction" && a.Amount == "50.00" && a.Count == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("no correction line of 50.00 in %+v", corrected.Activity)
	}
	if plain.Closing != "175.00" || corrected.Closing != "225.00" {
		t.Errorf("closings %s / %s, want 175.00 / 225.00", plain.Closing, corrected.Closing)
	}
}
