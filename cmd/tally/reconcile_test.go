package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/recon"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
)

// reconLedger is what the settle engine wrote to the ledger of the test:
// studio-a's November and one December bet, and studio-b's transaction with
// an id studio-a's report also uses (another provider: never matched).
var reconLedger = []string{
	`{"provider":"studio-a","id":"r-1","type":"bet","amount":"10.00","currency":"EUR","occurred_at":"2026-11-02T10:00:00Z"}`,
	`{"provider":"studio-a","id":"r-2","type":"win","amount":"4.50","currency":"EUR","occurred_at":"2026-11-02T10:00:05Z"}`,
	`{"provider":"studio-a","id":"r-3","type":"bet","amount":"20.00","currency":"EUR","occurred_at":"2026-11-03T10:00:00Z"}`,
	`{"provider":"studio-a","id":"r-4","type":"bet","amount":"5.00","currency":"EUR","occurred_at":"2026-11-04T10:00:00Z"}`,
	`{"provider":"studio-a","id":"r-5","type":"bet","amount":"7.00","currency":"EUR","occurred_at":"2026-11-05T10:00:00Z"}`,
	`{"provider":"studio-a","id":"r-6","type":"bet","amount":"3.00","currency":"EUR","occurred_at":"2026-11-06T10:00:00Z"}`,
	`{"provider":"studio-a","id":"r-7","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-07T10:00:00Z"}`,
	`{"provider":"studio-a","id":"r-8","type":"bet","amount":"2.00","currency":"EUR","occurred_at":"2026-11-08T10:00:00Z"}`,
	`{"provider":"studio-a","id":"d-1","type":"bet","amount":"100.00","currency":"EUR","occurred_at":"2026-12-01T00:00:00Z"}`,
	`{"provider":"studio-b","id":"m-1","type":"bet","amount":"9.00","currency":"EUR","occurred_at":"2026-11-09T10:00:00Z"}`,
}

// reconReport is studio-a's own November report with planted breaks: r-3's
// amount, r-4's currency and r-5's type differ; r-6 is absent; r-7 twice,
// identical; r-8 twice, conflicting; m-1 is not in studio-a's ledger; one row
// carries a float amount, which ingest refuses.
const reconReport = `{"id":"r-1","type":"bet","amount":"10.00","currency":"EUR","occurred_at":"2026-11-02T10:00:00Z"}
{"id":"r-2","type":"win","amount":"4.50","currency":"EUR","occurred_at":"2026-11-02T10:00:05Z"}
{"id":"r-3","type":"bet","amount":"21.00","currency":"EUR","occurred_at":"2026-11-03T10:00:00Z"}
{"id":"r-4","type":"bet","amount":"5.00","currency":"USD","occurred_at":"2026-11-04T10:00:00Z"}

{"id":"r-5","type":"win","amount":"7.00","currency":"EUR","occurred_at":"2026-11-05T10:00:00Z"}
{"id":"r-7","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-07T10:00:00Z"}
{"id":"r-7","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-07T10:00:00Z"}
{"id":"r-8","type":"bet","amount":"2.00","currency":"EUR","occurred_at":"2026-11-08T10:00:00Z"}
{"id":"r-8","type":"bet","amount":"2.50","currency":"EUR","occurred_at":"2026-11-08T10:00:00Z"}
{"id":"m-1","type":"bet","amount":"9.00","currency":"EUR","occurred_at":"2026-11-09T10:00:00Z"}
{"id":"f-1","type":"bet","amount":1.5,"currency":"EUR","occurred_at":"2026-11-10T10:00:00Z"}
`

// reconReportCSV is the same report in the csv dialect.
const reconReportCSV = `id,type,amount,currency,occurred_at
r-1,bet,10.00,EUR,2026-11-02T10:00:00Z
r-2,win,4.50,EUR,2026-11-02T10:00:05Z
r-3,bet,21.00,EUR,2026-11-03T10:00:00Z
r-4,bet,5.00,USD,2026-11-04T10:00:00Z
r-5,win,7.00,EUR,2026-11-05T10:00:00Z
r-7,bet,1.00,EUR,2026-11-07T10:00:00Z
r-7,bet,1.00,EUR,2026-11-07T10:00:00Z
r-8,bet,2.00,EUR,2026-11-08T10:00:00Z
r-8,bet,2.50,EUR,2026-11-08T10:00:00Z
m-1,bet,9.00,EUR,2026-11-09T10:00:00Z
f-1,bet,1.5e0,EUR,2026-11-10T10:00:00Z
`

func reconcileRun(t *testing.T, args ...string) reconcileOut {
	t.Helper()
	out, err := runCLI(t, append([]string{"reconcile", "--json"}, args...)...)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != reconcileExitBreaks {
		t.Fatalf("reconcile %v: %v (want exit %d: breaks)\n%s", args, err, reconcileExitBreaks, out)
	}
	var o reconcileOut
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("reconcile output: %v\n%s", err, out)
	}
	return o
}

// TestReconcileCommand reconciles studio-a's November report, with one of
// every break planted, against a ledger the settle engine wrote, first as
// JSON lines then as CSV: each break is listed exactly, the totals are
// exact, the kept note verifies with the ledger's verifier key and fails
// with one byte changed, and the second run is seq 2 linked to seq 1.
func TestReconcileCommand(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "..", "settle", "rules", "testdata", "contract.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	l := newTestLedger(t, data, book) // stays open: reconcile reads a live ledger's files
	var lines [][]byte
	for _, s := range reconLedger {
		lines = append(lines, []byte(s))
	}
	l.settle(lines)
	reconcileClock = func() time.Time { return time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { reconcileClock = time.Now })

	dir := t.TempDir()
	jsonl, csvFile := filepath.Join(dir, "studio-a-2026-11.jsonl"), filepath.Join(dir, "studio-a-2026-11.csv")
	if err := os.WriteFile(jsonl, []byte(reconReport), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(csvFile, []byte(reconReportCSV), 0o644); err != nil {
		t.Fatal(err)
	}
	down := filepath.Join(dir, "downloads")
	first := reconcileRun(t, "--data", data, "--provider", "studio-a", "--period", "2026-11", "--report", jsonl, "--out", down)
	second := reconcileRun(t, "--data", data, "--provider", "studio-a", "--period", "2026-11", "--report", csvFile)

	for _, o := range []reconcileOut{first, second} {
		r := o.Result
		t.Run(r.ReportFormat, func(t *testing.T) {
			ids := func(its []recon.Item) (out []string) {
				for _, it := range its {
					out = append(out, it.ID)
				}
				return out
			}
			if got := ids(r.Missing); !reflect.DeepEqual(got, []string{"m-1"}) || r.Missing[0].Row != 10 {
				t.Errorf("missing %+v, want m-1 at row 10", r.Missing)
			}
			if got := ids(r.Extra); !reflect.DeepEqual(got, []string{"r-6"}) || r.Extra[0].Amount != "3.00" || r.Extra[0].EdgeNode != "e" || r.Extra[0].Partition == nil {
				t.Errorf("extra %+v, want r-6 3.00 with its ledger position", r.Extra)
			}
			var mm []string
			for _, m := range r.Mismatched {
				mm = append(mm, m.ID+":"+strings.Join(m.Fields, ","))
			}
			if want := []string{"r-3:amount", "r-4:currency", "r-5:type"}; !reflect.DeepEqual(mm, want) {
				t.Errorf("mismatched %v, want %v", mm, want)
			}
			if r.Mismatched[0].Report.Amount != "21.00" || r.Mismatched[0].Ledger.Amount != "20.00" {
				t.Errorf("r-3 amounts %+v", r.Mismatched[0])
			}
			wantDup := []recon.Duplicate{{ID: "r-7", Rows: []int{6, 7}, Identical: true}, {ID: "r-8", Rows: []int{8, 9}, Identical: false}}
			if !reflect.DeepEqual(r.Duplicates, wantDup) {
				t.Errorf("duplicates %+v, want %+v", r.Duplicates, wantDup)
			}
			if len(r.Rejected) != 1 || r.Rejected[0].Row != 11 || r.Rejected[0].ID != "f-1" || r.Rejected[0].Code == "" {
				t.Errorf("rejected %+v, want f-1 at row 11 with a code", r.Rejected)
			}
			if len(r.OutOfPeriod) != 0 {
				t.Errorf("out of period %+v", r.OutOfPeriod)
			}
			if r.Matched != 4 || r.ReportRows != 11 || r.LedgerEntries != 8 || r.Breaks() != 8 {
				t.Errorf("matched %d rows %d ledger %d breaks %d, want 4, 11, 8, 8", r.Matched, r.ReportRows, r.LedgerEntries, r.Breaks())
			}
			want := []recon.Total{
				{Currency: "EUR", Type: "bet", ReportCount: 7, ReportAmount: "46.50", LedgerCount: 7, LedgerAmount: "48.00", Difference: "-1.50"},
				{Currency: "EUR", Type: "win", ReportCount: 2, ReportAmount: "11.50", LedgerCount: 1, LedgerAmount: "4.50", Difference: "7.00"},
				{Currency: "USD", Type: "bet", ReportCount: 1, ReportAmount: "5.00", LedgerCount: 0, LedgerAmount: "0.00", Difference: "5.00"},
			}
			if !reflect.DeepEqual(r.Totals, want) {
				t.Errorf("totals\n got %+v\nwant %+v", r.Totals, want)
			}
		})
	}
	if first.Result.Seq != 1 || first.Result.Previous != "" || second.Result.Seq != 2 || second.Result.Previous != first.Hash {
		t.Errorf("chain: first seq %d previous %q, second seq %d previous %q (first hash %s)", first.Result.Seq, first.Result.Previous, second.Result.Seq, second.Result.Previous, first.Hash)
	}
	if first.Result.ReportFormat != "jsonl" || first.Result.Dialect != "canonical" || second.Result.ReportFormat != "csv" || second.Result.Dialect != "csv" {
		t.Errorf("formats %s/%s and %s/%s", first.Result.ReportFormat, first.Result.Dialect, second.Result.ReportFormat, second.Result.Dialect)
	}

	// The note verifies with the ledger's verifier key, not with one byte changed.
	vkey, err := store.ReadVerifierKey(filepath.Join(data, "ledger"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(first.Path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := recon.Open(b, v)
	if err != nil {
		t.Fatalf("open kept note: %v", err)
	}
	h := r.Hash()
	if !reflect.DeepEqual(r, first.Result) || first.Hash != hex.EncodeToString(h[:]) {
		t.Errorf("kept note holds %+v, printed %+v", r, first.Result)
	}
	if !strings.HasSuffix(first.Path, filepath.Join("reconciliations", "studio-a", "000001-2026-11.note")) {
		t.Errorf("path %s", first.Path)
	}
	for _, ext := range []string{".note", ".json", ".csv"} {
		if _, err := os.Stat(filepath.Join(down, "000001-2026-11"+ext)); err != nil {
			t.Errorf("--out copy: %v", err)
		}
		if _, err := os.Stat(strings.TrimSuffix(second.Path, ".note") + ext); err != nil {
			t.Errorf("kept %s: %v", ext, err)
		}
	}
	i := strings.Index(string(b), `"r-6"`)
	if i < 0 {
		t.Fatal("note text lacks r-6")
	}
	bad := append([]byte(nil), b...)
	bad[i+3] = '7' // r-6 → r-7
	if _, err := recon.Open(bad, v); err == nil {
		t.Error("a changed byte still verifies")
	}
	if err := os.WriteFile(first.Path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := recon.Load(filepath.Join(data, "reconciliations"), "studio-a", v); !errors.Is(err, recon.ErrChain) {
		t.Errorf("load a tampered chain: %v, want ErrChain", err)
	}
	out, err := runCLI(t, "reconcile", "--data", data, "--provider", "studio-a", "--period", "2026-11", "--report", jsonl)
	if !errors.Is(err, recon.ErrChain) {
		t.Errorf("reconcile on a tampered chain: %v, want ErrChain\n%s", err, out)
	}
}

// TestReconcileText checks the text form names every break, says what to do
// about missing transactions, and that a clean report exits 0.
func TestReconcileText(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "..", "settle", "rules", "testdata", "contract.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	l := newTestLedger(t, data, book)
	var lines [][]byte
	for _, s := range reconLedger {
		lines = append(lines, []byte(s))
	}
	l.settle(lines)
	rep := filepath.Join(t.TempDir(), "report.jsonl")
	if err := os.WriteFile(rep, []byte(reconReport), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "reconcile", "--data", data, "--provider", "studio-a", "--period", "2026-11", "--report", rep)
	if exitCode(err) != reconcileExitBreaks {
		t.Fatalf("exit %d (%v), want %d\n%s", exitCode(err), err, reconcileExitBreaks, out)
	}
	for _, want := range []string{"matched 4, breaks 8", "missing: in the report, not in the ledger (1)", "m-1 bet 9.00 EUR",
		"tally dlq list --provider studio-a", "extra: in the ledger, not in the report (1)", "r-3 differs in amount",
		"r-7 on rows [6 7] (identical", "r-8 on rows [8 9] (conflicting", "row 11 f-1", "EUR bet", "difference -1.50", "000001-2026-11.note"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	clean := filepath.Join(t.TempDir(), "clean.csv")
	os.WriteFile(clean, []byte("id,type,amount,currency,occurred_at\nm-1,bet,9.00,EUR,2026-11-09T10:00:00Z\n"), 0o644)
	out, err = runCLI(t, "reconcile", "--data", data, "--provider", "studio-b", "--period", "2026-11", "--report", clean)
	if err != nil || !strings.Contains(out, "matched 1, breaks 0") {
		t.Errorf("clean report: %v\n%s", err, out)
	}
}
