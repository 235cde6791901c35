package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
)

// TestHierarchyThroughNode: the partner tree of vectors/hierarchy.json
// through a real node (embedded hub, ingest and settle roles in one child
// process, real JetStream and Badger): the vector's transactions are sent
// with `tally send` over HTTP, settled into the ledger with the rule file
// hierarchy-deducted.hcl, and `tally statements` on the node's data directory
// (rule sets as the node recorded them) must give the vector's figures for
// the deducted case: A 5,400.00, S 570.00, M 30.00.
func TestHierarchyThroughNode(t *testing.T) {
	dir, n := vectorThroughNode(t, "hierarchy-deducted", "hierarchy")

	// tally verify recomputes every entry's split from the recorded rule set,
	// the new tax type and the tree's declared parties included.
	if out, err := runCLI(t, "verify", filepath.Join(dir, "data")); err != nil || !strings.Contains(out, fmt.Sprintf("OK: %d entries", n)) {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	outs := statementsRun(t, "--data", filepath.Join(dir, "data"), "--period", "2026-11")
	got := map[string]string{}
	for _, o := range outs {
		got[o.Statement.Party] = o.Statement.Closing
	}
	for p, w := range map[string]string{"A": "5400.00", "S": "570.00", "M": "30.00"} {
		if got[p] != w {
			t.Errorf("%s closing %q, want %s (all: %v)", p, got[p], w, got)
		}
	}
}

// vectorThroughNode runs the vector transactions testdata/vectors/<input>.jsonl
// through a real node (embedded hub, ingest and settle roles in one child
// process, real JetStream and Badger) settling with the rule file
// testdata/vectors/<rules>.hcl: sent with `tally send` over HTTP as the
// lines' provider, then the node is stopped once every transaction is in
// the ledger. It returns the node's directory (data under "data") and the
// number of transactions.
func vectorThroughNode(t *testing.T, rulesName, input string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(vectorDir, rulesName+".hcl"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "rules.hcl"), string(rules))
	raw, err := os.ReadFile(filepath.Join(vectorDir, input+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// The lines without the eval-only "provider" key, which names the
	// provider whose credentials send them (one per file).
	var lines []byte
	provider, n := "", 0
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		p, _ := m["provider"].(string)
		if provider != "" && p != provider {
			t.Fatalf("%s.jsonl names providers %q and %q: one per file", input, provider, p)
		}
		provider = p
		delete(m, "provider")
		b, _ := json.Marshal(m)
		lines = append(append(lines, b...), '\n')
		n++
	}
	hubPort, httpPort := freePort(t), freePort(t)
	const token = "vector-http-token-0123456789"
	cfg := writeFile(t, filepath.Join(dir, "node.hcl"), fmt.Sprintf(`
node_id   = "node-1"
data_dir  = "data"
roles     = ["hub", "ingest", "settle"]
log_level = "warn"
hub {
  listen        = "127.0.0.1:%d"
  sync_interval = "always"
}
ingest {
  http_listen = "127.0.0.1:%d"
}
provider %q {
  nats_password = "vector-nats-password"
  http_token    = %q
}
settle {
  rules               = "rules.hcl"
  segment_max_age     = "50ms"
  segment_max_entries = 200
}
`, hubPort, httpPort, provider, token))
	node := startChild(t, dir, "node", "--config", cfg)
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", httpPort))
	in := writeFile(t, filepath.Join(dir, "tx.jsonl"), string(lines))
	if out, err := runCLI(t, "send", "--http", fmt.Sprintf("http://127.0.0.1:%d", httpPort), "--provider", provider, "--token", token, in); err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	ledger := filepath.Join(dir, "data", "ledger")
	natstest.Eventually(t, 30*time.Second, func() error {
		ids, _ := ledgerIDs(ledger)
		if len(ids) < n {
			return fmt.Errorf("%d of %d transactions in the ledger", len(ids), n)
		}
		return nil
	})
	node.stop(t)
	return dir, n
}

// TestVectorsThroughNode: every public vector's transactions through a real
// node, compared figure by figure with `tally rules eval` on the same files
// (whose figures TestRulesEval* assert against the vectors): every entry's
// shares, and every statement (closing and each fee) that eval prints,
// issued by `tally statements` from the node's ledger, period by period.
// The node's ledger also passes `tally verify`. dirty-stream.json (whose
// duplicates and conflict never reach the ledger as entries) goes through
// real nodes in nodes/TestDirtyStreamEndToEnd; the deducted hierarchy case
// also in TestHierarchyThroughNode.
func TestVectorsThroughNode(t *testing.T) {
	var runs []vectorRun
	for _, name := range sortedKeys(vectorNodeRuns) {
		runs = append(runs, vectorNodeRuns[name]...)
	}
	for _, v := range runs {
		t.Run(v.rules+"+"+v.input, func(t *testing.T) {
			out, err := runCLI(t, "rules", "eval", "--rules", filepath.Join(vectorDir, v.rules+".hcl"), "--input", filepath.Join(vectorDir, v.input+".jsonl"))
			if err != nil {
				t.Fatalf("rules eval: %v\n%s", err, out)
			}
			var rep evalReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			dir, n := vectorThroughNode(t, v.rules, v.input)
			data := filepath.Join(dir, "data")
			if out, err := runCLI(t, "verify", data); err != nil || !strings.Contains(out, fmt.Sprintf("OK: %d entries", n)) {
				t.Fatalf("verify: %v\n%s", err, out)
			}
			// Every entry's shares equal eval's.
			got := map[string]string{}
			if err := store.ForEachEntry(filepath.Join(data, "ledger"), func(e store.Entry) error {
				m := map[string]string{}
				for _, s := range e.Shares {
					m[s.Party] = e.Tx.Currency.Format(s.Amount)
				}
				got[e.Tx.ID] = fmt.Sprint(m)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			applied := 0
			for _, o := range rep.Transactions {
				if o.Outcome != "applied" {
					continue
				}
				applied++
				if w := fmt.Sprint(sharesOf(t, rep, o.ID)); got[o.ID] != w {
					t.Errorf("%s: node shares %s, eval %s", o.ID, got[o.ID], w)
				}
			}
			if applied != n || len(got) != n {
				t.Fatalf("eval applied %d, node settled %d, of %d transactions", applied, len(got), n)
			}
			// Every statement eval prints, issued from the node's ledger.
			var periods []string
			want := map[string]*statement.Statement{}
			for _, s := range rep.Statements {
				if len(periods) == 0 || periods[len(periods)-1] != s.Period {
					periods = append(periods, s.Period)
				}
				want[s.Party+" "+s.Currency+" "+s.Period] = s
			}
			if len(want) == 0 {
				t.Fatal("eval printed no statement")
			}
			checked := 0
			for _, p := range periods {
				for _, o := range statementsRun(t, "--data", data, "--period", p) {
					s := o.Statement
					w := want[s.Party+" "+s.Currency+" "+s.Period]
					if w == nil {
						t.Errorf("node statement %s %s %s not printed by eval", s.Party, s.Currency, s.Period)
						continue
					}
					checked++
					if s.Closing != w.Closing || len(s.Fees) != len(w.Fees) || len(s.Overrides) != len(w.Overrides) {
						t.Errorf("%s %s %s: node closing %s (%d fees, %d overrides), eval %s (%d, %d)", s.Party, s.Currency, s.Period, s.Closing, len(s.Fees), len(s.Overrides), w.Closing, len(w.Fees), len(w.Overrides))
						continue
					}
					for i, f := range s.Fees {
						if g, e := fmt.Sprint(f.Name, f.Base, f.Computed, f.TopUp, f.Fee, f.CarryOut), fmt.Sprint(w.Fees[i].Name, w.Fees[i].Base, w.Fees[i].Computed, w.Fees[i].TopUp, w.Fees[i].Fee, w.Fees[i].CarryOut); g != e {
							t.Errorf("%s %s %s fee: node %s, eval %s", s.Party, s.Currency, s.Period, g, e)
						}
					}
				}
			}
			if checked != len(want) {
				t.Errorf("node issued %d of eval's %d statements", checked, len(want))
			}
		})
	}
}

// vectorRun is one rule file and one transaction file of testdata/vectors.
type vectorRun struct{ rules, input string }

// vectorNodeRuns maps each public vector to the runs that play it through
// `tally rules eval` and a real node in TestVectorsThroughNode (for
// hierarchy.json, case i of the vector is run i, as TestRulesEvalHierarchy
// reads them). dirty-stream.json goes through real nodes in
// nodes/TestDirtyStreamEndToEnd instead (its duplicates and conflict need
// several edges). TestVectorsAllCovered keeps this list complete.
var vectorNodeRuns = map[string][]vectorRun{
	"allocation.json":    {{"allocation", "allocation"}},
	"waterfall-jpy.json": {{"waterfall-jpy", "waterfall-jpy"}},
	"tiers.json":         {{"tiers", "tiers"}},
	"hierarchy.json": {
		{"hierarchy-on-top", "hierarchy"},
		{"hierarchy-deducted", "hierarchy"},
		{"hierarchy-on-top", "hierarchy-negative"},
		{"hierarchy-on-top", "hierarchy-tiny"},
	},
}

// vectorEvalTests names the test asserting each public vector's figures
// through `tally rules eval` (rules_eval_test.go).
var vectorEvalTests = map[string]string{
	"allocation.json":    "TestRulesEvalAllocation",
	"waterfall-jpy.json": "TestRulesEvalWaterfall",
	"tiers.json":         "TestRulesEvalTiers",
	"hierarchy.json":     "TestRulesEvalHierarchy",
	"dirty-stream.json":  "TestRulesEvalDirtyStream",
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestVectorsAllCovered: every public vector (the testdata copies, which
// settle/rules TestVectorCopies keeps equal to ../shared/vectors) is
// asserted through `tally rules eval` by a test that exists, and goes
// through a real node: by TestVectorsThroughNode, with a run per case of a
// vector that has cases, or (dirty-stream.json) by
// nodes/TestDirtyStreamEndToEnd. A vector added without both fails here.
func TestVectorsAllCovered(t *testing.T) {
	names, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no vectors in %s: %v", vectorDir, err)
	}
	evalSrc, err := os.ReadFile("rules_eval_test.go")
	if err != nil {
		t.Fatal(err)
	}
	nodesSrc, err := os.ReadFile(filepath.Join("..", "..", "nodes", "dirty_stream_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		base := filepath.Base(n)
		if tn, ok := vectorEvalTests[base]; !ok || !bytes.Contains(evalSrc, []byte("func "+tn+"(")) || !bytes.Contains(evalSrc, []byte(`"`+base+`"`)) {
			t.Errorf("%s: no rules eval test reads it (vectorEvalTests %q)", base, tn)
		}
		if base == "dirty-stream.json" {
			if !bytes.Contains(nodesSrc, []byte("func TestDirtyStreamEndToEnd(")) || !bytes.Contains(nodesSrc, []byte(`"dirty-stream.json"`)) {
				t.Errorf("%s: nodes/TestDirtyStreamEndToEnd does not read it", base)
			}
			continue
		}
		runs, ok := vectorNodeRuns[base]
		if !ok {
			t.Errorf("%s goes through no node: add its runs to vectorNodeRuns", base)
			continue
		}
		var v struct {
			Cases []json.RawMessage `json:"cases"`
		}
		readJSON(t, n, &v)
		if base == "hierarchy.json" && len(v.Cases) != len(runs) {
			t.Errorf("%s has %d cases, vectorNodeRuns %d runs", base, len(v.Cases), len(runs))
		}
		for _, r := range runs {
			for _, f := range []string{r.rules + ".hcl", r.input + ".jsonl"} {
				if _, err := os.Stat(filepath.Join(vectorDir, f)); err != nil {
					t.Errorf("%s: %v", base, err)
				}
			}
		}
	}
	for base := range vectorNodeRuns {
		if _, err := os.Stat(filepath.Join(vectorDir, base)); err != nil {
			t.Errorf("vectorNodeRuns lists %s: %v", base, err)
		}
	}
}
