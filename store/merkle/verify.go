package merkle

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// ErrProof reports a proof that does not verify: wrong length, or a root
// that does not come out as claimed. tlog does not say which; the error
// names the sizes and roots that were checked.
var ErrProof = errors.New("merkle: proof does not verify")

// VerifyInclusion checks an audit path (bottom-up, as InclusionProof returns
// it) for the leaf hash at index in the tree of size whose root is root,
// with tlog.CheckRecord. It returns nil or an error wrapping ErrProof (or
// ErrRange for index ≥ size). It reads nothing but its arguments; the tests
// check it against github.com/transparency-dev/merkle.
func VerifyInclusion(index, size uint64, leaf Hash, path []Hash, root Hash) error {
	if index >= size || size > MaxSize {
		return fmt.Errorf("%w: index %d in tree of size %d", ErrRange, index, size)
	}
	if err := tlog.CheckRecord(toTlog(path), int64(size), root, int64(index), leaf); err != nil {
		return fmt.Errorf("%w: inclusion of leaf %d in size %d, root %x: %v", ErrProof, index, size, root, err)
	}
	return nil
}

// VerifyConsistency checks a consistency proof (as ConsistencyProof returns
// it) that the tree of size1 with root1 is a prefix of the tree of size2
// with root2, with tlog.CheckTree. Size 0 is consistent with everything
// (empty proof); equal sizes need equal roots and an empty proof.
func VerifyConsistency(size1, size2 uint64, path []Hash, root1, root2 Hash) error {
	switch {
	case size1 > size2 || size2 > MaxSize:
		return fmt.Errorf("%w: consistency from size %d to size %d", ErrRange, size1, size2)
	case size1 == 0:
		if len(path) != 0 {
			return fmt.Errorf("%w: %d hashes from the empty tree", ErrProof, len(path))
		}
		return nil
	case size1 == size2 && root1 != root2:
		return fmt.Errorf("%w: size %d has two roots %x and %x", ErrProof, size1, root1, root2)
	}
	if err := tlog.CheckTree(toTlog(path), int64(size2), root2, int64(size1), root1); err != nil {
		return fmt.Errorf("%w: consistency %d → %d, roots %x → %x: %v", ErrProof, size1, size2, root1, root2, err)
	}
	return nil
}
