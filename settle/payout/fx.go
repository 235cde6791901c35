package payout

import (
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/statement"
)

// A statement of a party with a settlement currency holds its foreign
// balances at the rate in force at the period's close (the fx_difference
// lines, settle/statement). A payout pays them at the rate in force when
// the run is created (Request.Now): for each fx_difference line of the
// statement paid, its foreign balance is converted again at the payout-time
// rate, of the same source and direction, with the line's rounding; the
// difference to the close-rate figure is added to the item's amount and
// recorded with the rate (ItemFX). PaidBefore counts what statements were
// paid, without these differences, so the next statement's due is not
// shifted by them. Only the paid statement's own foreign balances are
// revalued: those of earlier, withheld statements stay at their close rate.

// ItemFX is one foreign balance of a paid statement, revalued at payout.
type ItemFX struct {
	Currency   string    `json:"currency"` // the foreign currency
	Balance    string    `json:"balance"`  // in Currency: the fx_difference line's amount
	Pair       string    `json:"pair"`
	Rate       string    `json:"rate"`
	Inverse    bool      `json:"inverse,omitempty"`
	Source     string    `json:"source"`
	AsOf       time.Time `json:"as_of"`
	RateID     string    `json:"rate_id"`
	Rounding   string    `json:"rounding"`
	AtClose    string    `json:"at_close"`   // the statement's figure (its fx_difference line's settled)
	AtPayout   string    `json:"at_payout"`  // Balance at the payout-time rate
	Difference string    `json:"difference"` // AtPayout − AtClose, added to the item's amount
}

// ErrNoRates means a statement with foreign balances was to be paid without
// a rate table.
var ErrNoRates = errors.New("a statement with foreign balances needs the fx rates to be paid")

func revalue(s *statement.Statement, rates *fx.Table, now time.Time) ([]ItemFX, decimal.Decimal, error) {
	var out []ItemFX
	total := decimal.Zero
	cur, _ := money.Lookup(s.Currency)
	for _, l := range s.FX {
		if l.Kind != statement.FXDifference {
			continue
		}
		if rates == nil {
			return nil, decimal.Zero, fmt.Errorf("%s %s %s: %w", s.Party, s.Currency, s.Period, ErrNoRates)
		}
		q, err := rates.At(l.Currency, s.Currency, now, fx.Policy{Source: l.Source, Inverse: l.Inverse})
		if err != nil {
			return nil, decimal.Zero, fmt.Errorf("payout rate for %s %s %s: %w", s.Party, s.Currency, s.Period, err)
		}
		bal, err := decimal.NewFromString(l.Amount)
		if err != nil {
			return nil, decimal.Zero, fmt.Errorf("fx line amount %q: %w", l.Amount, err)
		}
		closeFig, err := decimal.NewFromString(l.Settled)
		if err != nil {
			return nil, decimal.Zero, fmt.Errorf("fx line settled %q: %w", l.Settled, err)
		}
		mode, err := money.ParseRounding(l.Rounding)
		if err != nil {
			return nil, decimal.Zero, err
		}
		at, err := q.Convert(bal, mode)
		if err != nil {
			return nil, decimal.Zero, err
		}
		d := at.Sub(closeFig)
		total = total.Add(d)
		out = append(out, ItemFX{Currency: l.Currency, Balance: l.Amount, Pair: q.Rate.Pair(), Rate: q.Rate.Rate.String(), Inverse: q.Inverse,
			Source: q.Rate.Source, AsOf: q.Rate.AsOf, RateID: q.Rate.ID, Rounding: l.Rounding,
			AtClose: cur.Format(closeFig), AtPayout: cur.Format(at), Difference: cur.Format(d)})
	}
	return out, total, nil
}
