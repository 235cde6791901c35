package statement_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
)

const fxPropertyRules = `
ruleset "fx-property" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "down"
  allocation = "largest_remainder"
  party "operator" {}
  party "studio" {}
  rule "games" {
    types = ["bet", "win"]
    share "studio" {
      party   = "studio"
      percent = "%s"
    }
    remainder = "operator"
  }
  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
  fee "studio-rs" {
    party          = "studio"
    basis          = "ggr"
    period         = "month"
    currency       = "USD"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = false
    tier {
      percent = "10"
    }
  }
  settlement "studio" {
    currency = "USD"
    rounding = "%s"
    source   = "ecb"
  }
}
`

type postedRate struct {
	code string
	rate decimal.Decimal
	at   time.Time
	src  string
}

// TestPropertyFXStatements (issue 15 item 5): random sequences of bets and
// wins in four foreign currencies and USD, rollbacks in the same or the
// next month, and ECB rates posted at random times (ties, an ignored
// source, rates after the events) → the studio's November and December
// statements in USD, checked against an independent oracle (decimal
// arithmetic and money.Round, a linear scan for the rate in force):
//
//   - each currency's accrual lines = Σ over the studio's shares of
//     round(share × rate in force at the root event);
//   - its fx_difference line: amount = the period's foreign balance,
//     settled = round(balance × close rate), converted = settled − accrued;
//   - closing = opening + USD activity + Σ accruals + Σ FX differences,
//     exactly;
//   - the studio's USD fee has a GGR basis of every bet and win, the
//     foreign ones converted at their root event's rate;
//   - when every foreign transaction is reversed by the end of December,
//     the accruals of both statements sum to exactly 0 and the USD
//     closing is the USD activity and fees plus the posted FX differences: no minor
//     unit is created or lost by converting and reversing.
func TestPropertyFXStatements(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 15))
	foreign := []string{"EUR", "GBP", "JPY", "KWD"}
	nov, _ := statement.ParsePeriod("2026-11")
	dec, _ := statement.ParsePeriod("2026-12")
	start := nov.Start
	span := dec.End().Sub(start)
	iters := 120
	if testing.Short() {
		iters = 30
	}
	for iter := range iters {
		mode := []money.Rounding{money.HalfUp, money.HalfEven, money.Down}[iter%3]
		pct := []string{"30", "33.3333", "12.5", "100"}[rng.IntN(4)]
		book, err := rules.Parse([]byte(fmt.Sprintf(fxPropertyRules, pct, mode)), "fx-property.hcl")
		if err != nil {
			t.Fatal(err)
		}
		l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
		var rates []postedRate
		post := func(code string, at time.Time, src string) {
			r := decimal.New(rng.Int64N(3_000_000)+1, -int32(rng.IntN(7)))
			l.Entry(fx.Entry(src, code, "USD", r.String(), at, "treasury@op"))
			rates = append(rates, postedRate{code, r, at.Truncate(time.Second), src})
		}
		for _, c := range foreign { // a rate before every event
			post(c, start.Add(-time.Hour), "ecb")
		}
		type tx struct {
			id, typ, code string
			at            time.Time
		}
		var txs []tx
		reverseAll := iter%2 == 0
		n := 5 + rng.IntN(40)
		for i := range n {
			code := append(foreign, "USD")[rng.IntN(len(foreign)+1)]
			cur, _ := money.Lookup(code)
			typ := "bet"
			if rng.IntN(3) == 0 {
				typ = "win"
			}
			at := start.Add(time.Duration(rng.Int64N(int64(span) * 3 / 4))).Truncate(time.Second)
			amt := decimal.New(rng.Int64N(50_000)+1, -cur.Exponent)
			id := fmt.Sprintf("t%d", i)
			// Rates posted around the events, sometimes twice at one as-of
			// (the later in ledger order wins), sometimes of another source.
			for range rng.IntN(3) {
				c := foreign[rng.IntN(len(foreign))]
				rt := start.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Second)
				post(c, rt, "ecb")
				if rng.IntN(4) == 0 {
					post(c, rt, "ecb")
				}
				if rng.IntN(4) == 0 {
					post(c, rt, "fed")
				}
			}
			l.apply([]byte(fmt.Sprintf(`{"provider":"p","id":%q,"type":%q,"amount":%q,"currency":%q,"occurred_at":%q}`, id, typ, cur.Format(amt), code, at.Format(time.RFC3339))))
			txs = append(txs, tx{id, typ, code, at})
		}
		// Rollbacks: every foreign transaction when reverseAll, else some;
		// a rollback happens after its parent, in the same or next month.
		for _, x := range txs {
			if x.code == "USD" || !reverseAll && rng.IntN(3) != 0 {
				continue
			}
			at := x.at.Add(time.Duration(rng.Int64N(int64(dec.End().Sub(x.at))))).Truncate(time.Second)
			if !at.After(x.at) {
				at = x.at.Add(time.Second)
			}
			cur, _ := money.Lookup(x.code)
			var amount string
			for _, e := range l.entries {
				if e.Tx.ID == x.id {
					amount = cur.Format(e.Tx.Amount)
				}
			}
			l.apply([]byte(fmt.Sprintf(`{"provider":"p","id":"r-%s","type":"rollback","amount":%q,"currency":%q,"occurred_at":%q,"parent":%q}`, x.id, amount, x.code, at.Format(time.RFC3339), x.id)))
		}
		for _, c := range foreign { // the December close
			post(c, dec.End().Add(-time.Hour), "ecb")
		}

		// The oracle: the rate in force, by a linear scan in ledger order.
		rateAt := func(code string, at time.Time) decimal.Decimal {
			var best *postedRate
			for i, r := range rates {
				if r.code == code && r.src == "ecb" && !r.at.After(at) && (best == nil || !r.at.Before(best.at)) {
					best = &rates[i]
				}
			}
			if best == nil {
				t.Fatalf("oracle: no %s rate at %s", code, at)
			}
			return best.rate
		}
		usd, _ := money.Lookup("USD")
		conv := func(amount, rate decimal.Decimal) decimal.Decimal {
			return money.Round(amount.Mul(rate), usd.Exponent, mode)
		}
		byID := map[string]store.Entry{}
		for _, e := range l.entries {
			byID[e.Tx.ID] = e
		}
		src := &statement.Source{Entries: l.entries, Book: book}
		var prior *statement.Statement
		accruedTotal, diffTotal, usdTotal, feeTotal := decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero
		for _, p := range []statement.Period{nov, dec} {
			s, err := statement.Build(src, "studio", "USD", p, prior)
			if err != nil {
				t.Fatalf("iter %d %s: %v", iter, p, err)
			}
			// Independent figures of the period.
			wantAcc := map[string]decimal.Decimal{}
			balance := map[string]decimal.Decimal{}
			usdAct, ggr := decimal.Zero, decimal.Zero
			for _, e := range l.entries {
				if e.Tx.OccurredAt.Before(p.Start) || !e.Tx.OccurredAt.Before(p.End()) || e.Provider != "p" {
					continue
				}
				root := e
				if e.Tx.Parent != "" {
					root = byID[e.Tx.Parent]
				}
				if code := e.Tx.Currency.Code; code == "USD" { // the fee's basis: every bet and win, converted
					ggr = ggr.Add(e.Net)
				} else {
					ggr = ggr.Add(conv(e.Net, rateAt(code, root.Tx.OccurredAt)))
				}
				for _, sh := range e.Shares {
					if sh.Party != "studio" {
						continue
					}
					code := e.Tx.Currency.Code
					if code == "USD" {
						usdAct = usdAct.Add(sh.Amount)
						continue
					}
					wantAcc[code] = wantAcc[code].Add(conv(sh.Amount, rateAt(code, root.Tx.OccurredAt)))
					balance[code] = balance[code].Add(sh.Amount)
				}
			}
			gotAcc := map[string]decimal.Decimal{}
			sum := decimal.RequireFromString(s.Opening)
			for _, a := range s.Activity {
				sum = sum.Add(decimal.RequireFromString(a.Amount))
			}
			if act := sum.Sub(decimal.RequireFromString(s.Opening)); !act.Equal(usdAct) || len(s.Adjustments) != 0 || len(s.Fees) != 1 {
				t.Fatalf("iter %d %s: USD activity %s, oracle %s", iter, p, act, usdAct)
			}
			usdTotal = usdTotal.Add(usdAct)
			// The fee's GGR basis holds every bet and win, the foreign ones
			// converted at their (root) event's rate.
			fee := s.Fees[0]
			if !decimal.RequireFromString(fee.GGR).Equal(ggr) {
				t.Fatalf("iter %d %s: fee GGR %s, oracle %s", iter, p, fee.GGR, ggr)
			}
			sum = sum.Add(decimal.RequireFromString(fee.Fee))
			feeTotal = feeTotal.Add(decimal.RequireFromString(fee.Fee))
			diffs := 0
			for _, fl := range s.FX {
				c := decimal.RequireFromString(fl.Converted)
				sum = sum.Add(c)
				if fl.Rounding != string(mode) || fl.Source != "ecb" {
					t.Fatalf("iter %d %s: line %+v, want rounding %s source ecb", iter, p, fl, mode)
				}
				if fl.Kind == statement.FXAccrual {
					gotAcc[fl.Currency] = gotAcc[fl.Currency].Add(c)
					accruedTotal = accruedTotal.Add(c)
					continue
				}
				diffs++
				diffTotal = diffTotal.Add(c)
				bal := balance[fl.Currency]
				settled := conv(bal, rateAt(fl.Currency, p.End()))
				if !decimal.RequireFromString(fl.Amount).Equal(bal) || !decimal.RequireFromString(fl.Settled).Equal(settled) ||
					!decimal.RequireFromString(fl.Accrued).Equal(wantAcc[fl.Currency]) || !c.Equal(settled.Sub(wantAcc[fl.Currency])) {
					t.Fatalf("iter %d %s %s: fx_difference %+v; oracle balance %s settled %s accrued %s", iter, p, fl.Currency, fl, bal, settled, wantAcc[fl.Currency])
				}
			}
			for code, w := range wantAcc {
				if !gotAcc[code].Equal(w) {
					t.Fatalf("iter %d %s %s: accrual lines %s, oracle %s", iter, p, code, gotAcc[code], w)
				}
			}
			if diffs != len(wantAcc) || len(gotAcc) != len(wantAcc) {
				t.Fatalf("iter %d %s: %d fx_difference lines, %d accrued currencies, oracle %d", iter, p, diffs, len(gotAcc), len(wantAcc))
			}
			if !sum.Equal(decimal.RequireFromString(s.Closing)) {
				t.Fatalf("iter %d %s: opening + lines %s, closing %s", iter, p, sum, s.Closing)
			}
			prior = s
		}
		if reverseAll {
			if !accruedTotal.IsZero() {
				t.Fatalf("iter %d: every foreign share reversed, yet accruals sum to %s", iter, accruedTotal)
			}
			if c := decimal.RequireFromString(prior.Closing); !c.Equal(usdTotal.Add(diffTotal).Add(feeTotal)) {
				t.Fatalf("iter %d: closing %s, want USD activity %s + FX differences %s + fees %s", iter, c, usdTotal, diffTotal, feeTotal)
			}
		}
	}
}
