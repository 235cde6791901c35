package settle

import (
	"fmt"
	"testing"

	"github.com/tally-mesh/tally/wire"
)

// TestOrphanHeldAcrossCommitsAndRestart: a rollback that arrives before its
// bet is held, committed, and released when the bet arrives in a later batch
// of a worker that reloaded its orphan set from the index; a bet with no held
// rollback never scans.
func TestOrphanHeldAcrossCommitsAndRestart(t *testing.T) {
	w := benchWorker(t)
	rb := []byte(`{"id":"rb-1","type":"rollback","parent":"bet-1","amount":"2.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`)
	bet := []byte(`{"id":"bet-1","type":"bet","amount":"2.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`)
	other := []byte(`{"id":"bet-2","type":"bet","amount":"3.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`)
	step := func(w *worker, seq uint64, payload []byte) {
		t.Helper()
		b := newBatchOn(w.n.idx.db, w.held, w.cnt)
		defer b.close()
		if err := w.apply(b, "edge", "p1", wire.Record{Seq: seq, Payload: payload}); err != nil {
			t.Fatal(err)
		}
		b.hwm[string(keyMark(0, "edge", "p1"))] = seq
		if _, _, err := w.persist(b); err != nil {
			t.Fatal(err)
		}
	}
	step(w, 1, rb)
	if w.cnt.OrphansHeld != 1 || len(w.held) != 1 {
		t.Fatalf("after the rollback: held %d, set %v", w.cnt.OrphansHeld, w.held)
	}
	// Restart: a new worker on the same index loads the set from disk.
	w2 := &worker{n: w.n, p: 0, log: w.log, cnt: w.cnt}
	held, err := loadOrphanSet(w.n.idx.db, 0)
	if err != nil {
		t.Fatal(err)
	}
	w2.held = held
	if fmt.Sprint(w2.held) != fmt.Sprint(w.held) {
		t.Fatalf("reloaded set %v, before restart %v", w2.held, w.held)
	}
	step(w2, 2, other)
	if w2.cnt.Entries != 1 || w2.cnt.OrphansHeld != 1 {
		t.Fatalf("after an unrelated bet: entries %d, held %d", w2.cnt.Entries, w2.cnt.OrphansHeld)
	}
	step(w2, 3, bet)
	if w2.cnt.Entries != 3 || w2.cnt.OrphansHeld != 0 || w2.cnt.OrphansReleased != 1 {
		t.Fatalf("after the parent: entries %d, held %d, released %d", w2.cnt.Entries, w2.cnt.OrphansHeld, w2.cnt.OrphansReleased)
	}
	if len(w2.held) != 0 {
		t.Errorf("orphan set %v after the release, want empty", w2.held)
	}
	left, err := loadOrphanSet(w.n.idx.db, 0)
	if err != nil || len(left) != 0 {
		t.Errorf("index still holds orphans %v (%v)", left, err)
	}
}

func TestOrphanSetMayHave(t *testing.T) {
	s := orphanSet{}
	k := string(pkey("o/", 1, "prov", "parent-1", "rb-1"))
	pp, ok := orphanParentPrefix(k)
	if !ok || pp != string(pkey("o/", 1, "prov", "parent-1", "")) {
		t.Fatalf("orphanParentPrefix(%q) = %q, %v", k, pp, ok)
	}
	for _, tc := range []struct {
		name   string
		set    bool
		prefix []byte
		want   bool
	}{
		{"empty set", false, pkey("o/", 1, "prov", "parent-1", ""), false},
		{"held parent", true, pkey("o/", 1, "prov", "parent-1", ""), true},
		{"other parent", true, pkey("o/", 1, "prov", "parent-2", ""), false},
		{"other provider", true, pkey("o/", 1, "prov2", "parent-1", ""), false},
		{"partition scan", true, pkey("o/", 1), true},
		{"other partition scan", true, pkey("o/", 2), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clear(s)
			if tc.set {
				s[pp] = struct{}{}
			}
			if got := s.mayHave(tc.prefix); got != tc.want {
				t.Errorf("mayHave(%q) = %v, want %v", tc.prefix, got, tc.want)
			}
		})
	}
}
