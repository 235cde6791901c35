package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/payout"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
)

// The worked example of docs/rules.md "Settlement currency and FX"
// (settle/rules/testdata/fx-settlement.hcl): studio-b earns 30% of every
// bet and is settled in USD at ECB rates, half to even.
var fxExampleRates = []struct{ source, rate, asOf string }{
	{"ecb", "1.08", "2026-11-01T00:00:00Z"},
	{"ecb", "1.10", "2026-11-15T00:00:00Z"},
	{"ecb", "1.12", "2026-11-30T16:00:00Z"},
	{"fed", "2.00", "2026-11-02T00:00:00Z"}, // another source: never used
	{"ecb", "1.15", "2026-12-02T16:00:00Z"}, // in force at the payout on 3 December
	{"ecb", "1.09", "2026-12-31T16:00:00Z"},
}

var fxExampleNovember = []string{
	`{"provider":"p","id":"b1","type":"bet","amount":"100.00","currency":"EUR","occurred_at":"2026-11-03T10:00:00Z"}`,
	`{"provider":"p","id":"b2","type":"bet","amount":"41.10","currency":"EUR","occurred_at":"2026-11-16T10:00:00Z"}`,
	`{"provider":"p","id":"b3","type":"bet","amount":"20.00","currency":"EUR","occurred_at":"2026-11-20T10:00:00Z"}`,
	`{"provider":"p","id":"u1","type":"bet","amount":"100.00","currency":"USD","occurred_at":"2026-11-21T10:00:00Z"}`,
}

const fxExampleDecember = `{"provider":"p","id":"r3","type":"rollback","amount":"20.00","currency":"EUR","occurred_at":"2026-12-02T10:00:00Z","parent":"b3"}`

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fxRateLine is a rate in the seam's fx_rate payload shape.
func fxRateLine(source, rate, asOf string) string {
	return fmt.Sprintf(`{"id":"fx-%s-EURUSD-%d","type":"fx_rate","amount":"0","currency":"EUR","occurred_at":%q,"meta":{"source":%q,"pair":"EUR/USD","rate":%q,"posted_by":"treasury@op"}}`,
		source, mustTime(asOf).Unix(), asOf, source, rate)
}

func fxStatement(t *testing.T, ss []*statement.Statement, party, cur, period string) *statement.Statement {
	t.Helper()
	for _, s := range ss {
		if s.Party == party && s.Currency == cur && s.Period == period {
			return s
		}
	}
	t.Fatalf("no statement %s %s %s", party, cur, period)
	return nil
}

// TestRulesEvalFXRates: `tally rules eval --rates` evaluates a contract
// with a settlement currency offline and reproduces every figure of the
// worked example (November 84.13 with a 1.57 FX difference, December
// 77.59); without rates the statement is refused (no rate in force), and a
// malformed rate line is refused naming its line.
func TestRulesEvalFXRates(t *testing.T) {
	dir := t.TempDir()
	hcl := filepath.Join("..", "..", "settle", "rules", "testdata", "fx-settlement.hcl")
	in := filepath.Join(dir, "tx.jsonl")
	os.WriteFile(in, []byte(strings.Join(append(append([]string(nil), fxExampleNovember...), fxExampleDecember), "\n")+"\n"), 0o644)
	var lines []string
	for _, r := range fxExampleRates {
		lines = append(lines, fxRateLine(r.source, r.rate, r.asOf))
	}
	rates := filepath.Join(dir, "rates.jsonl")
	os.WriteFile(rates, []byte("# ECB and Fed rates\n"+strings.Join(lines, "\n")+"\n"), 0o644)

	out, err := runCLI(t, "rules", "eval", "--rules", hcl, "--input", in, "--rates", rates)
	if err != nil {
		t.Fatalf("rules eval: %v\n%s", err, out)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Rates) != len(fxExampleRates) {
		t.Errorf("report rates %+v", rep.Rates)
	}
	nov := fxStatement(t, rep.Statements, "studio-b", "USD", "2026-11")
	if nov.Closing != "84.13" || len(nov.FX) != 3 || nov.FX[2].Kind != statement.FXDifference || nov.FX[2].Converted != "1.57" || nov.FX[2].Settled != "54.13" || nov.FX[2].RateID != "fx-ecb-EURUSD-1796054400" {
		t.Errorf("november %s %+v", nov.Closing, nov.FX)
	}
	dec := fxStatement(t, rep.Statements, "studio-b", "USD", "2026-12")
	if dec.Closing != "77.59" || len(dec.FX) != 2 || dec.FX[0].Converted != "-6.60" || dec.FX[1].Converted != "0.06" {
		t.Errorf("december %s %+v", dec.Closing, dec.FX)
	}
	for _, s := range rep.Statements {
		if s.Party == "studio-b" && s.Currency != "USD" {
			t.Errorf("studio-b has a %s statement", s.Currency)
		}
	}

	if out, err := runCLI(t, "rules", "eval", "--rules", hcl, "--input", in); !errors.Is(err, fx.ErrNoRate) {
		t.Errorf("without rates: %v, want ErrNoRate\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(lines[0]+"\n"+strings.Replace(lines[1], `"1.10"`, `"1,10"`, 1)+"\n"), 0o644)
	if _, err := runCLI(t, "rules", "eval", "--rules", hcl, "--input", in, "--rates", bad); !errors.Is(err, fx.ErrBadRate) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad rate line: %v, want ErrBadRate naming line 2", err)
	}
}

// fxExampleLedger writes the worked example's rates and November traffic
// into real ledger files in a new data directory (the fx_rate entries
// sealed straight in with the store API, as the settle engine records an
// oplog rate), with the statements clock at 3 December 09:00 UTC.
func fxExampleLedger(t *testing.T) string {
	t.Helper()
	book, err := rules.ParseFile(filepath.Join("..", "..", "settle", "rules", "testdata", "fx-settlement.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	l := newTestLedger(t, data, book)
	for _, r := range fxExampleRates {
		l.Entry(fx.Entry(r.source, "EUR", "USD", r.rate, mustTime(r.asOf), "treasury@op"))
	}
	var lines [][]byte
	for _, s := range fxExampleNovember {
		lines = append(lines, []byte(s))
	}
	l.settle(lines)
	statementsClock = func() time.Time { return mustTime("2026-12-03T09:00:00Z") }
	t.Cleanup(func() { statementsClock = time.Now })
	return data
}

// TestFXStatementsPayoutsCommand: the worked example from real ledger files.
// The fx_rate entries are sealed straight into the ledger with the store
// API (as the settle engine records an oplog rate: provider and edge node
// _tally, rule fx_rate), next to the settled bets. `tally statements`
// issues studio-b's November statement in USD with its FX lines (JSON and
// CSV), `tally fx rates` lists the rates and the one in force, and `tally
// payouts run` on 3 December pays it at that day's rate (1.15): 85.58,
// the FX difference +1.45 recorded with the rate.
func TestFXStatementsPayoutsCommand(t *testing.T) {
	data := fxExampleLedger(t)

	outs := statementsRun(t, "--data", data, "--period", "2026-11")
	var nov *statementOut
	for i, o := range outs {
		if o.Status != "issued" {
			t.Fatalf("november %+v", o)
		}
		if o.Statement.Party == "studio-b" {
			if o.Statement.Currency != "USD" || nov != nil {
				t.Fatalf("studio-b statements %+v", outs)
			}
			nov = &outs[i]
		}
	}
	if nov == nil || nov.Statement.Closing != "84.13" || len(nov.Statement.FX) != 3 || nov.Statement.FX[2].Converted != "1.57" || nov.Statement.FX[0].RateID != "fx-ecb-EURUSD-1793491200" {
		t.Fatalf("studio-b november %+v", nov)
	}
	csv, err := runCLI(t, "statements", "--data", data, "--period", "2026-11", "--party", "studio-b", "--csv")
	if err != nil || !strings.Contains(csv, "studio-b,USD,2026-11,fx_difference,EUR,,,EUR 48.33,1.57,") || !strings.Contains(csv, "studio-b,USD,2026-11,fx_accrual,bet,,1,EUR 30.00,32.40,") {
		t.Errorf("csv: %v\n%s", err, csv)
	}

	out, err := runCLI(t, "fx", "rates", "--data", data)
	if err != nil {
		t.Fatal(err, out)
	}
	var all []fxRateOut
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != len(fxExampleRates) || all[0].Pair != "EUR/USD" || all[0].Rate != "1.08" || all[0].ID != "fx-ecb-EURUSD-1793491200" {
		t.Fatalf("fx rates: %v %s", err, out)
	}
	out, err = runCLI(t, "fx", "rates", "--data", data, "--source", "ecb", "--at", "2026-12-03T09:00:00Z")
	var now []fxRateOut
	if err != nil || json.Unmarshal([]byte(out), &now) != nil || len(now) != 1 || now[0].Rate != "1.15" || now[0].Source != "ecb" {
		t.Fatalf("rate in force: %v %s", err, out)
	}

	banks := filepath.Join(t.TempDir(), "banks.hcl")
	os.WriteFile(banks, []byte(`
debtor {
  name = "Operator Ltd"
  iban = "DE89370400440532013000"
  bic  = "COBADEFFXXX"
}
party "studio-b" {
  name = "Studio B Inc"
  iban = "NL91ABNA0417164300"
  bic  = "ABNANL2A"
}
`), 0o644)
	out, err = runCLI(t, "payouts", "run", "--data", data, "--period", "2026-11", "--banks", banks, "--created-by", "alice", "--approve-by", "bob", "--unreviewed")
	if err != nil {
		t.Fatalf("payout: %v\n%s", err, out)
	}
	// stdout's JSON, then stderr's plain warning that an --unreviewed run
	// without --nats is not in the ledger
	var res payoutsOut
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Ledger.Recorded || !strings.Contains(out, "run RUN-000001 is NOT recorded in the ledger") {
		t.Fatalf("an --unreviewed run without --nats does not say it is not in the ledger: %+v\n%s", res.Ledger, out)
	}
	if len(res.Run.Items) != 1 {
		t.Fatalf("items %+v", res.Run.Items)
	}
	it := res.Run.Items[0]
	if it.Party != "studio-b" || it.Currency != "USD" || it.Due != "84.13" || it.Amount != "85.58" || it.FXDifference != "1.45" ||
		len(it.FX) != 1 || it.FX[0].Rate != "1.15" || it.FX[0].RateID != "fx-ecb-EURUSD-1796227200" || it.FX[0].AtPayout != "55.58" {
		t.Fatalf("item %+v", it)
	}
	if res.Run.Totals[0].Sum != "85.58" {
		t.Errorf("totals %+v", res.Run.Totals)
	}
	if _, err := runCLI(t, "payouts", "run", "--data", data, "--period", "2026-11", "--banks", banks, "--created-by", "alice", "--approve-by", "carol", "--unreviewed"); !errors.Is(err, payout.ErrNothingToPay) {
		t.Errorf("second run: %v", err)
	}
}

// TestFXPostCommand: `tally fx post` puts a rate into a running node's
// ledger through the operator log; posting it again keeps one entry; a
// different rate under the same id is a conflict exception, never applied;
// `tally fx rates` then lists the one rate and `tally verify` counts it.
func TestFXPostCommand(t *testing.T) {
	n, dir := startVectorNode(t, nil)
	post := func(rate string) (string, error) {
		return runCLI(t, "fx", "post", "--nats", n.ClientURL(), "--source", "ECB", "--pair", "EUR/USD", "--rate", rate,
			"--as-of", "2026-11-02T16:00:00Z", "--posted-by", "treasury")
	}
	for range 2 {
		if out, err := post("1.0823"); err != nil || !strings.Contains(out, "posted fx-ECB-EURUSD-1793635200") {
			t.Fatalf("fx post: %v\n%s", err, out)
		}
	}
	if out, err := post("1.0900"); err != nil {
		t.Fatalf("fx post of another rate: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "fx", "post", "--nats", n.ClientURL(), "--source", "ECB", "--pair", "EUR/EUR", "--rate", "1",
		"--as-of", "2026-11-02T16:00:00Z", "--posted-by", "treasury"); err == nil {
		t.Fatalf("a pair of one currency was posted: %s", out)
	}
	natstest.Eventually(t, 20*time.Second, func() error {
		s := n.Stats().Settle
		if s.Entries != 1 || s.Exceptions != 1 {
			return fmt.Errorf("%d entries, %d exceptions; want the rate once and the other rate a conflict", s.Entries, s.Exceptions)
		}
		return nil
	})
	n.Close()
	out, err := runCLI(t, "fx", "rates", "--data", dir)
	if err != nil || !strings.Contains(out, "EUR/USD") || !strings.Contains(out, "1.0823") || strings.Contains(out, "1.09") {
		t.Fatalf("fx rates: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "verify", dir); err != nil || !strings.Contains(out, "1 fx rate") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}
