package settle

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/settle/engine"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// payoutEntry is the entry of payout run RUN-<seq> paying statements.
func payoutEntry(t *testing.T, seq int, statements ...string) store.Entry {
	t.Helper()
	run := fmt.Sprintf("RUN-%06d", seq)
	p := fmt.Sprintf(`{"id":"payout-%s","type":"payout_run","amount":"0.00","currency":"EUR","occurred_at":"2026-12-02T09:00:00Z","meta":{"approved_by":"bob","created_by":"alice","run":"%s","run_hash":"%064x","statements":"%s","totals":"EUR=1.00"}}`,
		run, run, seq, strings.Join(statements, ";"))
	tx, rej := txn.Decode([]byte(p), engine.Limits)
	if rej != nil {
		t.Fatal(rej)
	}
	e, err := engine.OperatorEntry(tx, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestPaidOverlay: a batch reads paid statements own overlay → the batch
// still committing (prev) → index snapshot, like dedup records and marks.
func TestPaidOverlay(t *testing.T) {
	idx, err := OpenIndex(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	x, y, z := strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)
	e := payoutEntry(t, 1, x)
	if err := idx.db.Update(func(t *badger.Txn) error { return putPaid(t, &e) }); err != nil {
		t.Fatal(err)
	}
	prev := newBatchOn(idx.db, nil, Counters{})
	prev.paid[y] = "payout-RUN-000002"
	b := newBatchOn(idx.db, nil, Counters{})
	defer b.close()
	b.prev = prev
	b.paid[z] = "payout-RUN-000003"
	for s, want := range map[string]string{x: "payout-RUN-000001", y: "payout-RUN-000002", z: "payout-RUN-000003", strings.Repeat("4", 64): ""} {
		if by, err := b.getPaid(idx.db, s); err != nil || by != want {
			t.Errorf("getPaid(%.4s…) = %q, %v; want %q", s, by, err, want)
		}
	}
}

// TestDerivePaid: an index built before the p/ keys (no y/<p>) gets them
// from the partition's local ledger once; a statement a ledger of an
// earlier build pays twice keeps its first payer; an index that holds
// nothing of the partition only sets the mark.
func TestDerivePaid(t *testing.T) {
	skey, _, err := store.GenerateKey("tally.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	led, err := store.Open(store.Options{Dir: t.TempDir(), Origin: "tally.test/ledger", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	pr, err := led.Prepare(0, []store.Entry{payoutEntry(t, 1, a), payoutEntry(t, 2, b, a)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := led.Commit(pr); err != nil {
		t.Fatal(err)
	}
	idx, err := OpenIndex(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	if runs, err := idx.derivePaid(led, 0, false); err != nil || runs != 2 {
		t.Fatalf("derivePaid = %d, %v; want 2 runs", runs, err)
	}
	for s, want := range map[string]string{a: "payout-RUN-000001", b: "payout-RUN-000002"} {
		if by, err := idx.PaidBy(s); err != nil || by != want {
			t.Errorf("PaidBy(%.4s…) = %q, %v; want %q", s, by, err, want)
		}
	}
	if runs, err := idx.derivePaid(led, 0, false); err != nil || runs != 0 {
		t.Fatalf("second derivePaid = %d, %v; want no scan", runs, err)
	}
	// A build without p/ keys applied to this index since (a rollback, then
	// this build again): l/<p> moved, y/<p> did not, so the scan runs again.
	// So does it over the first form of the mark (one byte, no sequence).
	for _, set := range []func(t *badger.Txn) error{
		func(t *badger.Txn) error { return t.Set(keyApplied(0), be64(7)) },
		func(t *badger.Txn) error { return t.Set(keyPaidDone(0), []byte{1}) },
	} {
		if err := idx.db.Update(set); err != nil {
			t.Fatal(err)
		}
		if runs, err := idx.derivePaid(led, 0, false); err != nil || runs != 2 {
			t.Fatalf("derivePaid behind l/<p> = %d, %v; want the scan again (2 runs)", runs, err)
		}
		if runs, err := idx.derivePaid(led, 0, false); err != nil || runs != 0 {
			t.Fatalf("derivePaid after the rescan = %d, %v; want no scan", runs, err)
		}
	}
	fresh, err := OpenIndex(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if runs, err := fresh.derivePaid(led, 0, true); err != nil || runs != 0 {
		t.Fatalf("fresh derivePaid = %d, %v", runs, err)
	}
	if by, _ := fresh.PaidBy(a); by != "" {
		t.Fatalf("fresh index: %q (applyLedger derives them, not the scan)", by)
	}
	if runs, _ := fresh.derivePaid(led, 0, false); runs != 0 {
		t.Fatal("the mark of a fresh index was not set")
	}
}
