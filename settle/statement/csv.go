package statement

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"time"
)

// CSVHeader is the header row of CSV.
var CSVHeader = []string{"party", "currency", "period", "section", "item", "category", "count", "volume", "amount", "detail"}

// CSV renders s as one table, one row per line of the statement, in the
// order a reader expects: opening, activity, GGR, each fee with the tiers
// applied and its cap, top-up and total lines, adjustments, closing. Amounts
// are the statement's own strings (the currency's decimals; tier "exact"
// figures unrounded).
func CSV(s *Statement) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	row := func(section, item, category, count, volume, amount, detail string) {
		_ = w.Write([]string{s.Party, s.Currency, s.Period, section, item, category, count, volume, amount, detail})
	}
	_ = w.Write(CSVHeader)
	if s.Provisional {
		row("provisional", "", "", "", "", "", "the period had not ended at "+s.AsOf+": a preview, not to be paid")
	}
	row("opening", "", "", "", "", s.Opening, "previous "+orNone(s.Previous))
	for _, l := range s.Activity {
		item := l.Type
		if l.Of != "" {
			item += " of " + l.Of
		}
		row("activity", item, l.Category, fmt.Sprint(l.Count), l.Volume, l.Amount, "")
	}
	row("gaming", "stakes", "", "", "", s.Gaming.Stakes, "")
	row("gaming", "wins", "", "", "", s.Gaming.Wins, "")
	row("gaming", "ggr", "", "", "", s.Gaming.GGR, "")
	for _, f := range s.Fees {
		basis := f.GGR
		detail := fmt.Sprintf("%s %s, stakes %s, wins %s, carried in %s, ruleset %s", f.Basis, f.Mode, f.Stakes, f.Wins, f.CarriedIn, f.Ruleset)
		if f.NGR != "" {
			basis = f.NGR
			detail = fmt.Sprintf("%s %s, stakes %s, wins %s, ggr %s, bonuses %s, jackpot contributions %s, taxes %s, carried in %s, ruleset %s",
				f.Basis, f.Mode, f.Stakes, f.Wins, f.GGR, f.Bonuses, f.Jackpots, f.Taxes, f.CarriedIn, f.Ruleset)
		}
		row("fee_basis", f.Name, "", fmt.Sprint(f.Entries), basis, f.Base, detail)
		for _, t := range f.Tiers {
			row("fee_tier", fmt.Sprintf("%s tier %d", f.Name, t.Tier), "", "", t.Base, t.Exact, fmt.Sprintf("%s%% of (%s, %s]", t.Percent, t.From, t.To))
		}
		row("fee_computed", f.Name, "", "", "", f.Computed, "exact "+f.Exact+" rounded "+f.Rounding)
		if f.Maximum != "" {
			row("fee_capped", f.Name, "", "", "", f.Capped, "taken off the computed fee: maximum "+f.Maximum)
		}
		row("fee_top_up", f.Name, "", "", "", f.TopUp, "minimum "+f.Minimum)
		if f.CarryReset != "" {
			row("fee_carry_dropped", f.Name, "", "", "", f.CarryDropped, "negative base dropped: carry resets every "+f.CarryReset)
		}
		for _, l := range f.FX {
			row("fee_basis_fx", f.Name, "", fmt.Sprint(l.Count), l.Currency+" "+l.Amount, "",
				fmt.Sprintf("basis entries counted as %s %s at the event's rate %s", s.Currency, l.Converted, describeRate(l)))
		}
		row("fee", f.Name, "", "", "", f.Fee, "carry out "+f.CarryOut)
	}
	for _, o := range s.Overrides {
		row("override", o.Name, "", "", o.Base, o.Amount,
			fmt.Sprintf("%s%% of %s's commission to %s, paid by %s, exact %s rounded %s, ruleset %s", o.Percent, o.Of, o.Party, o.PaidBy, o.Exact, o.Rounding, o.Ruleset))
	}
	for _, l := range s.FX {
		rate := describeRate(l)
		if l.Kind == FXAccrual {
			item := l.Type
			if l.Of != "" {
				item += " of " + l.Of
			}
			row("fx_accrual", item, l.Category, fmt.Sprint(l.Count), l.Currency+" "+l.Amount, l.Converted, "at the event's rate "+rate)
			continue
		}
		row("fx_difference", l.Currency, "", "", l.Currency+" "+l.Amount, l.Converted,
			fmt.Sprintf("settled %s at the close rate %s, accrued %s", l.Settled, rate, l.Accrued))
	}
	for _, c := range s.Clawbacks {
		row("cpa_clawback", c.Fee, "", "1", c.Net, c.Amount,
			fmt.Sprintf("player %s first deposit %s/%s of %s at %s: net %s when paid, %s now (minimum %s, reversals within %d days), ruleset %s",
				c.Player, c.Provider, c.Deposit, c.Period, c.OccurredAt.Format(time.RFC3339), c.PaidNet, c.Net, c.MinDeposit, c.ClawbackDays, c.Ruleset))
	}
	for _, a := range s.Adjustments {
		item := a.Type
		if a.Of != "" {
			item += " of " + a.Of
		}
		row("adjustment", item, "", "1", a.Volume, a.Amount,
			fmt.Sprintf("%s/%s of %s at %s (partition %d index %d)", a.Provider, a.ID, a.Period, a.OccurredAt.Format(time.RFC3339), a.Partition, a.Index))
	}
	for _, n := range s.Notes {
		row("note", "", "", "", "", "", n)
	}
	row("closing", "", "", "", "", s.Closing, "")
	if p := s.Payout; p != nil {
		row("payout_due", "", "", "", "", p.Due, "minimum payout "+p.Minimum+", ruleset "+p.Ruleset)
		row("payout_withheld", "", "", "", "", p.Withheld, "below the minimum payout: carried to the next statement (withheld before: "+p.WithheldIn+")")
	}
	w.Flush()
	return buf.Bytes()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// describeRate is the rate of an FX line as the CSV shows it.
func describeRate(l FXLine) string {
	rate := l.Pair + " " + l.Rate
	if l.Inverse {
		rate = "1 / " + rate
	}
	return fmt.Sprintf("%s (%s, as of %s, %s), rounded %s", rate, l.Source, l.AsOf.Format(time.RFC3339), l.RateID, l.Rounding)
}
