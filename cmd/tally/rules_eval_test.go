package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/settle/statement"
)

// vectorDir holds the shared acceptance vectors (copied from ../shared/vectors)
// and their expression in tally's rule syntax and transaction files.
var vectorDir = filepath.Join("..", "..", "settle", "rules", "testdata", "vectors")

func readJSON(t *testing.T, path string, dst any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// runEval runs `tally rules eval` on a vector's files and decodes its report.
func runEval(t *testing.T, name string, extra ...string) evalReport {
	t.Helper()
	args := append([]string{"rules", "eval", "--rules", filepath.Join(vectorDir, name+".hcl"), "--input", filepath.Join(vectorDir, name+".jsonl")}, extra...)
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("tally %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval output is not the report: %v\n%s", err, out)
	}
	return rep
}

func sharesOf(t *testing.T, rep evalReport, id string) map[string]string {
	t.Helper()
	for _, o := range rep.Transactions {
		if o.ID == id && o.Outcome == "applied" {
			m := map[string]string{}
			for _, s := range o.Shares {
				m[s.Party] = s.Amount
			}
			return m
		}
	}
	t.Fatalf("no applied outcome for %s in %+v", id, rep.Transactions)
	return nil
}

// TestRulesEvalDirtyStream: `tally rules eval` reproduces every figure of
// vectors/dirty-stream.json from testdata/vectors/dirty-stream.{hcl,jsonl}.
func TestRulesEvalDirtyStream(t *testing.T) {
	var v struct {
		Provider string `json:"provider"`
		Expect   struct {
			Stakes      string `json:"stakes_net_of_rollbacks"`
			Wins        string `json:"wins"`
			GGR         string `json:"ggr"`
			Applied     uint64 `json:"distinct_applied"`
			Duplicates  uint64 `json:"duplicates"`
			Conflicts   uint64 `json:"conflicts"`
			Rollbacks   int    `json:"rollbacks_applied"`
			OpenOrphans int    `json:"open_orphans"`
		} `json:"expect"`
	}
	readJSON(t, filepath.Join(vectorDir, "dirty-stream.json"), &v)
	rep := runEval(t, "dirty-stream", "--provider", v.Provider)
	c := rep.Counts
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"distinct applied", c.Applied, v.Expect.Applied},
		{"duplicates", c.Duplicates, v.Expect.Duplicates},
		{"conflicts", c.Conflicts, v.Expect.Conflicts},
		{"rollbacks applied", c.RollbacksApplied, v.Expect.Rollbacks},
		{"open orphans", c.OpenOrphans, v.Expect.OpenOrphans},
		{"orphans released", c.OrphansReleased, uint64(1)},
		{"rejected", c.Rejected, 0},
		{"exceptions (the conflict)", c.Exceptions, uint64(1)},
	} {
		if fmt.Sprint(f.got) != fmt.Sprint(f.want) {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
	var found bool
	for _, g := range rep.Gaming {
		if g.Provider != v.Provider || g.Currency != "EUR" {
			continue
		}
		found = true
		if g.Stakes != v.Expect.Stakes || g.Wins != v.Expect.Wins || g.GGR != v.Expect.GGR {
			t.Errorf("gaming %+v, want stakes %s wins %s GGR %s", g, v.Expect.Stakes, v.Expect.Wins, v.Expect.GGR)
		}
	}
	if !found {
		t.Fatalf("no gaming figures for %s EUR: %+v", v.Provider, rep.Gaming)
	}
	// The decisions line by line: the duplicate and the conflict apply
	// nothing; the early rollback is held and applied when its bet comes.
	want := []string{"1 applied p-1001", "2 applied p-1002", "3 applied p-1003", "4 applied p-1004", "5 applied p-1005",
		"6 duplicate p-1003", "7 held p-1006", "8 applied p-1007", "7 applied p-1006", "9 conflict p-1003"}
	var got []string
	for _, o := range rep.Transactions {
		got = append(got, fmt.Sprintf("%d %s %s", o.Line, o.Outcome, o.ID))
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("outcomes\n got %v\nwant %v", got, want)
	}
	// P's 10% of GGR and the operator's 90%, from the rule file.
	for _, b := range rep.Totals {
		want := map[string]string{"P": "-1.00", "operator": "-9.00"}[b.Party]
		if b.Formatted() != want || b.Currency != "EUR" {
			t.Errorf("total %s %s = %s, want %s", b.Party, b.Currency, b.Formatted(), want)
		}
	}
	if len(rep.Totals) != 2 {
		t.Errorf("totals %+v, want P and operator", rep.Totals)
	}
}

// TestRulesEvalAllocation: every allocation.json case through eval.
func TestRulesEvalAllocation(t *testing.T) {
	var v struct {
		Cases []struct {
			Name   string            `json:"name"`
			Amount string            `json:"amount"`
			Expect map[string]string `json:"expect"`
		} `json:"cases"`
	}
	readJSON(t, filepath.Join(vectorDir, "allocation.json"), &v)
	rep := runEval(t, "allocation")
	if len(rep.Transactions) != len(v.Cases) {
		t.Fatalf("%d outcomes for %d cases", len(rep.Transactions), len(v.Cases))
	}
	for i, c := range v.Cases {
		got := sharesOf(t, rep, fmt.Sprintf("case-%d", i+1))
		if c.Expect == nil { // the naive case: shares still sum to the amount
			if rep.Transactions[i].Net != c.Amount {
				t.Errorf("%s: net %s, want %s", c.Name, rep.Transactions[i].Net, c.Amount)
			}
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(c.Expect) {
			t.Errorf("%s: shares %v, want %v", c.Name, got, c.Expect)
		}
	}
}

// TestRulesEvalWaterfall: waterfall-jpy.json through eval.
func TestRulesEvalWaterfall(t *testing.T) {
	var v struct {
		Waterfall []struct {
			Party  string `json:"party"`
			Derive string `json:"derived"`
			Expect string `json:"expect"`
		} `json:"waterfall"`
	}
	readJSON(t, filepath.Join(vectorDir, "waterfall-jpy.json"), &v)
	rep := runEval(t, "waterfall-jpy")
	got := sharesOf(t, rep, "w-1")
	// The file's provider is "studio" and its affiliate "aff-1".
	names := map[string]string{"provider": "studio", "affiliate": "aff-1"}
	n := 0
	for _, s := range v.Waterfall {
		if s.Party == "" {
			continue // NGR is derived, not a party
		}
		party := s.Party
		if r, ok := names[party]; ok {
			party = r
		}
		n++
		if got[party] != s.Expect {
			t.Errorf("%s = %s, want %s", party, got[party], s.Expect)
		}
	}
	if len(got) != n {
		t.Errorf("shares %v, want %d parties", got, n)
	}
}

// TestRulesEvalTiers: tiers.json through eval: a month of GGR per case in
// testdata/vectors/tiers.jsonl (Jan 287,654.33; Feb 250,000.00; Mar
// 250,000.01; Apr 15,000.00; May −12,345.67; Jun 40,000.00), each month's
// statement carrying the fee of every contract, negative GGR carried from May
// into June where the contract says so.
func TestRulesEvalTiers(t *testing.T) {
	var v struct {
		Cases []struct {
			GGR    string   `json:"ggr"`
			Months []string `json:"months"`
			Mode   string   `json:"mode"`
			Carry  *bool    `json:"carry_negative"`
			Fee    string   `json:"fee"`
			Fees   []string `json:"fees"`
		} `json:"cases"`
	}
	readJSON(t, filepath.Join(vectorDir, "tiers.json"), &v)
	rep := runEval(t, "tiers")
	month := map[string]string{"287654.33": "2026-01", "250000.00": "2026-02", "250000.01": "2026-03", "15000.00": "2026-04", "-12345.67": "2026-05", "40000.00": "2026-06"}
	fee := func(period, name string) (string, string) {
		for _, s := range rep.Statements {
			if s.Party == "provider" && s.Period == period {
				for _, f := range s.Fees {
					if f.Name == name {
						return f.Fee, f.GGR
					}
				}
			}
		}
		t.Fatalf("no fee %s in the provider's %s statement", name, period)
		return "", ""
	}
	checked := 0
	for _, c := range v.Cases {
		carries := []bool{true, false} // a case without carry_negative holds for both
		if c.Carry != nil {
			carries = []bool{*c.Carry}
		}
		ggrs, fees := []string{c.GGR}, []string{c.Fee}
		if c.Months != nil {
			ggrs, fees = c.Months, c.Fees
		}
		for _, carry := range carries {
			name := c.Mode + "-carry"
			if !carry {
				name = c.Mode + "-no-carry"
			}
			for i, g := range ggrs {
				got, basis := fee(month[g], name)
				if basis != g || got != fees[i] {
					t.Errorf("%s, %s (GGR %s): fee %s on GGR %s, want %s", name, month[g], g, got, basis, fees[i])
				}
				checked++
			}
		}
	}
	if checked < len(v.Cases) {
		t.Fatalf("checked %d figures for %d cases", checked, len(v.Cases))
	}
	// The minimum-fee month shows its top-up line.
	for _, s := range rep.Statements {
		if s.Party == "provider" && s.Period == "2026-04" {
			for _, f := range s.Fees {
				if f.Computed != "1800.00" || f.TopUp != "700.00" {
					t.Errorf("April %s: computed %s top-up %s, want 1800.00 and 700.00", f.Name, f.Computed, f.TopUp)
				}
			}
		}
	}
}

// TestRulesEvalRejects: lines the edge would refuse are rejected with their
// stable code and never reach the engine.
func TestRulesEvalRejects(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "tx.jsonl")
	os.WriteFile(in, []byte(`{"id":"a","type":"bet","amount":1.5,"currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}
{"id":"b","type":"bet","amount":"1.00","currency":"ZZZ","occurred_at":"2026-11-01T10:00:00Z"}
not json

{"id":"c","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}
`), 0o644)
	out, err := runCLI(t, "rules", "eval", "--rules", filepath.Join(vectorDir, "dirty-stream.hcl"), "--input", in)
	if err != nil {
		t.Fatal(err, out)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range rep.Transactions {
		got = append(got, fmt.Sprintf("%d %s %s", o.Line, o.Outcome, o.Code))
	}
	// No provider on any line and no --provider: rejected before decoding.
	want := "1 rejected malformed; 2 rejected malformed; 3 rejected malformed; 5 rejected malformed"
	if strings.Join(got, "; ") != want {
		t.Errorf("outcomes %v, want %s", got, want)
	}
	out, err = runCLI(t, "rules", "eval", "--rules", filepath.Join(vectorDir, "dirty-stream.hcl"), "--input", in, "--provider", "P")
	if err != nil {
		t.Fatal(err, out)
	}
	rep = evalReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, o := range rep.Transactions {
		got = append(got, fmt.Sprintf("%d %s %s", o.Line, o.Outcome, o.Code))
	}
	want = "1 rejected amount_not_string; 2 rejected unknown_currency; 3 rejected malformed; 5 applied "
	if strings.Join(got, "; ") != want {
		t.Errorf("outcomes %v, want %s", got, want)
	}
	if _, err := runCLI(t, "rules", "eval", "--rules", filepath.Join(vectorDir, "dirty-stream.hcl")); exitCode(err) != 2 {
		t.Errorf("eval without --input: %v, want a usage error", err)
	}
}

// TestRulesEvalContract checks every figure docs/rules.md quotes for its
// worked provider contract (settle/rules/testdata/contract.{hcl,jsonl}).
func TestRulesEvalContract(t *testing.T) {
	dir := filepath.Join("..", "..", "settle", "rules", "testdata")
	out, err := runCLI(t, "rules", "check", filepath.Join(dir, "contract.hcl"))
	if err != nil || !strings.Contains(out, `ruleset "2026-11 studio-a" effective 2026-11-01T00:00:00Z hash dfc25197a97e6b43, 1 fee contracts`) || !strings.Contains(out, "ok: 1 rule set versions, 1 fee contracts") || strings.Contains(out, "warning") {
		t.Errorf("rules check contract.hcl: %v\n%s", err, out)
	}
	out, err = runCLI(t, "rules", "eval", "--rules", filepath.Join(dir, "contract.hcl"), "--input", filepath.Join(dir, "contract.jsonl"), "--period", "2026-11")
	if err != nil {
		t.Fatal(err, out)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		"a-1": "map[aff-7:5000.00 operator:15000.00]",
		"a-2": "map[operator:10000.00]",
		"a-3": "map[aff-7:-3000.00 operator:-9000.00]",
		"a-4": "map[operator:-1000.00]",
		"a-5": "map[operator:300.00]",
	} {
		if got := fmt.Sprint(sharesOf(t, rep, id)); got != want {
			t.Errorf("%s shares %s, want %s", id, got, want)
		}
	}
	if got := fmt.Sprint(rep.Totals); got != "[{aff-7 EUR 2000} {operator EUR 15300}]" {
		t.Errorf("totals %s", got)
	}
	g := rep.Gaming[len(rep.Gaming)-1]
	if g.Provider != "studio-a" || g.Stakes != "29300.00" || g.Wins != "12000.00" || g.GGR != "17300.00" {
		t.Errorf("gaming %+v", g)
	}
	var fee *statement.Fee
	for _, s := range rep.Statements {
		switch s.Party {
		case "studio-a":
			if len(s.Fees) == 1 {
				fee = &s.Fees[0]
			}
			if s.Closing != "1930.00" {
				t.Errorf("studio-a closing %s, want 1930.00", s.Closing)
			}
		case "aff-7":
			if fmt.Sprint(s.Activity) != "[{bet  slot 1 20000.00 5000.00} {win  slot 1 -12000.00 -3000.00}]" {
				t.Errorf("aff-7 activity %v", s.Activity)
			}
		}
	}
	if fee == nil {
		t.Fatal("studio-a has no fee line")
	}
	tiers := fmt.Sprint(fee.Tiers)
	if fee.GGR != "17300.00" || fee.Fee != "1930.00" || tiers != "[{1 0.00 10000.00 12 10000.00 1200} {2 10000.00 17300.00 10 7300.00 730}]" {
		t.Errorf("fee %+v tiers %s", fee, tiers)
	}
}

// TestRulesEvalHierarchy: `tally rules eval` reproduces every figure of
// vectors/hierarchy.json: the partner tree M → S → A of
// hierarchy-on-top.hcl and hierarchy-deducted.hcl, A paid 30% of the NGR of
// the transactions attributed to it, the overrides on top or deducted. Each
// case runs its own transaction file; the month activity of the first is
// checked on A's fee line (GGR, bonus costs, jackpot contributions, taxes,
// NGR).
func TestRulesEvalHierarchy(t *testing.T) {
	var v struct {
		Period   string            `json:"period"`
		Currency string            `json:"currency"`
		Activity map[string]string `json:"month_activity"`
		Cases    []struct {
			Name     string            `json:"name"`
			Activity map[string]string `json:"month_activity"`
			Expect   map[string]string `json:"expect"`
		} `json:"cases"`
	}
	readJSON(t, filepath.Join(vectorDir, "hierarchy.json"), &v)
	runs := vectorNodeRuns["hierarchy.json"] // vector case i → rule and transaction files
	if len(v.Cases) != len(runs) {
		t.Fatalf("hierarchy.json has %d cases, the test maps %d: map the new ones", len(v.Cases), len(runs))
	}
	for i, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			out, err := runCLI(t, "rules", "eval", "--rules", filepath.Join(vectorDir, runs[i].rules+".hcl"),
				"--input", filepath.Join(vectorDir, runs[i].input+".jsonl"), "--period", v.Period)
			if err != nil {
				t.Fatalf("rules eval: %v\n%s", err, out)
			}
			var rep evalReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("eval output: %v\n%s", err, out)
			}
			st := map[string]*statement.Statement{}
			for _, s := range rep.Statements {
				if s.Currency == v.Currency && s.Period == v.Period {
					st[s.Party] = s
				}
			}
			for _, p := range []string{"A", "S", "M"} {
				if st[p] == nil {
					t.Fatalf("no %s statement of %s for %s in %s", v.Currency, v.Period, p, out)
				}
			}
			if len(st["A"].Fees) != 1 {
				t.Fatalf("A has fees %+v, want the one revenue share", st["A"].Fees)
			}
			fee := st["A"].Fees[0]
			act := map[string]string{"ggr": fee.GGR, "bonuses": fee.Bonuses, "jackpot_contributions": fee.Jackpots, "taxes": fee.Taxes, "ngr": fee.NGR}
			want := c.Activity
			if want == nil {
				want = v.Activity
			}
			for k, w := range want {
				if act[k] != w {
					t.Errorf("A's fee line %s = %q, want %s", k, act[k], w)
				}
			}
			ngr := dec(t, fee.NGR)
			keeps := ngr
			for k, w := range c.Expect {
				var got string
				switch k {
				case "A", "S", "M":
					got = st[k].Closing // opening 0: the period's commission, net of what it pays up
					keeps = keeps.Sub(dec(t, got))
				case "A_carry":
					got = fee.CarryOut
				case "operator_keeps_of_ngr":
					continue
				default:
					t.Fatalf("unknown expectation %q", k)
				}
				if got != w {
					t.Errorf("%s = %s, want %s", k, got, w)
				}
			}
			if w, ok := c.Expect["operator_keeps_of_ngr"]; ok && keeps.String() != dec(t, w).String() {
				t.Errorf("operator keeps %s of NGR %s, want %s", keeps, ngr, w)
			}
		})
	}
}

func dec(t *testing.T, s string) decimal.Decimal {
	t.Helper()
	d, err := decimal.NewFromString(s)
	if err != nil {
		t.Fatalf("decimal %q: %v", s, err)
	}
	return d
}
