package merkle

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// TestVerifyAgreesWithTransparencyDev checks our verifiers against
// transparency-dev/merkle on every proof of small trees and on corrupted
// proofs: both must accept the genuine ones and both must reject every
// mutation (a flipped hash, a hash dropped, one added, a wrong index or size).
func TestVerifyAgreesWithTransparencyDev(t *testing.T) {
	th := rfc6962.DefaultHasher
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var tr tree
	roots := []Hash{EmptyRoot()}
	const max = 70
	for i := range max {
		tr.add(leafData(i))
		roots = append(roots, tr.r.Root())
	}
	type mutation struct {
		name string
		f    func([]Hash) []Hash
	}
	flip := func(hs []Hash) []Hash {
		if len(hs) == 0 {
			return []Hash{{1}}
		}
		out := append([]Hash(nil), hs...)
		out[rng.IntN(len(out))][rng.IntN(32)] ^= 1 << rng.IntN(8)
		return out
	}
	muts := []mutation{
		{"flip", flip},
		{"drop", func(hs []Hash) []Hash {
			if len(hs) == 0 {
				return []Hash{{2}}
			}
			return hs[:len(hs)-1]
		}},
		{"extra", func(hs []Hash) []Hash { return append(append([]Hash(nil), hs...), Hash{3}) }},
	}
	for n := uint64(1); n <= max; n++ {
		for i := range n {
			p, err := InclusionProof(tr.read, i, n)
			if err != nil {
				t.Fatal(err)
			}
			leaf := HashLeaf(leafData(int(i)))
			if err := VerifyInclusion(i, n, leaf, p, roots[n]); err != nil {
				t.Fatalf("VerifyInclusion(%d, %d) of a genuine proof: %v", i, n, err)
			}
			for _, m := range muts {
				bad := m.f(p)
				ours := VerifyInclusion(i, n, leaf, bad, roots[n])
				theirs := proof.VerifyInclusion(th, i, n, leaf[:], toSlices(bad), roots[n][:])
				if ours == nil || theirs == nil {
					t.Fatalf("inclusion %d in %d, %s: ours %v, transparency-dev %v; both must reject", i, n, m.name, ours, theirs)
				}
				if !errors.Is(ours, ErrProof) {
					t.Fatalf("inclusion %d in %d, %s: %v is not ErrProof", i, n, m.name, ours)
				}
			}
			if j := (i + 1) % n; j != i {
				if VerifyInclusion(j, n, leaf, p, roots[n]) == nil {
					t.Fatalf("inclusion proof of %d in %d verifies for index %d", i, n, j)
				}
			}
		}
		for m := uint64(0); m <= n; m++ {
			p, err := ConsistencyProof(tr.read, m, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(m, n, p, roots[m], roots[n]); err != nil {
				t.Fatalf("VerifyConsistency(%d, %d) of a genuine proof: %v", m, n, err)
			}
			if m == 0 {
				continue // every tree is consistent with the empty one
			}
			for _, mu := range muts {
				bad := mu.f(p)
				ours := VerifyConsistency(m, n, bad, roots[m], roots[n])
				theirs := proof.VerifyConsistency(th, m, n, toSlices(bad), roots[m][:], roots[n][:])
				if ours == nil || theirs == nil {
					t.Fatalf("consistency %d → %d, %s: ours %v, transparency-dev %v; both must reject", m, n, mu.name, ours, theirs)
				}
			}
			if m < n && VerifyConsistency(m, n, p, roots[m-1], roots[n]) == nil {
				t.Fatalf("consistency %d → %d verifies with the root of size %d", m, n, m-1)
			}
		}
	}
	if err := VerifyInclusion(3, 3, Hash{}, nil, Hash{}); !errors.Is(err, ErrRange) {
		t.Fatalf("VerifyInclusion(3, 3) = %v, want ErrRange", err)
	}
	if err := VerifyConsistency(4, 3, nil, Hash{}, Hash{}); !errors.Is(err, ErrRange) {
		t.Fatalf("VerifyConsistency(4, 3) = %v, want ErrRange", err)
	}
}
