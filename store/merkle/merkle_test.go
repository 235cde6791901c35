package merkle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// tree is an in-memory storage layout built with Range.Append.
type tree struct {
	r      Range
	stored []Hash
	leaves [][]byte
}

func (t *tree) add(data []byte) {
	t.leaves = append(t.leaves, data)
	t.r.Append(HashLeaf(data), func(h Hash) { t.stored = append(t.stored, h) })
}

func (t *tree) read(i uint64) (Hash, error) {
	if i >= uint64(len(t.stored)) {
		return Hash{}, fmt.Errorf("read %d of %d", i, len(t.stored))
	}
	return t.stored[i], nil
}

func leafData(i int) []byte { return binary.BigEndian.AppendUint64([]byte("leaf-"), uint64(i)) }

func toSlices(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func TestHashes(t *testing.T) {
	th := rfc6962.DefaultHasher
	if got := EmptyRoot(); !bytes.Equal(got[:], th.EmptyRoot()) {
		t.Fatalf("EmptyRoot() = %x, want %x", got, th.EmptyRoot())
	}
	l := HashLeaf([]byte("abc"))
	if !bytes.Equal(l[:], th.HashLeaf([]byte("abc"))) {
		t.Fatalf("HashLeaf = %x, want %x", l, th.HashLeaf([]byte("abc")))
	}
	r := HashLeaf([]byte("def"))
	if got := HashChildren(l, r); !bytes.Equal(got[:], th.HashChildren(l[:], r[:])) {
		t.Fatalf("HashChildren = %x, want %x", got, th.HashChildren(l[:], r[:]))
	}
}

// sizes are 0..130 and some random larger ones; the seed is printed on failure.
func sizes(t *testing.T) []uint64 {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var out []uint64
	for n := uint64(0); n <= 130; n++ {
		out = append(out, n)
	}
	for range 6 {
		out = append(out, 131+rng.Uint64N(3000))
	}
	return append(out, 1024, 1025, 2047, 4096)
}

func TestAgainstTransparencyDev(t *testing.T) {
	th := rfc6962.DefaultHasher
	ss := sizes(t)
	max := ss[0]
	for _, s := range ss {
		max = maxU(max, s)
	}
	var tr tree
	cr := (&compact.RangeFactory{Hash: th.HashChildren}).NewEmptyRange(0)
	roots := []Hash{EmptyRoot()}
	for i := uint64(0); i < max; i++ {
		tr.add(leafData(int(i)))
		lh := th.HashLeaf(leafData(int(i)))
		if err := cr.Append(lh, nil); err != nil {
			t.Fatal(err)
		}
		want, err := cr.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		got := tr.r.Root()
		if !bytes.Equal(got[:], want) {
			t.Fatalf("size %d: Root() = %x, compact root %x", i+1, got, want)
		}
		if n := uint64(len(tr.stored)); n != StoredCount(i+1) {
			t.Fatalf("size %d: %d stored hashes, StoredCount says %d", i+1, n, StoredCount(i+1))
		}
		roots = append(roots, got)
	}
	for _, n := range ss {
		root, err := RootAt(tr.read, n)
		if err != nil || root != roots[n] {
			t.Fatalf("RootAt(%d) = %x, %v; want %x", n, root, err, roots[n])
		}
		rg, err := RangeAt(tr.read, n)
		if err != nil || rg.Root() != roots[n] || rg.Size() != n {
			t.Fatalf("RangeAt(%d) root %x, %v; want %x", n, rg.Root(), err, roots[n])
		}
		// Inclusion of every index (small sizes) or a sample (large ones).
		idx := []uint64{}
		if n <= 130 {
			for i := uint64(0); i < n; i++ {
				idx = append(idx, i)
			}
		} else {
			idx = append(idx, 0, n/2, n-1, n/3)
		}
		for _, i := range idx {
			p, err := InclusionProof(tr.read, i, n)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, n, err)
			}
			lh := th.HashLeaf(leafData(int(i)))
			if err := proof.VerifyInclusion(th, i, n, lh, toSlices(p), roots[n][:]); err != nil {
				t.Fatalf("InclusionProof(%d, %d) does not verify: %v", i, n, err)
			}
		}
		// Consistency from every smaller size (small sizes) or a sample.
		olds := []uint64{}
		if n <= 130 {
			for m := uint64(0); m <= n; m++ {
				olds = append(olds, m)
			}
		} else {
			olds = append(olds, 0, 1, n/2, n-1, n, 64)
		}
		for _, m := range olds {
			p, err := ConsistencyProof(tr.read, m, n)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", m, n, err)
			}
			if err := proof.VerifyConsistency(th, m, n, toSlices(p), roots[m][:], roots[n][:]); err != nil {
				t.Fatalf("ConsistencyProof(%d, %d) does not verify: %v", m, n, err)
			}
		}
	}
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// TestStorageLayoutMatchesTlog checks the storage index against
// golang.org/x/mod/sumdb/tlog, which lays hashes out the same way.
func TestStorageLayoutMatchesTlog(t *testing.T) {
	var tr tree
	var tl []tlog.Hash
	for i := range 300 {
		tr.add(leafData(i))
		hs, err := tlog.StoredHashes(int64(i), leafData(i), tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for j, x := range idx {
				out[j] = tl[x]
			}
			return out, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		tl = append(tl, hs...)
	}
	if len(tl) != len(tr.stored) {
		t.Fatalf("tlog stored %d hashes, we stored %d", len(tl), len(tr.stored))
	}
	for i := range tl {
		if tl[i] != tr.stored[i] {
			t.Fatalf("stored hash %d = %x, tlog has %x", i, tr.stored[i], tl[i])
		}
	}
	for level := uint(0); level < 8; level++ {
		for k := uint64(0); (k+1)<<level <= 300; k++ {
			if got, want := StoredIndex(level, k), uint64(tlog.StoredHashIndex(int(level), int64(k))); got != want {
				t.Fatalf("StoredIndex(%d, %d) = %d, tlog says %d", level, k, got, want)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	var tr tree
	for i := range 5 {
		tr.add(leafData(i))
	}
	if _, err := InclusionProof(tr.read, 5, 5); err == nil {
		t.Errorf("InclusionProof(5, 5) succeeded")
	}
	if _, err := ConsistencyProof(tr.read, 6, 5); err == nil {
		t.Errorf("ConsistencyProof(6, 5) succeeded")
	}
	if _, err := RootAt(tr.read, 6); err == nil {
		t.Errorf("RootAt(6) past the stored hashes succeeded")
	}
	if _, err := RootAt(tr.read, MaxSize+1); !errors.Is(err, ErrRange) {
		t.Errorf("RootAt(MaxSize+1) = %v, want ErrRange", err)
	}
	if _, err := RangeAt(tr.read, 6); err == nil {
		t.Errorf("RangeAt(6) past the stored hashes succeeded")
	}
	if _, err := ConsistencyProof(tr.read, 2, 6); err == nil {
		t.Errorf("ConsistencyProof(2, 6) past the stored hashes succeeded")
	}
	if _, err := NewRange(3, nil); err == nil {
		t.Errorf("NewRange(3, no peaks) succeeded")
	}
}

// BenchmarkAppend appends leaves to a compact range; with store=on the
// new stored hashes go to a callback, as Seal keeps them for the hash cache.
func BenchmarkAppend(b *testing.B) {
	for _, store := range []bool{false, true} {
		b.Run(fmt.Sprintf("store=%v", store), func(b *testing.B) {
			var r Range
			l := HashLeaf([]byte("x"))
			var sink func(Hash)
			n := 0
			if store {
				sink = func(Hash) { n++ }
			}
			b.ReportAllocs()
			for b.Loop() {
				r.Append(l, sink)
			}
		})
	}
}
