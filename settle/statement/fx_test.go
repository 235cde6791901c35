package statement_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fxLedger settles the worked example of docs/rules.md "Settlement currency
// and FX" and posts its ECB rates as fx_rate entries.
func fxLedger(t *testing.T, book *rules.Book, lines ...string) *ledger {
	l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
	for _, r := range []struct{ rate, asOf string }{
		{"1.08", "2026-11-01T00:00:00Z"},
		{"1.10", "2026-11-15T00:00:00Z"},
		{"1.12", "2026-11-30T16:00:00Z"},
		{"1.09", "2026-12-31T16:00:00Z"},
	} {
		l.Entry(fx.Entry("ecb", "EUR", "USD", r.rate, ts(r.asOf), "treasury@op"))
	}
	l.Entry(fx.Entry("fed", "EUR", "USD", "2.00", ts("2026-11-02T00:00:00Z"), "treasury@op")) // another source: never used
	for _, line := range lines {
		l.apply([]byte(line))
	}
	return l
}

var fxNovember = []string{
	`{"provider":"p","id":"b1","type":"bet","amount":"100.00","currency":"EUR","occurred_at":"2026-11-03T10:00:00Z"}`,
	`{"provider":"p","id":"b2","type":"bet","amount":"41.10","currency":"EUR","occurred_at":"2026-11-16T10:00:00Z"}`,
	`{"provider":"p","id":"b3","type":"bet","amount":"20.00","currency":"EUR","occurred_at":"2026-11-20T10:00:00Z"}`,
	`{"provider":"p","id":"u1","type":"bet","amount":"100.00","currency":"USD","occurred_at":"2026-11-21T10:00:00Z"}`,
}

var fxDecember = []string{
	`{"provider":"p","id":"r3","type":"rollback","amount":"20.00","currency":"EUR","occurred_at":"2026-12-02T10:00:00Z","parent":"b3"}`,
}

// TestFXWorkedExample asserts every figure of the worked example: shares in
// EUR accrued in USD at the rate in force at each bet, the FX difference at
// the close rate as its own line, December's rollback accrued at its
// parent's November rate, and the closings.
func TestFXWorkedExample(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "rules", "testdata", "fx-settlement.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	l := fxLedger(t, book, append(append([]string(nil), fxNovember...), fxDecember...)...)
	src := &statement.Source{Entries: l.entries, Book: book}
	nov, _ := statement.ParsePeriod("2026-11")
	dec, _ := statement.ParsePeriod("2026-12")

	got := statement.Parties(src, nov)
	if len(got) != 3 || got[2] != [2]string{"studio-b", "USD"} {
		t.Fatalf("parties %v: studio-b has one statement, in USD", got)
	}
	if _, err := statement.Build(src, "studio-b", "EUR", nov, nil); err == nil || !strings.Contains(err.Error(), "settled in USD") {
		t.Fatalf("a EUR statement of studio-b: %v", err)
	}
	n, err := statement.Build(src, "studio-b", "USD", nov, nil)
	if err != nil {
		t.Fatal(err)
	}
	type fxRow struct{ kind, amount, rate, asOf, converted, accrued, settled string }
	row := func(l statement.FXLine) fxRow {
		return fxRow{l.Kind, l.Amount, l.Rate, l.AsOf.Format(time.RFC3339), l.Converted, l.Accrued, l.Settled}
	}
	check := func(s *statement.Statement, want []fxRow, closing string) {
		t.Helper()
		if len(s.FX) != len(want) {
			t.Fatalf("%s fx lines %+v, want %d", s.Period, s.FX, len(want))
		}
		for i, l := range s.FX {
			if row(l) != want[i] || l.Currency != "EUR" || l.Pair != "EUR/USD" || l.Source != "ecb" || l.Rounding != "half_even" {
				t.Errorf("%s fx line %d = %+v, want %+v", s.Period, i, l, want[i])
			}
		}
		if s.Closing != closing {
			t.Errorf("%s closing %s, want %s", s.Period, s.Closing, closing)
		}
	}
	// November: 30.00 EUR × 1.08 = 32.40; 12.33 × 1.10 = 13.563 → 13.56 and
	// 6.00 × 1.10 = 6.60 (one line, 20.16); the EUR balance 48.33 × 1.12 =
	// 54.1296 → 54.13 at the close, accrued 52.56: difference 1.57.
	check(n, []fxRow{
		{"accrual", "30.00", "1.08", "2026-11-01T00:00:00Z", "32.40", "", ""},
		{"accrual", "18.33", "1.1", "2026-11-15T00:00:00Z", "20.16", "", ""},
		{"fx_difference", "48.33", "1.12", "2026-11-30T16:00:00Z", "1.57", "52.56", "54.13"},
	}, "84.13") // 30.00 USD of the USD bet + 52.56 + 1.57
	if len(n.Activity) != 1 || n.Activity[0].Amount != "30.00" {
		t.Errorf("USD activity %+v", n.Activity)
	}
	// December: the rollback of b3 takes back 6.00 EUR at b3's rate 1.10
	// (−6.60), the −6.00 EUR balance is −6.54 at 1.09: difference +0.06.
	d, err := statement.Build(src, "studio-b", "USD", dec, n)
	if err != nil {
		t.Fatal(err)
	}
	check(d, []fxRow{
		{"accrual", "-6.00", "1.1", "2026-11-15T00:00:00Z", "-6.60", "", ""},
		{"fx_difference", "-6.00", "1.09", "2026-12-31T16:00:00Z", "0.06", "-6.60", "-6.54"},
	}, "77.59") // 84.13 − 6.60 + 0.06
	if d.FX[0].Type != "rollback" || d.FX[0].Of != "bet" || d.Opening != "84.13" {
		t.Errorf("december: %+v opening %s", d.FX[0], d.Opening)
	}
	// Without a prior statement December replays November: same figures.
	d2, err := statement.Build(src, "studio-b", "USD", dec, nil)
	if err != nil || string(d2.Canonical()) != string(d.Canonical()) {
		t.Fatalf("replayed december differs: %v\n%s\n%s", err, d2.Canonical(), d.Canonical())
	}
	csv := string(statement.CSV(n))
	for _, w := range []string{
		"studio-b,USD,2026-11,fx_accrual,bet,,1,EUR 30.00,32.40,\"at the event's rate EUR/USD 1.08 (ecb, as of 2026-11-01T00:00:00Z, fx-ecb-EURUSD-1793491200), rounded half_even\"",
		"studio-b,USD,2026-11,fx_difference,EUR,,,EUR 48.33,1.57,\"settled 54.13 at the close rate EUR/USD 1.12",
	} {
		if !strings.Contains(csv, w) {
			t.Errorf("csv lacks %s:\n%s", w, csv)
		}
	}
}

// TestFXNoRateRefused: a share whose event has no rate in force (before the
// first ECB rate; the fed rate is of another source) is a definite error,
// never a silent fallback.
func TestFXNoRateRefused(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "rules", "testdata", "fx-settlement.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	l := fxLedger(t, book, `{"provider":"p","id":"early","type":"bet","amount":"10.00","currency":"EUR","occurred_at":"2026-10-31T23:59:59Z"}`)
	src := &statement.Source{Entries: l.entries, Book: book}
	nov, _ := statement.ParsePeriod("2026-11")
	if _, err := statement.Build(src, "studio-b", "USD", nov, nil); !errors.Is(err, fx.ErrNoRate) {
		t.Fatalf("got %v, want ErrNoRate", err)
	}
	// Without any rate entry at all, likewise.
	l2 := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
	l2.apply([]byte(fxNovember[0]))
	if _, err := statement.Build(&statement.Source{Entries: l2.entries, Book: book}, "studio-b", "USD", nov, nil); !errors.Is(err, fx.ErrNoRate) {
		t.Fatalf("no rates: %v, want ErrNoRate", err)
	}
}

// TestFXReportTotals totals the operator's November EUR and USD statements
// of the worked example in EUR at the period-end rates: the USD closing via
// the inverse of EUR/USD 1.12 (allowed explicitly), each line with its rate.
func TestFXReportTotals(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "rules", "testdata", "fx-settlement.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	l := fxLedger(t, book, fxNovember...)
	src := &statement.Source{Entries: l.entries, Book: book}
	nov, _ := statement.ParsePeriod("2026-11")
	var ss []*statement.Statement
	for _, c := range []string{"USD", "EUR"} {
		s, err := statement.Build(src, "operator", c, nov, nil)
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	tb, err := fx.NewTable(l.entries)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := statement.Totals(ss, "EUR", tb, fx.Policy{Source: "ecb"}, "half_even"); !errors.Is(err, fx.ErrNoRate) {
		t.Fatalf("USD→EUR without inverse: %v, want ErrNoRate", err)
	}
	r, err := statement.Totals(ss, "EUR", tb, fx.Policy{Source: "ecb", Inverse: true}, "half_even")
	if err != nil {
		t.Fatal(err)
	}
	// EUR: 70% of 161.10 = 112.77; USD: 70.00 / 1.12 = 62.5 → 62.50.
	if len(r.Lines) != 2 || r.Lines[0].Currency != "EUR" || r.Lines[0].Closing != "112.77" || r.Lines[0].Rate != "1" ||
		r.Lines[1].Closing != "70.00" || r.Lines[1].Converted != "62.50" || !r.Lines[1].Inverse || r.Lines[1].Rate != "1.12" || r.Total != "175.27" {
		t.Fatalf("report %+v", r)
	}
}

// TestFXFeeBasis asserts the worked example of docs/fees.md "Fees of a
// party settled in another currency" (testdata fx-fees.hcl): aff-u is
// settled in USD; the EUR entries of its fee bases count at the rate in
// force at their events (a rollback at its parent's), each rounded half to
// even, and every conversion is on the fee line with its rate.
func TestFXFeeBasis(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "rules", "testdata", "fx-fees.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	l := fxLedger(t, book,
		`{"provider":"p","id":"d1","type":"deposit","amount":"20.00","currency":"EUR","occurred_at":"2026-11-03T09:00:00Z","player":"p1","affiliate":"aff-u"}`,
		`{"provider":"p","id":"b1","type":"bet","amount":"1000.00","currency":"EUR","occurred_at":"2026-11-03T10:00:00Z","player":"p1","affiliate":"aff-u"}`,
		`{"provider":"p","id":"w1","type":"win","amount":"400.00","currency":"EUR","occurred_at":"2026-11-16T10:00:00Z","player":"p1","affiliate":"aff-u"}`,
		`{"provider":"p","id":"d2","type":"deposit","amount":"30.00","currency":"EUR","occurred_at":"2026-11-16T11:00:00Z","player":"p2","affiliate":"aff-u"}`,
		`{"provider":"p","id":"b3","type":"bet","amount":"33.34","currency":"EUR","occurred_at":"2026-11-20T10:00:00Z","player":"p2","affiliate":"aff-u"}`,
		`{"provider":"p","id":"u1","type":"bet","amount":"200.00","currency":"USD","occurred_at":"2026-11-21T10:00:00Z","player":"p2","affiliate":"aff-u"}`,
		`{"provider":"p","id":"r3","type":"rollback","amount":"33.34","currency":"EUR","occurred_at":"2026-12-02T10:00:00Z","parent":"b3"}`,
	)
	src := &statement.Source{Entries: l.entries, Book: book}
	nov, _ := statement.ParsePeriod("2026-11")
	dec, _ := statement.ParsePeriod("2026-12")
	n, err := statement.Build(src, "aff-u", "USD", nov, nil)
	if err != nil {
		t.Fatal(err)
	}
	fees := map[string]statement.Fee{}
	for _, f := range n.Fees {
		fees[f.Name] = f
	}
	// GGR in USD: 1000.00 × 1.08 = 1080.00, −400.00 × 1.10 = −440.00,
	// 33.34 × 1.10 = 36.674 → 36.67, and 200.00 USD: 876.67; 25% =
	// 219.1675 → 219.17 (the fee's half_up).
	rs := fees["aff-u-revshare"]
	if rs.Stakes != "1316.67" || rs.Wins != "440.00" || rs.GGR != "876.67" || rs.Fee != "219.17" || rs.Entries != 6 {
		t.Errorf("revshare %+v", rs)
	}
	// Every entry the fee selects is converted, deposits too (they count
	// in its entries, not in GGR): at 1.08 b1 and d1, 1000.00 + 20.00 →
	// 1080.00 + 21.60; at 1.10 w1, d2 and b3, −400.00 + 30.00 + 33.34 →
	// −440.00 + 33.00 + 36.67.
	type row struct{ kind, cur, amount, rate, converted string }
	want := []row{
		{"fee_basis", "EUR", "1020.00", "1.08", "1101.60"},
		{"fee_basis", "EUR", "-336.66", "1.1", "-370.33"},
	}
	if len(rs.FX) != len(want) {
		t.Fatalf("revshare fx %+v", rs.FX)
	}
	for i, fl := range rs.FX {
		if g := (row{fl.Kind, fl.Currency, fl.Amount, fl.Rate, fl.Converted}); g != want[i] || fl.Rounding != "half_even" || fl.Source != "ecb" {
			t.Errorf("revshare fx %d = %+v, want %+v", i, fl, want[i])
		}
	}
	// CPA: p1's first deposit 20.00 EUR × 1.08 = 21.60 USD < 25.00; p2's
	// 30.00 EUR × 1.10 = 33.00 qualifies: 1 × 40.00.
	cpa := fees["aff-u-cpa"]
	if cpa.Fee != "40.00" || cpa.CPA == nil || cpa.CPA.Qualified != 1 || cpa.CPA.Players[0] != "p2" || len(cpa.FX) != 2 {
		t.Errorf("cpa %+v %+v", cpa, cpa.CPA)
	}
	if n.Closing != "259.17" || len(n.FX) != 0 {
		t.Errorf("november closing %s fx %+v", n.Closing, n.FX)
	}
	csv := string(statement.CSV(n))
	if !strings.Contains(csv, `aff-u,USD,2026-11,fee_basis_fx,aff-u-revshare,,2,EUR 1020.00,,"basis entries counted as USD 1101.60 at the event's rate EUR/USD 1.08 (ecb, as of 2026-11-01T00:00:00Z, fx-ecb-EURUSD-1793491200), rounded half_even"`) {
		t.Errorf("csv lacks the fee's FX line:\n%s", csv)
	}
	// December: the rollback of b3 takes back 36.67 at b3's rate, not
	// December's: GGR −36.67, no fee (no carry).
	d, err := statement.Build(src, "aff-u", "USD", dec, n)
	if err != nil {
		t.Fatal(err)
	}
	if f := d.Fees[0]; f.Name != "aff-u-revshare" && d.Fees[1].Name == "aff-u-revshare" {
		d.Fees[0], d.Fees[1] = d.Fees[1], d.Fees[0]
	}
	if f := d.Fees[0]; f.GGR != "-36.67" || f.Fee != "0.00" || len(f.FX) != 1 || f.FX[0].Rate != "1.1" || f.FX[0].Converted != "-36.67" {
		t.Errorf("december revshare %+v", f)
	}
	// A foreign basis entry without a rate in force is refused.
	l2 := fxLedger(t, book, `{"provider":"p","id":"early","type":"bet","amount":"10.00","currency":"EUR","occurred_at":"2026-10-31T12:00:00Z","player":"p9","affiliate":"aff-u"}`)
	oct, _ := statement.ParsePeriod("2026-10")
	if _, err := statement.Build(&statement.Source{Entries: l2.entries, Book: book}, "aff-u", "USD", oct, nil); !errors.Is(err, fx.ErrNoRate) {
		t.Errorf("basis entry without a rate: %v, want ErrNoRate", err)
	}
}
