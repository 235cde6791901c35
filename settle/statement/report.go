package statement

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/fx"
)

// Report totals statements of several currencies in one reporting currency
// at period-end rates: each statement's closing converted at the rate in
// force at its period's end (as-of ≤ End), rounded with the named mode; the
// total is the exact sum of the converted lines. It is a view for finance,
// not a balance: nothing is paid from it and nothing is posted.
type Report struct {
	Currency string       `json:"currency"` // the reporting currency
	Rounding string       `json:"rounding"`
	Lines    []ReportLine `json:"lines"`
	Total    string       `json:"total"`
}

// ReportLine is one statement's closing in the reporting currency.
type ReportLine struct {
	Party     string    `json:"party"`
	Currency  string    `json:"currency"`
	Period    string    `json:"period"`
	Closing   string    `json:"closing"` // in Currency
	Pair      string    `json:"pair,omitempty"`
	Rate      string    `json:"rate"` // "1" for the reporting currency itself
	Inverse   bool      `json:"inverse,omitempty"`
	Source    string    `json:"source,omitempty"`
	AsOf      time.Time `json:"as_of,omitzero"`
	RateID    string    `json:"rate_id,omitempty"`
	Converted string    `json:"converted"` // in the reporting currency
}

// Totals builds the report of stmts in currency with rates under p, each
// conversion rounded with mode. A statement whose closing has no rate in
// force at its period's end is an error (fx.ErrNoRate).
func Totals(stmts []*Statement, currency string, rates *fx.Table, p fx.Policy, mode money.Rounding) (*Report, error) {
	rc, ok := money.Lookup(currency)
	if !ok {
		return nil, fmt.Errorf("report: unknown currency %q", currency)
	}
	if !mode.Valid() {
		return nil, fmt.Errorf("report: unknown rounding %q", string(mode))
	}
	r := &Report{Currency: currency, Rounding: string(mode), Lines: []ReportLine{}}
	total := decimal.Zero
	for _, s := range stmts {
		closing, err := decimal.NewFromString(s.Closing)
		if err != nil {
			return nil, fmt.Errorf("report: %s %s %s closing %q: %w", s.Party, s.Currency, s.Period, s.Closing, err)
		}
		q, err := rates.At(s.Currency, currency, s.End, p)
		if err != nil {
			return nil, fmt.Errorf("report: %s %s %s: %w", s.Party, s.Currency, s.Period, err)
		}
		c, err := q.Convert(closing, mode)
		if err != nil {
			return nil, fmt.Errorf("report: %s %s %s: %w", s.Party, s.Currency, s.Period, err)
		}
		l := ReportLine{Party: s.Party, Currency: s.Currency, Period: s.Period, Closing: s.Closing, Rate: "1", Converted: rc.Format(c)}
		if !q.Identity {
			l.Pair, l.Rate, l.Inverse, l.Source, l.AsOf, l.RateID = q.Rate.Pair(), q.Rate.Rate.String(), q.Inverse, q.Rate.Source, q.Rate.AsOf, q.Rate.ID
		}
		total = total.Add(c)
		r.Lines = append(r.Lines, l)
	}
	sort.SliceStable(r.Lines, func(i, j int) bool {
		a, b := r.Lines[i], r.Lines[j]
		if a.Party != b.Party {
			return a.Party < b.Party
		}
		return a.Currency < b.Currency
	})
	r.Total = rc.Format(total)
	return r, nil
}

// ReportCSV renders r as rows of the statement CSV's columns (CSVHeader;
// with header, the header row first): one `report` row per statement
// (party, the reporting currency, period, item = the statement's currency,
// volume = its closing, amount = converted, detail = the rate used and the
// rounding) and a `report_total` row.
func ReportCSV(r *Report, header bool) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if header {
		_ = w.Write(CSVHeader)
	}
	period := ""
	for _, l := range r.Lines {
		rate := l.Currency + "/" + r.Currency + " 1"
		if l.Pair != "" {
			rate = fmt.Sprintf("%s %s (%s, as of %s, %s)", l.Pair, l.Rate, l.Source, l.AsOf.Format(time.RFC3339), l.RateID)
			if l.Inverse {
				rate = "1 / " + rate
			}
		}
		_ = w.Write([]string{l.Party, r.Currency, l.Period, "report", l.Currency, "", "", l.Currency + " " + l.Closing, l.Converted,
			"closing at the period-end rate " + rate + ", rounding " + r.Rounding})
		if period == "" {
			period = l.Period
		} else if period != l.Period {
			period = "mixed"
		}
	}
	_ = w.Write([]string{"", r.Currency, period, "report_total", "", "", fmt.Sprint(len(r.Lines)), "", r.Total, "Σ of the converted closings"})
	w.Flush()
	return buf.Bytes()
}
