package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/payout"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

const payoutBanks = `
debtor {
  name = "Operator Ltd"
  iban = "DE89370400440532013000"
  bic  = "COBADEFFXXX"
}
party "A" {
  name = "Affiliate A BV"
  iban = "NL91ABNA0417164300"
  bic  = "ABNANL2A"
}
party "psp" {
  name = "Payments Ltd"
  iban = "GB82WEST12345698765432"
}
`

// TestPayoutsCommand (issue 15 item 8): final November statements from a
// real ledger are paid by one run whose CSV and pain.001 sums equal the
// statements' due amounts; the XML parses back with CtrlSum = Σ; the run is
// a signed record beside the statements and a second run pays nothing;
// equal maker and checker, and a bad IBAN, are refused; a provisional
// statement is never a candidate.
func TestPayoutsCommand(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "..", "settle", "rules", "testdata", "hybrid-cpa.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	l := newTestLedger(t, data, book)
	var lines [][]byte
	for _, s := range []string{
		`{"provider":"p","id":"p1-d1","type":"deposit","amount":"50.00","currency":"EUR","occurred_at":"2026-11-02T10:00:00Z","player":"p1","affiliate":"A"}`,
		`{"provider":"p","id":"p1-b","type":"bet","amount":"1000.00","currency":"EUR","occurred_at":"2026-11-11T10:00:00Z","player":"p1","affiliate":"A"}`,
		`{"provider":"p","id":"p1-w","type":"win","amount":"600.00","currency":"EUR","occurred_at":"2026-11-12T10:00:00Z","player":"p1","affiliate":"A"}`,
		`{"provider":"p","id":"p5-d1","type":"deposit","amount":"25.00","currency":"EUR","occurred_at":"2026-11-20T10:00:00Z","player":"p5","affiliate":"A"}`,
	} {
		lines = append(lines, []byte(s))
	}
	l.settle(lines)
	statementsClock = func() time.Time { return time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { statementsClock = time.Now })
	issued := statementsRun(t, "--data", data, "--period", "2026-11")
	due := map[string]string{}
	for _, o := range issued {
		if o.Status != "issued" {
			t.Fatalf("november %+v", o)
		}
		due[o.Statement.Party] = o.Statement.Closing
	}
	// A: CPA 2 × 50.00 + 25% × 400.00 = 200.00; psp: 1.5% × 75.00 = 1.125 → 1.13.
	if due["A"] != "200.00" || due["psp"] != "1.13" {
		t.Fatalf("due %v", due)
	}
	banks := filepath.Join(t.TempDir(), "banks.hcl")
	if err := os.WriteFile(banks, []byte(payoutBanks), 0o644); err != nil {
		t.Fatal(err)
	}
	// The console's statement review on a real nats-server: nothing is
	// paid before its statement is approved there.
	ns := natstest.Run(t)
	kv := reviewBucket(t, ns)
	args := []string{"payouts", "run", "--data", data, "--period", "2026-11", "--banks", banks, "--created-by", "alice", "--nats", ns.ClientURL()}
	if _, err := runCLI(t, "payouts", "run", "--data", data, "--period", "2026-11", "--banks", banks, "--created-by", "alice", "--approve-by", "bob"); err == nil || !strings.Contains(err.Error(), "--unreviewed") {
		t.Fatalf("payouts run without --nats or --unreviewed: %v", err)
	}
	if out, err := runCLI(t, append(args, "--approve-by", "bob")...); !errors.Is(err, payout.ErrNothingToPay) || !strings.Contains(out, "statement review is unsubmitted") {
		t.Fatalf("a run before the review: %v\n%s", err, out)
	}
	approveReviews(t, kv, data)

	if _, err := runCLI(t, append(args, "--approve-by", "alice")...); !errors.Is(err, payout.ErrMakerChecker) {
		t.Fatalf("equal maker and checker: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	os.WriteFile(bad, []byte(strings.Replace(payoutBanks, "NL91ABNA0417164300", "NL91ABNA0417164310", 1)), 0o644)
	if _, err := runCLI(t, "payouts", "run", "--data", data, "--period", "2026-11", "--banks", bad, "--created-by", "alice", "--approve-by", "bob", "--unreviewed"); !errors.Is(err, payout.ErrBankDetails) {
		t.Fatalf("bad IBAN: %v", err)
	}

	outDir := t.TempDir()
	out, err := runCLI(t, append(args, "--approve-by", "bob", "--out", outDir)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	var res payoutsOut
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !res.Ledger.Recorded || res.Ledger.OplogSeq != 1 || res.Ledger.ID != "payout-RUN-000001" {
		t.Fatalf("ledger %+v, want the payout_run posted as operator log #1", res.Ledger)
	}
	paid := map[string]string{}
	for _, it := range res.Run.Items {
		paid[it.Party] = it.Amount
	}
	if len(paid) != 2 || paid["A"] != due["A"] || paid["psp"] != due["psp"] {
		t.Fatalf("paid %v, want the due amounts %v", paid, due)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Party != "operator" {
		t.Errorf("skipped %+v, want operator (no bank details)", res.Skipped)
	}
	b, err := os.ReadFile(filepath.Join(outDir, "RUN-000001.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc payout.Document
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("XML does not parse back: %v", err)
	}
	sum := decimal.Zero
	for _, tx := range doc.CstmrCdt.PmtInf[0].CdtTrfTxInf {
		sum = sum.Add(decimal.RequireFromString(tx.Amt.InstdAmt.Value))
	}
	want := decimal.RequireFromString(due["A"]).Add(decimal.RequireFromString(due["psp"]))
	if g := doc.CstmrCdt.GrpHdr; !sum.Equal(want) || g.CtrlSum != "201.13" || g.NbOfTxs != "2" {
		t.Errorf("Σ InstdAmt %s, GrpHdr %+v; want %s", sum, g, want)
	}
	csvB, err := os.ReadFile(filepath.Join(data, "payouts", "RUN-000001.csv"))
	if err != nil || !strings.Contains(string(csvB), ",200.00,") || !strings.Contains(string(csvB), ",1.13,") {
		t.Errorf("CSV beside the run: %v\n%s", err, csvB)
	}

	// A second run pays nothing twice.
	if out, err := runCLI(t, append(args, "--approve-by", "carol")...); !errors.Is(err, payout.ErrNothingToPay) || !strings.Contains(out, "already paid by RUN-000001") {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	// No settle node here commits it: the second run posted RUN-000001
	// again (not in the ledger file yet), under the same message id, stored once.
	oplogJS, _ := jetstream.New(natstest.Connect(t, ns))
	if st, err := oplogJS.Stream(context.Background(), wire.NewSubjects(wire.DefaultPrefix).OplogStream()); err != nil || st.CachedInfo().State.Msgs != 1 {
		t.Fatalf("operator log: %v, want the one run once", err)
	}
	list, err := runCLI(t, "payouts", "list", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	var runs []payoutsListOut
	if err := json.Unmarshal([]byte(list), &runs); err != nil || len(runs) != 1 || runs[0].ApprovedBy != "bob" || len(runs[0].Statements) != 2 {
		t.Fatalf("list: %v %s", err, list)
	}

	// December has not ended: its statements are provisional and no run pays them.
	l.settle([][]byte{[]byte(`{"provider":"p","id":"p6-d1","type":"deposit","amount":"40.00","currency":"EUR","occurred_at":"2026-12-01T10:00:00Z","player":"p6","affiliate":"A"}`)})
	prov := statementsRun(t, "--data", data, "--period", "2026-12", "--party", "A")
	if len(prov) != 1 || prov[0].Status != "provisional" {
		t.Fatalf("december %+v", prov)
	}
	if _, err := runCLI(t, "payouts", "run", "--data", data, "--period", "2026-12", "--banks", banks, "--created-by", "alice", "--approve-by", "bob", "--unreviewed"); !errors.Is(err, payout.ErrNothingToPay) {
		t.Fatalf("provisional december paid: %v", err)
	}
}

// reviewBucket creates the console's workflow bucket on ns.
func reviewBucket(t *testing.T, ns *server.Server) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	// and the streams a node creates: the run is posted to its operator log
	if err := wire.EnsureStreams(context.Background(), js, wire.NewSubjects(wire.DefaultPrefix), wire.StreamOptions{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	kv, err := console.OpenCasesBucket(context.Background(), js, wire.DefaultPrefix, 1)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// approveReviews records every statement under data as approved in the
// console's review, as the console stores it (console/statements_review.go;
// the review's transitions are tested in console/cases_test.go).
func approveReviews(t *testing.T, kv jetstream.KeyValue, data string) {
	t.Helper()
	_, verifier, err := ledgerKeys(data, "")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(data, "statements")
	parties, err := statement.StoredParties(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parties {
		ch, err := statement.Load(root, p, verifier)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range ch.Issued {
			b, _ := json.Marshal(console.StatementReview{Party: p, Seq: is.Seq, Hash: is.Hash, State: console.ReviewApproved, CreatedBy: "mk", ApprovedBy: "ck"})
			if _, err := kv.Put(context.Background(), console.StatementReviewKey(p, is.Seq), b); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestPayoutRunInLedger (issue 15 item 8): on a real node (embedded hub,
// ingest, settle, operator log), a payout run made with --nats enters the
// node's ledger as a payout_run entry naming the run, its hash and the
// statements it paid; a second run pays nothing, skipping them as paid by
// that ledger entry; with the run records gone, the ledger alone still
// stops a run (it records a run this data directory does not hold); `tally
// verify` passes and counts the run and its statements.
func TestPayoutRunInLedger(t *testing.T) {
	n, dir := startVectorNode(t, nil)
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, line := range []string{
		`{"id":"b-1","type":"bet","amount":"1000.00","currency":"EUR","occurred_at":"2026-11-10T10:00:00Z"}`,
		`{"id":"b-2","type":"bet","amount":"200.00","currency":"EUR","occurred_at":"2026-11-20T10:00:00Z"}`,
	} {
		if _, err := nc.Request(wire.NewSubjects("").In("P"), []byte(line), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, 30*time.Second, func() error {
		if s := n.Stats().Settle; s.Entries != 2 {
			return fmt.Errorf("%d entries, want 2", s.Entries)
		}
		return nil
	})
	statementsClock = func() time.Time { return time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { statementsClock = time.Now })
	due := map[string]string{}
	for _, o := range statementsRun(t, "--data", dir, "--period", "2026-11") {
		due[o.Statement.Party] = o.Statement.Closing
	}
	if due["P"] != "120.00" || due["operator"] != "1080.00" {
		t.Fatalf("due %v", due)
	}
	njs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := console.OpenCasesBucket(context.Background(), njs, wire.DefaultPrefix, 1)
	if err != nil {
		t.Fatal(err)
	}
	approveReviews(t, kv, dir)
	banks := filepath.Join(t.TempDir(), "banks.hcl")
	if err := os.WriteFile(banks, []byte(strings.NewReplacer(`party "A"`, `party "P"`, `party "psp"`, `party "operator"`).Replace(payoutBanks)), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"payouts", "run", "--data", dir, "--period", "2026-11", "--banks", banks, "--created-by", "alice", "--nats", n.ClientURL()}
	out, err := runCLI(t, append(args, "--approve-by", "bob")...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	var res payoutsOut
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Run.Items) != 2 || !res.Ledger.Recorded || res.Ledger.ID != "payout-RUN-000001" {
		t.Fatalf("run %+v ledger %+v", res.Run.Items, res.Ledger)
	}
	var want []string
	for _, it := range res.Run.Items {
		want = append(want, it.Statement)
	}

	// The entry, in the node's ledger files.
	var found []store.Entry
	natstest.Eventually(t, 30*time.Second, func() error {
		found = nil
		if err := store.ForEachEntry(filepath.Join(dir, "ledger"), func(e store.Entry) error {
			if e.Tx.Type == txn.PayoutRun {
				found = append(found, e)
			}
			return nil
		}); err != nil {
			return err
		}
		if len(found) != 1 {
			return fmt.Errorf("%d payout_run entries in the ledger, want 1", len(found))
		}
		return nil
	})
	e := found[0]
	m := e.Tx.Meta
	if e.Tx.ID != "payout-RUN-000001" || e.Provider != txn.OpsID || e.EdgeNode != txn.OpsID || m["run"] != "RUN-000001" || m["run_hash"] != res.Hash ||
		m["statements"] != strings.Join(want, ";") || m["created_by"] != "alice" || m["approved_by"] != "bob" || m["totals"] != "EUR=1200.00" ||
		len(e.Shares) != 0 || !e.Net.IsZero() {
		t.Fatalf("payout_run entry %+v", e)
	}

	// A second run: both statements are paid, by the ledger's record.
	out, err = runCLI(t, append(args, "--approve-by", "carol")...)
	if !errors.Is(err, payout.ErrNothingToPay) || strings.Count(out, "already paid by RUN-000001 (payout_run entry in the ledger)") != 2 {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	// Without the run records, the ledger still knows the run was made.
	if err := os.Rename(filepath.Join(dir, "payouts"), filepath.Join(dir, "payouts.moved")); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, append(args, "--approve-by", "carol")...); !errors.Is(err, payout.ErrChain) || !strings.Contains(out+err.Error(), "the ledger records payout run RUN-000001") {
		t.Fatalf("run without the run records: %v\n%s", err, out)
	}
	// The worker moves its counters when it next looks at a landed commit
	// (up to segment_max_age after the entry is in the files): wait.
	natstest.Eventually(t, 10*time.Second, func() error {
		if s := n.Stats().Settle; s.Entries != 3 || s.Exceptions != 0 {
			return fmt.Errorf("settle: %d entries, %d exceptions; want the two bets and the run once", s.Entries, s.Exceptions)
		}
		return nil
	})
	// A run made from another data directory (its own chain, so no CLI
	// check sees RUN-000001) pays the same statements: the engine refuses it.
	other := *res.Run
	other.ID, other.Seq, other.ApprovedBy = "RUN-000002", 2, "carol"
	if _, err := postPayoutRun(context.Background(), njs, wire.NewSubjects(""), payout.Recorded{Run: &other, Hash: strings.Repeat("cd", 32)}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 20*time.Second, func() error {
		if s := n.Stats().Settle; s.Entries != 3 || s.Exceptions != 1 {
			return fmt.Errorf("settle: %d entries, %d exceptions; want the other run refused", s.Entries, s.Exceptions)
		}
		return nil
	})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	idx, err := settle.OpenIndex(filepath.Join(dir, "settle", "index"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	exc, err := idx.Exceptions(10)
	idx.Close()
	if err != nil || len(exc) != 1 || exc[0].Kind != settle.ExcPaidTwice || exc[0].ID != "payout-RUN-000002" || !strings.Contains(exc[0].Reason, "already paid by payout-RUN-000001") {
		t.Fatalf("exceptions %+v, %v; want one paid_twice for RUN-000002", exc, err)
	}
	if out, err := runCLI(t, "verify", dir); err != nil || !strings.Contains(out, "payout runs: 1 (maker-checker checked), paying 2 statements, none paid twice") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}
