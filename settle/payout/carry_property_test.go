package payout

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

const carryBook = `ruleset "carry" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  party "operator" {}
  party "A" {}
  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
  fee "A-revshare" {
    party          = "A"
    basis          = "ngr"
    affiliates     = ["A"]
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = true
    RESET
    tier {
      percent = "25"
    }
  }
  payout "A" {
    currency = "EUR"
    minimum  = "100.00"
  }
}
`

type sink struct {
	t       *testing.T
	entries []store.Entry
}

func (s *sink) Entry(e store.Entry) {
	e.Index = uint64(len(s.entries))
	s.entries = append(s.entries, e)
}
func (s *sink) Exception(e settle.Exception) { s.t.Fatalf("exception %+v", e) }

// TestCarryAndPayoutProperties: random months of NGR (negative ones
// carried, with or without a quarterly reset) for affiliate A with a
// minimum payout of 100.00, a statement issued and a payout run made after
// each month, through the real settlement engine, statement builder and
// run planner; an independent model computes each month's fee, carry and
// payment. Every month: the fee and carry match the model; the closing is
// what A earned so far; the statement's due + withheld = closing; the
// run pays exactly the model's payment, never less than the minimum (what
// is still owed below it stays withheld); Σ paid + withheld = earned with
// withheld below the minimum whenever nothing is paid. Over the run: Σ
// positive bases charged = Σ NGR − the last carry + Σ carries dropped.
func TestCarryAndPayoutProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 8))
	eur, _ := money.Lookup("EUR")
	minimum := decimal.New(100, 0)
	bk := banks(t)
	for run := 0; run < 60; run++ {
		reset := rng.IntN(2) == 0
		src := strings.Replace(carryBook, "RESET", "", 1)
		if reset {
			src = strings.Replace(carryBook, "RESET", `carry_reset    = "quarter"`, 1)
		}
		book, err := rules.Parse([]byte(src), "carry.hcl")
		if err != nil {
			t.Fatal(err)
		}
		eng := settle.Engine{Book: book}
		st := settle.NewMemState()
		var cnt settle.Counters
		out := &sink{t: t}
		apply := func(id, typ string, minor int64, at time.Time) {
			if minor == 0 {
				return
			}
			payload, _ := json.Marshal(map[string]string{"id": id, "type": typ, "amount": decimal.New(minor, -2).StringFixed(2), "currency": "EUR", "occurred_at": at.Format(time.RFC3339), "affiliate": "A"})
			tx, rej := txn.Decode(payload, txn.DefaultLimits())
			if rej != nil {
				t.Fatalf("%s: %v", payload, rej)
			}
			if err := eng.Apply(st, out, &cnt, settle.Input{Provider: "p", EdgeNode: "test", Payload: tx.Canonical(), Now: tx.OccurredAt}); err != nil {
				t.Fatal(err)
			}
		}
		var runs []Run
		var prior *statement.Statement
		carry, earned, paid := decimal.Zero, decimal.Zero, decimal.Zero
		sumNGR, sumCharged, sumDropped := decimal.Zero, decimal.Zero, decimal.Zero
		months := 1 + rng.IntN(12)
		for m := 0; m < months; m++ {
			start := time.Date(2026, time.Month(1+m), 1, 0, 0, 0, 0, time.UTC)
			stake, win := rng.Int64N(200_000), rng.Int64N(200_000) // minor units, up to 2,000.00 each
			apply(fmt.Sprintf("b%d", m), "bet", stake, start.Add(time.Hour))
			apply(fmt.Sprintf("w%d", m), "win", win, start.Add(2*time.Hour))
			ngr := decimal.New(stake-win, -2)
			if reset && m > 0 && (m%3) == 0 { // January, April, July, October start a quarter
				sumDropped = sumDropped.Add(carry)
				carry = decimal.Zero
			}
			base := ngr.Add(carry)
			fee := decimal.Zero
			if base.IsPositive() {
				fee = money.Round(base.Mul(decimal.New(25, 0)).Shift(-2), 2, money.HalfUp)
				sumCharged = sumCharged.Add(base)
			}
			carry = decimal.Min(base, decimal.Zero)
			sumNGR = sumNGR.Add(ngr)
			earned = earned.Add(fee)
			payment := decimal.Zero
			if owed := earned.Sub(paid); owed.GreaterThanOrEqual(minimum) {
				payment = owed
			}

			period, _ := statement.ParsePeriod(start.Format("2006-01"))
			s, err := statement.Build(&statement.Source{Entries: append([]store.Entry(nil), out.entries...), Book: book}, "A", "EUR", period, prior)
			if err != nil {
				t.Fatal(err)
			}
			f := s.Fees[0]
			where := fmt.Sprintf("run %d (reset %v) %s", run, reset, period)
			if f.Fee != eur.Format(fee) || f.CarryOut != eur.Format(carry) || s.Closing != eur.Format(earned) {
				t.Fatalf("%s: fee %s carry %s closing %s, model %s %s %s", where, f.Fee, f.CarryOut, s.Closing, eur.Format(fee), eur.Format(carry), eur.Format(earned))
			}
			due, withheld := decimal.RequireFromString(s.Payout.Due), decimal.RequireFromString(s.Payout.Withheld)
			if !due.Add(withheld).Equal(earned) {
				t.Fatalf("%s: due %s + withheld %s ≠ closing %s", where, due, withheld, s.Closing)
			}
			req := Request{Period: period.String(), CreatedBy: "alice", ApprovedBy: "bob", Now: period.End().Add(24 * time.Hour), Banks: bk}
			r, _, err := Plan(runs, []Candidate{{Hash: fmt.Sprintf("h%d", m), Statement: s}}, req)
			got := decimal.Zero
			switch {
			case errors.Is(err, ErrNothingToPay):
			case err != nil:
				t.Fatal(err)
			default:
				if len(r.Items) != 1 {
					t.Fatalf("%s: %d items", where, len(r.Items))
				}
				got = decimal.RequireFromString(r.Items[0].Amount)
				if got.LessThan(minimum) {
					t.Fatalf("%s: paid %s, below the minimum payout %s", where, got, minimum)
				}
				runs = append(runs, *r)
			}
			if !got.Equal(payment) {
				t.Fatalf("%s: run paid %s, model %s (earned %s, paid before %s)", where, got, payment, earned, paid)
			}
			paid = paid.Add(got)
			if w := earned.Sub(paid); w.IsNegative() || (got.IsZero() && w.GreaterThanOrEqual(minimum)) || (!got.IsZero() && !w.IsZero()) {
				t.Fatalf("%s: withheld %s after paying %s", where, w, got)
			}
			prior = s
		}
		if !sumCharged.Equal(sumNGR.Sub(carry).Sub(sumDropped)) {
			t.Fatalf("run %d: charged %s, want Σ NGR %s − carry %s − dropped %s", run, sumCharged, sumNGR, carry, sumDropped)
		}
	}
}
