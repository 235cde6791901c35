package statement

import (
	"encoding/hex"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store"
)

// Clawback is a CPA paid on an earlier statement and taken back on this
// one: the player's first deposit was reversed (refunded or rolled back,
// within the contract's clawback_days of the deposit) so far that it no
// longer qualifies. One line per player; Amount is −the CPA amount.
type Clawback struct {
	Fee          string    `json:"fee"`
	Ruleset      string    `json:"ruleset"`
	RuleSet      string    `json:"rule_set"` // hex hash of the version holding the fee
	Player       string    `json:"player"`
	Provider     string    `json:"provider"` // the first deposit
	Deposit      string    `json:"deposit"`
	OccurredAt   time.Time `json:"occurred_at"`
	Period       string    `json:"period"`        // the deposit's period, whose CPA is clawed back
	ClawbackDays int       `json:"clawback_days"` // the contract's window
	PaidNet      string    `json:"paid_net"`      // the deposit net of its reversals when the CPA was paid (the previous statement's ledger)
	Net          string    `json:"net"`           // the same now: below the minimum
	MinDeposit   string    `json:"min_deposit"`
	Amount       string    `json:"amount"`
}

// clawbacks gives the CPA clawbacks of party's statement for period after
// prior: every first deposit that prior (or a statement before it)
// accounted for, whose CPA fee (the fee of the version in force at the
// start of the deposit's period, with clawback_days) qualified it on the
// ledger prior saw, and that no longer reaches the minimum on the ledger
// now. Only the net of the deposit is judged again (the player's first
// deposit and first seen are those of the ledger now, as for every CPA),
// and the net only falls as reversals arrive: a player is clawed back at
// most once. Without an issued prior nothing was paid, so nothing is
// clawed back (a replayed prior saw the whole ledger).
func clawbacks(src *Source, cur money.Currency, party string, period Period, prior *Statement) []Clawback {
	if prior == nil || src.fd == nil || src.Book == nil {
		return nil
	}
	seen := func(e store.Entry) bool {
		for _, c := range prior.Ledger {
			if c.Partition == e.Partition {
				return e.Index < c.Size
			}
		}
		return false
	}
	var out []Clawback
	for _, d := range src.fd.entry { // map order: sorted below
		e := src.Entries[d]
		if e.Tx.Currency.Code != cur.Code || !prior.covers(e) {
			continue
		}
		dp := PeriodIn(period.Kind, e.Tx.OccurredAt, period.Start.Location())
		fees, vhash, _ := src.fees(dp, party, cur.Code)
		for _, fc := range fees {
			if fc.CPA == nil || fc.CPA.ClawbackDays == 0 || !fc.Selects(e.Provider, src.root[d]) {
				continue
			}
			c := *fc.CPA
			then := src.fd.net(src.Entries, d, c, seen)
			if !c.Qualifies(then, e.Tx.OccurredAt, src.fd.firstSeen[e.Tx.Player]) {
				continue
			}
			now := src.fd.net(src.Entries, d, c, anyEntry)
			if c.NetQualifies(now) {
				continue
			}
			out = append(out, Clawback{
				Fee: fc.Name, Ruleset: fc.Ruleset, RuleSet: hex.EncodeToString(vhash[:]), Player: e.Tx.Player,
				Provider: e.Provider, Deposit: e.Tx.ID, OccurredAt: e.Tx.OccurredAt, Period: dp.String(), ClawbackDays: c.ClawbackDays,
				PaidNet: cur.Format(then), Net: cur.Format(now), MinDeposit: cur.Format(c.MinDeposit), Amount: cur.Format(c.Amount.Neg()),
			})
		}
	}
	sortClawbacks(out)
	return out
}

// sortClawbacks orders lines by deposit time, then player and fee.
func sortClawbacks(cs []Clawback) {
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if !a.OccurredAt.Equal(b.OccurredAt) {
			return a.OccurredAt.Before(b.OccurredAt)
		}
		if a.Player != b.Player {
			return a.Player < b.Player
		}
		return a.Fee < b.Fee
	})
}

// clawbackTotal is Σ the lines' amounts.
func clawbackTotal(cs []Clawback) decimal.Decimal {
	t := decimal.Zero
	for _, c := range cs {
		t = t.Add(decimal.RequireFromString(c.Amount))
	}
	return t
}
