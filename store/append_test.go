package store

import (
	"errors"
	"testing"
)

// TestPrepareCommitAppend: a prepared segment writes nothing until Commit;
// its bytes appended to a second ledger (as a settle node taking them from
// the ledger stream) give the same files, tree and root, and Verify passes
// on both.
func TestPrepareCommitAppend(t *testing.T) {
	k := newKey(t, testOrigin)
	g := newGen(t)
	a, bdir := t.TempDir(), t.TempDir()
	la, lb := openLedger(t, a, k), openLedger(t, bdir, k)
	for round := 0; round < 3; round++ {
		es := g.entries(t, 2, 5+round)
		pr, err := la.Prepare(2, es, testTime)
		if err != nil {
			t.Fatal(err)
		}
		if h := la.Head(2); h.Segments != uint64(round) {
			t.Fatalf("Prepare wrote: head has %d segments, want %d", h.Segments, round)
		}
		if exists(segFile(a, 2, pr.Header.Number)) {
			t.Fatal("Prepare left a segment file")
		}
		if es[0].Index != 0 || pr.Entries[0].Index != pr.Header.FirstIndex {
			t.Fatalf("indexes: caller %d, prepared %d, first %d", es[0].Index, pr.Entries[0].Index, pr.Header.FirstIndex)
		}
		if err := la.Commit(pr); err != nil {
			t.Fatal(err)
		}
		hdr, got, err := lb.Append(2, pr.Bytes)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if hdr.Root != pr.Header.Root || hdr.Number != pr.Header.Number || len(got) != len(es) || got[len(got)-1].Index != pr.Entries[len(es)-1].Index {
			t.Fatalf("Append gave header %+v and %d entries", hdr, len(got))
		}
		if ha, hb := la.Head(2), lb.Head(2); ha.Root != hb.Root || ha.Segments != hb.Segments || ha.LastHash != hb.LastHash {
			t.Fatalf("heads differ: %+v vs %+v", ha, hb)
		}
		sign(t, la, 2)
		sign(t, lb, 2)
	}
	for _, dir := range []string{a, bdir} {
		if _, err := Verify(dir, k.vkey, nil); err != nil {
			t.Fatalf("Verify(%s): %v", dir, err)
		}
	}
}

// TestCommitStale: a segment prepared on a partition that moved on since is
// refused and writes nothing.
func TestCommitStale(t *testing.T) {
	k := newKey(t, testOrigin)
	g := newGen(t)
	l := openLedger(t, t.TempDir(), k)
	pr1, err := l.Prepare(0, g.entries(t, 0, 3), testTime)
	if err != nil {
		t.Fatal(err)
	}
	pr2, err := l.Prepare(0, g.entries(t, 0, 3), testTime)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(pr1); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(pr2); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("second Commit on the same base = %v, want ErrInconsistent", err)
	}
	if h := l.Head(0); h.Segments != 1 {
		t.Fatalf("head has %d segments, want 1", h.Segments)
	}
}

// TestAppendChecks: Append refuses a segment out of order, of another
// partition, or with a changed byte, as Verify would, and writes nothing.
func TestAppendChecks(t *testing.T) {
	k := newKey(t, testOrigin)
	g := newGen(t)
	src := openLedger(t, t.TempDir(), k)
	_, s1, err := src.Seal(1, g.entries(t, 1, 4), testTime)
	if err != nil {
		t.Fatal(err)
	}
	_, s2, err := src.Seal(1, g.entries(t, 1, 4), testTime)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l := openLedger(t, dir, k)
	if _, _, err := l.Append(1, s2); err == nil {
		t.Fatal("segment 2 appended before segment 1")
	} else {
		asCorrupt(t, err)
	}
	if _, _, err := l.Append(0, s1); err == nil {
		t.Fatal("partition 1's segment appended to partition 0")
	}
	bad := append([]byte(nil), s1...)
	bad[len(bad)-3] ^= 1
	if _, _, err := l.Append(1, bad); err == nil {
		t.Fatal("changed segment appended")
	}
	if h := l.Head(1); h.Segments != 0 || exists(segFile(dir, 1, 1)) {
		t.Fatalf("a refused Append wrote: %+v", h)
	}
	if _, _, err := l.Append(1, s1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Append(1, s2); err != nil {
		t.Fatal(err)
	}
	if src.Head(1).Root != l.Head(1).Root {
		t.Fatal("roots differ")
	}
}
