package settle

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/engine"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// settleSome applies n bench transactions from seq on w and commits them.
func settleSome(t *testing.T, w *worker, seq, n int) {
	t.Helper()
	b := newBatchOn(w.n.idx.db, w.held, w.cnt)
	defer b.close()
	for i := seq; i < seq+n; i++ {
		if err := w.apply(b, "edge", "bench-1", wire.Record{Seq: uint64(i), Payload: benchPayload(nil, i)}); err != nil {
			t.Fatal(err)
		}
	}
	b.hwm[string(keyMark(0, "edge", "bench-1"))] = uint64(seq + n - 1)
	if _, _, err := w.persist(b); err != nil {
		t.Fatal(err)
	}
}

// indexRuleSets is every r/ key of the index as n → hash, and every d/
// value's first byte.
func indexRuleSets(t *testing.T, db *badger.DB) (map[uint64]string, map[byte]int) {
	t.Helper()
	rs, tags := map[uint64]string{}, map[byte]int{}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			switch {
			case bytes.HasPrefix(k, []byte(pfxRuleSet)):
				rs[u64(k[len(pfxRuleSet):])] = string(v)
			case bytes.HasPrefix(k, []byte(pfxDedup)):
				tags[v[0]]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rs, tags
}

// TestRuleSetInterning: settled transactions' records are version 2 naming
// their rule set by number; r/<n> is on disk with them, written until a
// commit with it is durable and not after; a number handed out to a commit
// that never happened is not on disk after a restart and goes to the next
// new rule set; the records read back as the engine wrote them.
func TestRuleSetInterning(t *testing.T) {
	dir := t.TempDir()
	w := benchWorkerIn(t, dir)
	settleSome(t, w, 1, 20)
	rs, tags := indexRuleSets(t, w.n.idx.db)
	if len(rs) != 1 || tags[dedupTagV2] != 20 || len(tags) != 1 {
		t.Fatalf("after one commit: rule sets %x, record tags %v; want one rule set, 20 version-2 records", rs, tags)
	}
	var rec dedupRec
	b := newBatchOn(w.n.idx.db, nil, w.cnt)
	got, err := b.getDedup(w.n.idx, keyDedup("bench-1", "b-3"))
	b.close()
	if err != nil || got == nil {
		t.Fatalf("record b-3: %v, %v", got, err)
	}
	rec = *got
	if rs[1] != string(rec.RuleSet) || len(rec.Shares) == 0 || rec.Index != 2 {
		t.Errorf("record b-3 = %+v; rule set 1 is %x", rec, rs[1])
	}
	if n, write := w.n.idx.rs.ref(rec.RuleSet); n != 1 || write {
		t.Errorf("after its commit, rule set 1: ref = %d, write %v; want 1, false", n, write)
	}
	// Not rewritten by later commits: one version of r/1.
	settleSome(t, w, 21, 20)
	versions := 0
	err = w.n.idx.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: true, Prefix: keyRuleSet(1)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			versions++
		}
		return nil
	})
	if err != nil || versions != 1 {
		t.Errorf("r/1 has %d versions (%v), want 1", versions, err)
	}

	// A number handed out whose commit never happened (a crash): not on
	// disk, and after the restart the next new rule set gets it.
	other := testHash(9)
	if n, write := w.n.idx.rs.ref(other); n != 2 || !write {
		t.Fatalf("new rule set: ref = %d, write %v; want 2, true", n, write)
	}
	if err := w.n.idx.Close(); err != nil {
		t.Fatal(err)
	}
	idx, err := OpenIndex(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	if rs, _ := indexRuleSets(t, idx.db); len(rs) != 1 {
		t.Errorf("after restart: rule sets %x, want only 1", rs)
	}
	if n, write := idx.rs.ref(testHash(7)); n != 2 || !write {
		t.Errorf("after restart, a new rule set: ref = %d, write %v; want 2, true", n, write)
	}
	if n, write := idx.rs.ref(rec.RuleSet); n != 1 || write {
		t.Errorf("after restart, rule set 1: ref = %d, write %v; want 1, false", n, write)
	}
	var again dedupRec
	err = idx.db.View(func(txn *badger.Txn) error {
		_, err := idx.getDedupRec(txn, keyDedup("bench-1", "b-3"), &again)
		return err
	})
	if err != nil || !reflect.DeepEqual(again, rec) {
		t.Errorf("after restart, record b-3 = %+v, %v; want %+v", again, err, rec)
	}
}

// TestRuleSetUnknownReference: a version-2 record naming a number the index
// has no r/ key for is an error, not a record without a rule set.
func TestRuleSetUnknownReference(t *testing.T) {
	idx, err := OpenIndex(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	r := dedupRec{Hash: testHash(0), Currency: "EUR", Net: "1", RuleSet: testHash(1), Shares: [][2]string{{"a", "1"}}}
	if err := idx.db.Update(func(txn *badger.Txn) error { return txn.Set(keyDedup("p", "x"), appendDedupV2(nil, &r, 5)) }); err != nil {
		t.Fatal(err)
	}
	if _, _, _, found, err := idx.Lookup("p", "x"); err == nil {
		t.Errorf("Lookup of a record naming rule set 5 = found %v, no error", found)
	}
}

// TestRuleSetInterningConcurrent: two partitions commit at once, meeting the
// same new rule sets at the same time; every record reads back with its
// own rule set after a reopen, and each rule set has one number on disk.
func TestRuleSetInterningConcurrent(t *testing.T) {
	dir := t.TempDir()
	idx, err := OpenIndex(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	const commits, per = 30, 5
	ruleSet := func(k int) [32]byte { return [32]byte(testHash(byte(10 * (k % 4)))) }
	entry := func(p uint32, k, i int) store.Entry {
		id := fmt.Sprintf("p%d-%d-%d", p, k, i)
		tx, rej := txn.Decode([]byte(`{"id":"`+id+`","type":"win","amount":"`+fmt.Sprint(k)+`.5","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`), engine.Limits)
		if rej != nil {
			panic(rej)
		}
		return store.Entry{Partition: p, Index: uint64(k*per + i), Provider: fmt.Sprintf("prov-%d", p), Tx: tx, RuleSet: ruleSet(k),
			Net: tx.Signed(), Shares: []money.Share{{Party: "operator", Amount: tx.Signed()}}}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for p := uint32(0); p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range commits {
				var es []store.Entry
				for i := range per {
					es = append(es, entry(p, k, i))
				}
				if err := idx.applyLedger(p, uint64(k+1), uint64(k+1), es, &stateRec{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}
	idx, err = OpenIndex(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	rs, tags := indexRuleSets(t, idx.db)
	seen := map[string]bool{}
	for _, h := range rs {
		if seen[h] {
			t.Errorf("rule set %x has two numbers: %x", h, rs)
		}
		seen[h] = true
	}
	if len(rs) != 4 || tags[dedupTagV2] != 2*commits*per {
		t.Errorf("rule sets %d, version-2 records %v; want 4, %d", len(rs), tags, 2*commits*per)
	}
	for p := uint32(0); p < 2; p++ {
		for k := range commits {
			for i := range per {
				e := entry(p, k, i)
				want := entryDedup(&e)
				var got dedupRec
				err := idx.db.View(func(txn *badger.Txn) error {
					_, err := idx.getDedupRec(txn, keyDedup(e.Provider, e.Tx.ID), &got)
					return err
				})
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("record %s = %+v, %v; want %+v", e.Tx.ID, got, err, want)
				}
			}
		}
	}
}
