package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/store/merkle"
)

func TestSealSignOpenRecover(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, testOrigin)
	g := newGen(t)
	l := openLedger(t, dir, k)

	var prev [32]byte
	for i, n := range []int{3, 1, 5} {
		es := g.entries(t, 0, n)
		h, seg, err := l.Seal(0, es, testTime)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if h.Number != uint64(i+1) || h.PrevHash != prev || h.Count != uint32(n) {
			t.Fatalf("segment %d header = %+v", i+1, h)
		}
		if got := mustRead(t, segFile(dir, 0, h.Number)); !bytes.Equal(got, seg) {
			t.Fatalf("Seal returned bytes that differ from the file")
		}
		for j, e := range es {
			if e.Index != h.FirstIndex+uint64(j) {
				t.Fatalf("entry %d got index %d, want %d", j, e.Index, h.FirstIndex+uint64(j))
			}
		}
		prev = SegmentHash(seg)
		sign(t, l, 0)
	}
	seal(t, l, 7, g.entries(t, 7, 2))
	sign(t, l, 7)
	h0, h7 := l.Head(0), l.Head(7)
	if h0.Segments != 3 || h0.Size != 9 || h0.LastHash != prev || h0.Signed != 9 {
		t.Fatalf("Head(0) = %+v", h0)
	}
	if got := l.Partitions(); !slices.Equal(got, []uint32{0, 7}) {
		t.Fatalf("Partitions() = %v", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Seal(0, g.entries(t, 0, 1), testTime); !errors.Is(err, ErrClosed) {
		t.Fatalf("Seal after Close = %v, want ErrClosed", err)
	}

	// Reopen: same heads, and the chain continues.
	l = openLedger(t, dir, k)
	if got := l.Head(0); got != h0 {
		t.Fatalf("Head(0) after reopen = %+v, want %+v", got, h0)
	}
	if got := l.Head(7); got != h7 {
		t.Fatalf("Head(7) after reopen = %+v, want %+v", got, h7)
	}
	h := seal(t, l, 0, g.entries(t, 0, 2))
	if h.Number != 4 || h.PrevHash != h0.LastHash || h.FirstIndex != 9 {
		t.Fatalf("segment 4 header after reopen = %+v", h)
	}
	sign(t, l, 0)

	// Sealed but not committed: Recover drops it and the tree goes back.
	before := l.Head(0)
	h = seal(t, l, 0, g.entries(t, 0, 3))
	if err := l.Recover(0, 4); err != nil {
		t.Fatalf("Recover(0, 4): %v", err)
	}
	if exists(segFile(dir, 0, 5)) {
		t.Fatalf("Recover left segment 5 on disk")
	}
	if got := l.Head(0); got != before {
		t.Fatalf("Head after Recover = %+v, want %+v", got, before)
	}
	// The same number is sealed again, with other content, and signed.
	h2 := seal(t, l, 0, g.entries(t, 0, 1))
	if h2.Number != h.Number || h2.FirstIndex != h.FirstIndex || h2.PrevHash != h.PrevHash {
		t.Fatalf("resealed header = %+v, dropped one was %+v", h2, h)
	}
	sign(t, l, 0)

	// Recover across reopen: a segment sealed right before a crash.
	seal(t, l, 7, g.entries(t, 7, 4))
	l.Close()
	l = openLedger(t, dir, k)
	if err := l.Recover(7, 1); err != nil {
		t.Fatalf("Recover(7, 1) after reopen: %v", err)
	}
	if got := l.Head(7); got != h7 {
		t.Fatalf("Head(7) after Recover = %+v, want %+v", got, h7)
	}
	if err := l.Recover(7, 1); err != nil {
		t.Fatalf("Recover(7, 1) again: %v", err)
	}
	if err := l.Recover(42, 0); err != nil {
		t.Fatalf("Recover of an unknown partition to 0: %v", err)
	}

	// More committed than on disk is corruption; dropping signed segments is refused.
	err := l.Recover(7, 3)
	if ce := asCorrupt(t, err); ce.Partition != 7 || ce.Segment != 3 {
		t.Fatalf("Recover(7, 3) = %+v", ce)
	}
	if err := l.Recover(0, 2); !errors.Is(err, ErrSigned) {
		t.Fatalf("Recover(0, 2) below the checkpoint = %v, want ErrSigned", err)
	}
	if !exists(segFile(dir, 0, 5)) {
		t.Fatalf("refused Recover deleted files")
	}

	rep, err := Verify(dir, k.vkey, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(rep.Partitions) != 2 || rep.Partitions[0].Segments != 5 || rep.Partitions[0].Root != l.Head(0).Root {
		t.Fatalf("Verify report = %+v", rep)
	}
}

func TestSealRefuses(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, testOrigin)
	g := newGen(t)
	l := openLedger(t, dir, k)
	seal(t, l, 1, g.entries(t, 1, 2))
	head := l.Head(1)
	tests := []struct {
		name   string
		mutate func(es []Entry) []Entry
		want   error
	}{
		{"shares do not sum to net", func(es []Entry) []Entry {
			es[1].Shares[0].Amount = es[1].Shares[0].Amount.Add(es[1].Tx.Currency.Unit())
			return es
		}, ErrUnbalanced},
		{"net is not the amount", func(es []Entry) []Entry {
			es[0].Net = es[0].Net.Add(decimal.NewFromInt(1))
			es[0].Shares[0].Amount = es[0].Shares[0].Amount.Add(decimal.NewFromInt(1))
			return es
		}, ErrInvalidEntry},
		{"wrong partition", func(es []Entry) []Entry { es[2].Partition = 2; return es }, ErrInvalidEntry},
		{"unencodable", func(es []Entry) []Entry { es[0].Tx.ID = "\xff"; return es }, ErrInvalidEntry},
		{"empty", func(es []Entry) []Entry { return nil }, ErrLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es := tc.mutate(g.entries(t, 1, 3))
			keep := slices.Clone(es)
			_, _, err := l.Seal(1, es, testTime)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Seal error = %v, want %v", err, tc.want)
			}
			if got := l.Head(1); got != head {
				t.Fatalf("Head after refused Seal = %+v, want %+v", got, head)
			}
			if exists(segFile(dir, 1, head.Segments+1)) {
				t.Fatalf("refused Seal left a segment file")
			}
			for i := range es {
				if es[i].Index != keep[i].Index || !es[i].SettledAt.Equal(keep[i].SettledAt) {
					t.Fatalf("refused Seal changed entry %d", i)
				}
			}
		})
	}
	// The ledger still works and verifies.
	seal(t, l, 1, g.entries(t, 1, 1))
	sign(t, l, 1)
	if _, err := Verify(dir, k.vkey, nil); err != nil {
		t.Fatalf("Verify after refused seals: %v", err)
	}
}

func TestSignNeverForks(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, testOrigin)
	g := newGen(t)
	l := openLedger(t, dir, k)
	if _, err := l.Sign(0); err == nil {
		t.Fatalf("Sign of a partition with no segments succeeded")
	}
	seal(t, l, 0, g.entries(t, 0, 3))
	a := sign(t, l, 0)
	if b := sign(t, l, 0); !bytes.Equal(a, b) {
		t.Fatalf("signing an unchanged tree gave a new note")
	}
	pkey, err := PartitionVerifierKey(k.vkey, 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(pkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(a, note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint does not open with the partition's verifier key: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if lines[0] != testOrigin+"/p0" || lines[1] != "3" {
		t.Fatalf("checkpoint text = %q", n.Text)
	}
	if got := mustRead(t, filepath.Join(partitionDir(dir, 0), checkpointFile)); !bytes.Equal(got, a) {
		t.Fatalf("checkpoint file differs from the returned note")
	}

	// A last-signed checkpoint the tree does not extend (as if another
	// writer had signed a fork): Sign refuses.
	part := l.parts[0]
	part.signed.Root[0] ^= 1
	seal(t, l, 0, g.entries(t, 0, 1))
	if _, err := l.Sign(0); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("Sign over a forked checkpoint = %v, want ErrInconsistent", err)
	}
	part.signed.Root[0] ^= 1
	sign(t, l, 0)

	// A checkpoint file from a different origin is refused at Open.
	l.Close()
	if _, err := Open(Options{Dir: dir, Origin: "other.example/ledger"}); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("Open with another origin = %v, want ErrInconsistent", err)
	}
}

func TestHashCacheRepair(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, testOrigin)
	g := newGen(t)
	l := openLedger(t, dir, k)
	for range 4 {
		seal(t, l, 2, g.entries(t, 2, 7))
	}
	sign(t, l, 2)
	head := l.Head(2)
	l.Close()
	cache := filepath.Join(partitionDir(dir, 2), hashesFile)
	good := mustRead(t, cache)
	damage := map[string]func(){
		"deleted":   func() { os.Remove(cache) },
		"truncated": func() { mustWrite(t, cache, good[:len(good)-40]) },
		"flipped":   func() { b := slices.Clone(good); b[len(b)-1] ^= 1; mustWrite(t, cache, b) },
		// A Seal that wrote its hashes but crashed before the rename.
		"extra hashes": func() { mustWrite(t, cache, append(slices.Clone(good), make([]byte, 96)...)) },
		// And left its temporary segment file.
		"temp file": func() { mustWrite(t, segFile(dir, 2, 5)+".123.tmp", []byte("partial")) },
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			f()
			l := openLedger(t, dir, k)
			if got := l.Head(2); got != head {
				t.Fatalf("Head after repair = %+v, want %+v", got, head)
			}
			if got := mustRead(t, cache); !bytes.Equal(got, good) {
				t.Fatalf("hash cache not repaired (%d bytes, want %d)", len(got), len(good))
			}
			if m, _ := filepath.Glob(filepath.Join(partitionDir(dir, 2), "*.tmp")); len(m) != 0 {
				t.Fatalf("temporary files left: %v", m)
			}
			l.Close()
		})
	}
}

func TestProofsAndEntries(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, testOrigin)
	g := newGen(t)
	l := openLedger(t, dir, k)
	var all []Entry
	var roots [][32]byte // root after each segment
	var sizes []uint64
	for _, n := range []int{1, 4, 9, 2, 17, 1, 30} {
		es := g.entries(t, 4, n)
		h := seal(t, l, 4, es)
		all = append(all, es...)
		roots, sizes = append(roots, h.Root), append(sizes, h.TreeSize)
	}
	th := rfc6962.DefaultHasher
	size := uint64(len(all))
	head := l.Head(4)
	for i, e := range all {
		got, seg, err := l.Entry(4, uint64(i))
		if err != nil || !equalEntry(got, e) {
			t.Fatalf("Entry(4, %d) = %+v (segment %d), %v; want %+v", i, got, seg, err, e)
		}
		for _, s := range []uint64{uint64(i) + 1, size} {
			p, err := l.InclusionProof(4, uint64(i), s)
			if err != nil {
				t.Fatal(err)
			}
			root, err := l.RootAt(4, s)
			if err != nil {
				t.Fatal(err)
			}
			lh := e.LeafHash()
			if err := proof.VerifyInclusion(th, uint64(i), s, lh[:], slices2(p), root[:]); err != nil {
				t.Fatalf("inclusion of %d in %d does not verify: %v", i, s, err)
			}
		}
	}
	if r, _ := l.RootAt(4, size); r != head.Root {
		t.Fatalf("RootAt(size) = %x, Head root %x", r, head.Root)
	}
	for i := range sizes {
		for j := i; j < len(sizes); j++ {
			p, err := l.ConsistencyProof(4, sizes[i], sizes[j])
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(th, sizes[i], sizes[j], slices2(p), roots[i][:], roots[j][:]); err != nil {
				t.Fatalf("consistency %d → %d does not verify: %v", sizes[i], sizes[j], err)
			}
		}
	}
	if _, err := l.InclusionProof(4, 0, size+1); !errors.Is(err, merkle.ErrRange) {
		t.Fatalf("InclusionProof beyond the tree = %v, want ErrRange", err)
	}
	if _, _, err := l.Entry(4, size); err == nil {
		t.Fatalf("Entry beyond the tree succeeded")
	}
	if _, err := l.SegmentBytes(4, 8); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SegmentBytes(8) = %v, want ErrNotExist", err)
	}
	if b, err := l.SegmentBytes(4, 7); err != nil || SegmentHash(b) != head.LastHash {
		t.Fatalf("SegmentBytes(7) hash mismatch: %v", err)
	}
}

func slices2(hs [][32]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func TestDecodeSegment(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, testOrigin)
	g := newGen(t)
	l := openLedger(t, dir, k)
	es := g.entries(t, 0, 5)
	h, seg, err := l.Seal(0, es, testTime)
	if err != nil {
		t.Fatal(err)
	}
	gh, ges, err := DecodeSegment(seg)
	if err != nil {
		t.Fatal(err)
	}
	if gh.Number != h.Number || gh.Root != h.Root || !gh.SealedAt.Equal(h.SealedAt) || !equalTotals(gh.Totals, h.Totals) || len(ges) != 5 {
		t.Fatalf("DecodeSegment header = %+v, want %+v", gh, h)
	}
	for i := range es {
		if !equalEntry(ges[i], es[i]) {
			t.Fatalf("DecodeSegment entry %d = %+v, want %+v", i, ges[i], es[i])
		}
	}
	for n := range len(seg) {
		if _, _, err := DecodeSegment(seg[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("DecodeSegment(first %d of %d bytes) = %v, want ErrMalformed", n, len(seg), err)
		}
	}
	if _, _, err := DecodeSegment(append(slices.Clone(seg), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("DecodeSegment with a trailing byte = %v, want ErrMalformed", err)
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "ledger.key")
	s, vkey, err := LoadOrCreateKey(path, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	s2, vkey2, err := LoadOrCreateKey(path, testOrigin)
	if err != nil || vkey2 != vkey || s2.KeyHash() != s.KeyHash() {
		t.Fatalf("reloaded key differs: %v", err)
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := note.NewVerifier(vkey)
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("derived verifier key does not verify: %v", err)
	}
	if _, _, err := LoadOrCreateKey(path, "other.name"); err == nil {
		t.Fatalf("LoadOrCreateKey with another name succeeded")
	}
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreateKey(path, testOrigin); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("LoadOrCreateKey of a readable key = %v, want a mode error", err)
	}

	if err := WriteVerifierKey(dir, vkey); err != nil {
		t.Fatal(err)
	}
	if err := WriteVerifierKey(dir, vkey); err != nil {
		t.Fatalf("WriteVerifierKey again: %v", err)
	}
	other := newKey(t, testOrigin)
	if err := WriteVerifierKey(dir, other.vkey); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("WriteVerifierKey with another key = %v, want ErrKeyMismatch", err)
	}
	if got, _ := ReadVerifierKey(dir); got != vkey {
		t.Fatalf("ReadVerifierKey = %q, want %q", got, vkey)
	}
}

func TestRecoverUnknownPartition(t *testing.T) {
	l := openLedger(t, t.TempDir(), newKey(t, testOrigin))
	ce := asCorrupt(t, l.Recover(9, 2))
	if ce.Partition != 9 || ce.Segment != 2 {
		t.Fatalf("Recover(9, 2) = %+v", ce)
	}
	if got := l.Partitions(); len(got) != 0 {
		t.Fatalf("Recover created partitions %v", got)
	}
}

// Partitions seal and sign in parallel (one writer each); run with -race.
func TestParallelPartitions(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, testOrigin)
	l := openLedger(t, dir, k)
	var wg sync.WaitGroup
	for p := range uint32(4) {
		g := newGen(t)
		es := make([][]Entry, 5)
		for i := range es {
			es[i] = g.entries(t, p, 3)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, e := range es {
				if _, _, err := l.Seal(p, e, testTime); err != nil {
					t.Error(err)
					return
				}
				if _, err := l.Sign(p); err != nil {
					t.Error(err)
					return
				}
				l.Head(p)
				l.Partitions()
			}
		}()
	}
	wg.Wait()
	if rep, err := Verify(dir, k.vkey, nil); err != nil || rep.Entries != 60 {
		t.Fatalf("Verify = %d entries, %v", rep.Entries, err)
	}
}

func BenchmarkSeal(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			l := openLedger(b, b.TempDir(), newKey(b, testOrigin))
			g := newGen(b)
			batches := make([][]Entry, 0, 64)
			for range 64 {
				batches = append(batches, g.entries(b, 0, n))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				es := slices.Clone(batches[i%len(batches)])
				if _, _, err := l.Seal(0, es, testTime); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(i*n)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
