package merkle

import (
	"errors"
	"fmt"
)

// ErrProof reports a proof that does not verify: wrong length, or a root
// that does not come out as claimed.
var ErrProof = errors.New("merkle: proof does not verify")

// VerifyInclusion checks an audit path (bottom-up, as InclusionProof returns
// it) for the leaf hash at index in the tree of size whose root is root, by
// the algorithm of RFC 9162 §2.1.3.2. It returns nil or an error wrapping
// ErrProof (or ErrRange for index ≥ size). It reads nothing but its
// arguments; the tests check it against github.com/transparency-dev/merkle.
func VerifyInclusion(index, size uint64, leaf Hash, path []Hash, root Hash) error {
	if index >= size {
		return fmt.Errorf("%w: index %d in tree of size %d", ErrRange, index, size)
	}
	fn, sn, r := index, size-1, leaf
	for _, p := range path {
		if sn == 0 {
			return fmt.Errorf("%w: inclusion path of %d hashes is too long for index %d in size %d", ErrProof, len(path), index, size)
		}
		if fn&1 == 1 || fn == sn {
			r = HashChildren(p, r)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			r = HashChildren(r, p)
		}
		fn, sn = fn>>1, sn>>1
	}
	if sn != 0 {
		return fmt.Errorf("%w: inclusion path of %d hashes is too short for index %d in size %d", ErrProof, len(path), index, size)
	}
	if r != root {
		return fmt.Errorf("%w: inclusion path gives root %x, want %x", ErrProof, r, root)
	}
	return nil
}

// VerifyConsistency checks a consistency proof (as ConsistencyProof returns
// it) that the tree of size1 with root1 is a prefix of the tree of size2
// with root2, by the algorithm of RFC 9162 §2.1.4.2. Size 0 is consistent
// with everything (empty proof); equal sizes need equal roots and an empty
// proof.
func VerifyConsistency(size1, size2 uint64, path []Hash, root1, root2 Hash) error {
	switch {
	case size1 > size2:
		return fmt.Errorf("%w: consistency from size %d to smaller size %d", ErrRange, size1, size2)
	case size1 == size2:
		if len(path) != 0 {
			return fmt.Errorf("%w: %d hashes for equal sizes", ErrProof, len(path))
		}
		if root1 != root2 {
			return fmt.Errorf("%w: size %d has two roots %x and %x", ErrProof, size1, root1, root2)
		}
		return nil
	case size1 == 0:
		if len(path) != 0 {
			return fmt.Errorf("%w: %d hashes from the empty tree", ErrProof, len(path))
		}
		return nil
	case len(path) == 0:
		return fmt.Errorf("%w: empty proof from size %d to %d", ErrProof, size1, size2)
	}
	// A size1 that is a power of two is a complete subtree: its root is the
	// implicit first element of the path.
	if size1&(size1-1) == 0 {
		path = append([]Hash{root1}, path...)
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn, sn = fn>>1, sn>>1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: consistency proof of %d hashes is too long for %d → %d", ErrProof, len(path), size1, size2)
		}
		if fn&1 == 1 || fn == sn {
			fr, sr = HashChildren(c, fr), HashChildren(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			sr = HashChildren(sr, c)
		}
		fn, sn = fn>>1, sn>>1
	}
	switch {
	case sn != 0:
		return fmt.Errorf("%w: consistency proof of %d hashes is too short for %d → %d", ErrProof, len(path), size1, size2)
	case fr != root1:
		return fmt.Errorf("%w: proof gives root %x at size %d, want %x", ErrProof, fr, size1, root1)
	case sr != root2:
		return fmt.Errorf("%w: proof gives root %x at size %d, want %x", ErrProof, sr, size2, root2)
	}
	return nil
}
