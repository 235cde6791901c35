package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-mesh/tally/settle/fx"
)

// TestStatementsReportCurrency: `tally statements --report-currency EUR`
// totals the statements of a period in one reporting currency at
// period-end rates, each line with the rate used (issue 15 item 5), on the
// worked example of docs/rules.md "Settlement currency and FX" from real
// ledger files. November: operator EUR 112.77 (rate 1), operator USD 70.00
// and studio-b USD 84.13 at 1 / EUR/USD 1.12 (the ECB rate of 30 Nov 16:00,
// allowed as an inverse with --report-inverse), half to even: 62.50 and
// 75.116… → 75.12; total 250.39. These are the figures of docs/statements.md
// "Reporting currency". Without --report-inverse there is no USD→EUR rate:
// the command fails with fx.ErrNoRate and issues nothing.
func TestStatementsReportCurrency(t *testing.T) {
	data := fxExampleLedger(t)

	// Flags of the report without the reporting currency, or a bad one.
	for _, args := range [][]string{
		{"--report-source", "ecb"},
		{"--report-inverse"},
		{"--report-rounding", "half_up"},
		{"--report-currency", "EURO"},
		{"--report-currency", "EUR", "--report-rounding", "nearest"},
	} {
		if out, err := runCLI(t, append([]string{"statements", "--data", data, "--period", "2026-11"}, args...)...); exitCode(err) != 2 {
			t.Errorf("statements %v: %v, want a usage error\n%s", args, err, out)
		}
	}

	// No USD→EUR rate without the inverse: refused, nothing issued.
	if out, err := runCLI(t, "statements", "--data", data, "--period", "2026-11", "--report-currency", "EUR", "--report-source", "ecb"); !errors.Is(err, fx.ErrNoRate) {
		t.Fatalf("without --report-inverse: %v, want ErrNoRate\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, "statements")); err == nil {
		if names, _ := filepath.Glob(filepath.Join(data, "statements", "*", "*.note")); len(names) > 0 {
			t.Fatalf("a refused report issued %v", names)
		}
	}

	out, err := runCLI(t, "statements", "--data", data, "--period", "2026-11", "--report-currency", "EUR", "--report-source", "ecb", "--report-inverse")
	if err != nil {
		t.Fatalf("statements --report-currency: %v\n%s", err, out)
	}
	var res statementsReportOut
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Statements) != 3 {
		t.Fatalf("statements %+v", res.Statements)
	}
	for _, o := range res.Statements {
		if o.Status != "issued" || o.Path == "" {
			t.Errorf("%s %s: status %q path %q, want issued", o.Statement.Party, o.Statement.Currency, o.Status, o.Path)
		}
	}
	r := res.Report
	if r == nil || r.Currency != "EUR" || r.Rounding != "half_even" || r.Total != "250.39" || len(r.Lines) != 3 {
		t.Fatalf("report %+v", r)
	}
	want := []struct{ party, cur, closing, rate, converted string }{
		{"operator", "EUR", "112.77", "1", "112.77"},
		{"operator", "USD", "70.00", "1.12", "62.50"},
		{"studio-b", "USD", "84.13", "1.12", "75.12"},
	}
	for i, w := range want {
		g := r.Lines[i]
		if g.Party != w.party || g.Currency != w.cur || g.Period != "2026-11" || g.Closing != w.closing || g.Rate != w.rate || g.Converted != w.converted {
			t.Errorf("line %d %+v, want %+v", i, g, w)
		}
		if w.cur == "USD" && (!g.Inverse || g.Pair != "EUR/USD" || g.Source != "ecb" || g.RateID != "fx-ecb-EURUSD-1796054400" || !g.AsOf.Equal(mustTime("2026-11-30T16:00:00Z"))) {
			t.Errorf("line %d rate %+v, want 1 / EUR/USD 1.12 (ecb, as of 2026-11-30T16:00:00Z)", i, g)
		}
	}

	// Run again: the statements exist (never recomputed), the report is the
	// same; as CSV, one header, the statements' rows, then the report's.
	csv, err := runCLI(t, "statements", "--data", data, "--period", "2026-11", "--report-currency", "EUR", "--report-source", "ecb", "--report-inverse", "--csv")
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, csv)
	}
	for _, row := range []string{
		"operator,EUR,2026-11,report,EUR,,,EUR 112.77,112.77,\"closing at the period-end rate EUR/EUR 1, rounding half_even\"",
		"operator,EUR,2026-11,report,USD,,,USD 70.00,62.50,\"closing at the period-end rate 1 / EUR/USD 1.12 (ecb, as of 2026-11-30T16:00:00Z, fx-ecb-EURUSD-1796054400), rounding half_even\"",
		"studio-b,EUR,2026-11,report,USD,,,USD 84.13,75.12,",
		",EUR,2026-11,report_total,,,3,,250.39,",
	} {
		if !strings.Contains(csv, row) {
			t.Errorf("csv lacks %q\n%s", row, csv)
		}
	}
	if n := strings.Count(csv, strings.Join(csvHeaderForTest(), ",")); n != 1 {
		t.Errorf("csv has %d headers\n%s", n, csv)
	}
}

func csvHeaderForTest() []string {
	return []string{"party", "currency", "period", "section", "item", "category", "count", "volume", "amount", "detail"}
}
