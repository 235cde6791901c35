package recon

import (
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

func tx(t *testing.T, s string) txn.Tx {
	t.Helper()
	x, e := txn.Decode([]byte(s), txn.DefaultLimits())
	if e != nil {
		t.Fatal(e)
	}
	return x
}

var nov = Input{Provider: "p", Period: "2026-11",
	Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}

// TestPeriodEdges: a report row whose ledger entry lies in another period is
// a time mismatch, not missing; a report row dated outside the period is
// listed; a ledger entry outside the period is neither extra nor in the
// totals; the period is [start, end).
func TestPeriodEdges(t *testing.T) {
	in := nov
	in.Ledger = []LedgerTx{
		{Partition: 1, Index: 0, Tx: tx(t, `{"id":"a","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-10-31T23:59:59Z"}`)},
		{Partition: 1, Index: 1, Tx: tx(t, `{"id":"b","type":"bet","amount":"2.00","currency":"EUR","occurred_at":"2026-12-01T00:00:00Z"}`)},
		{Partition: 0, Index: 0, Tx: tx(t, `{"id":"c","type":"bet","amount":"3.000","currency":"KWD","occurred_at":"2026-11-01T00:00:00Z"}`)},
	}
	in.Report = []Row{
		{Row: 1, Tx: tx(t, `{"id":"a","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T00:00:00Z"}`)},
		{Row: 2, Tx: tx(t, `{"id":"c","type":"bet","amount":"3.000","currency":"KWD","occurred_at":"2026-11-01T00:00:00Z"}`)},
		{Row: 3, Tx: tx(t, `{"id":"d","type":"win","amount":"0.10","currency":"EUR","occurred_at":"2026-12-01T00:00:00Z"}`)},
	}
	r := Reconcile(in)
	if len(r.Mismatched) != 1 || r.Mismatched[0].ID != "a" || !reflect.DeepEqual(r.Mismatched[0].Fields, []string{"occurred_at"}) {
		t.Errorf("mismatched %+v, want a on occurred_at", r.Mismatched)
	}
	if len(r.Missing) != 1 || r.Missing[0].ID != "d" || len(r.OutOfPeriod) != 1 || r.OutOfPeriod[0].ID != "d" {
		t.Errorf("missing %+v out of period %+v, want d in both", r.Missing, r.OutOfPeriod)
	}
	if len(r.Extra) != 0 || r.Matched != 1 || r.LedgerEntries != 1 {
		t.Errorf("extra %+v matched %d ledger %d", r.Extra, r.Matched, r.LedgerEntries)
	}
	want := []Total{
		{Currency: "EUR", Type: "bet", ReportCount: 1, ReportAmount: "1.00", LedgerCount: 0, LedgerAmount: "0.00", Difference: "1.00"},
		{Currency: "EUR", Type: "win", ReportCount: 1, ReportAmount: "0.10", LedgerCount: 0, LedgerAmount: "0.00", Difference: "0.10"},
		{Currency: "KWD", Type: "bet", ReportCount: 1, ReportAmount: "3.000", LedgerCount: 1, LedgerAmount: "3.000", Difference: "0.000"},
	}
	if !reflect.DeepEqual(r.Totals, want) {
		t.Errorf("totals\n got %+v\nwant %+v", r.Totals, want)
	}
	if !reflect.DeepEqual(r.LedgerSizes, map[string]uint64{"0": 1, "1": 2}) {
		t.Errorf("ledger sizes %v", r.LedgerSizes)
	}
}

// TestExactTotals sums amounts that floats cannot hold exactly.
func TestExactTotals(t *testing.T) {
	in := nov
	for i := 0; i < 10; i++ {
		in.Report = append(in.Report, Row{Row: i + 1, Tx: tx(t, `{"id":"x`+string(rune('0'+i))+`","type":"bet","amount":"0.10","currency":"EUR","occurred_at":"2026-11-02T00:00:00Z"}`)})
	}
	r := Reconcile(in)
	if len(r.Totals) != 1 || r.Totals[0].ReportAmount != "1.00" || r.Totals[0].Difference != "1.00" || len(r.Missing) != 10 {
		t.Errorf("totals %+v missing %d", r.Totals, len(r.Missing))
	}
}

// TestReadReportRejects: a report that cannot be split is an error; a bad
// row is a rejection with its code; an unknown format or dialect is refused.
func TestReadReportRejects(t *testing.T) {
	if _, _, _, err := ReadReport([]byte("id,type\n"), FormatCSV, "", txn.DefaultLimits()); err == nil {
		t.Error("a CSV without required columns was read")
	}
	rows, rej, d, err := ReadReport([]byte(`{"id":"a","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-02T00:00:00Z"}`+"\n"+
		`{"id":"b","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-02T00:00:00Z","extra":1}`+"\n"), FormatJSONL, "", txn.DefaultLimits())
	if err != nil || d != "canonical" || len(rows) != 1 || len(rej) != 1 || rej[0].Row != 2 || rej[0].Code != string(txn.CodeUnknownField) {
		t.Errorf("rows %+v rejected %+v dialect %s err %v", rows, rej, d, err)
	}
	if _, _, _, err := ReadReport(nil, "xml", "", txn.DefaultLimits()); err == nil {
		t.Error("format xml was read")
	}
	if _, _, _, err := ReadReport([]byte("{}\n"), FormatJSONL, "nope", txn.DefaultLimits()); err == nil {
		t.Error("dialect nope was read")
	}
}

// TestChain keeps two results, loads them back and refuses a gap.
func TestChain(t *testing.T) {
	dir := t.TempDir()
	signer, vkey, err := store.LoadOrCreateKey(dir+"/k", "tally.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	root := dir + "/reconciliations"
	c, err := Load(root, "a/b", v)
	if err != nil {
		t.Fatal(err)
	}
	k1, err := c.Keep(Reconcile(Input{Provider: "a/b", Period: "2026-11", Start: nov.Start, End: nov.End}), signer)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := c.Keep(Reconcile(Input{Provider: "a/b", Period: "2026-11", Start: nov.Start, End: nov.End}), signer)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Result.Previous != k1.Hash || k2.Seq != 2 {
		t.Fatalf("second %+v", k2.Result)
	}
	c2, err := Load(root, "a/b", v)
	if err != nil || len(c2.Kept) != 2 || c2.Last().Hash != k2.Hash {
		t.Fatalf("load: %v %+v", err, c2)
	}
	if _, err := c.Keep(&Result{Provider: "a/b", Period: "../x"}, signer); err == nil {
		t.Error("a period with a path separator was kept")
	}
	if err := os.Remove(k1.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(root, "a/b", v); !errors.Is(err, ErrChain) {
		t.Errorf("load with seq 1 gone: %v, want ErrChain", err)
	}
}
