// Package merkle implements the Merkle tree hash of RFC 6962 §2.1 (kept
// unchanged by RFC 9162 §2.1) over SHA-256, an incremental compact range,
// and the storage layout and proofs tally's ledger keeps on disk.
//
//	leaf hash  = SHA-256(0x00 ‖ data)
//	node hash  = SHA-256(0x01 ‖ left ‖ right)
//	empty tree = SHA-256("")
//
// A tree of n leaves splits at the largest power of two smaller than n.
//
// Storage layout. Every node of every perfect subtree is stored exactly once,
// in the order it becomes complete: appending leaf i writes the leaf hash,
// then the hash of each subtree that leaf completes, bottom up. After n
// leaves there are StoredCount(n) = 2n − popcount(n) hashes, and the node at
// level L, index K (covering leaves [K·2^L, (K+1)·2^L)) sits at
// StoredIndex(L, K). This is the order golang.org/x/mod/sumdb/tlog uses, so a
// file of such hashes is append-only, and any root, inclusion proof or
// consistency proof for any size up to n costs O(log n) hash reads.
//
// Proofs are produced in the order RFC 6962 §2.1.1 and §2.1.2 define
// (bottom-up), so they verify with github.com/transparency-dev/merkle/proof
// and, converted, with golang.org/x/mod/sumdb/tlog.
//
// Bad arguments return errors; arithmetic that cannot go wrong panics.
package merkle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
)

// Hash is a SHA-256 digest.
type Hash = [32]byte

// HashLeaf returns SHA-256(0x00 ‖ data).
func HashLeaf(data []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// HashChildren returns SHA-256(0x01 ‖ l ‖ r).
func HashChildren(l, r Hash) Hash {
	var buf [1 + 2*sha256.Size]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[1+sha256.Size:], r[:])
	return sha256.Sum256(buf[:])
}

// EmptyRoot is the root of the tree with no leaves: SHA-256 of the empty string.
func EmptyRoot() Hash { return sha256.Sum256(nil) }

// MaxSize bounds tree sizes so that storage indexes (≈ 2·size) never overflow.
const MaxSize = 1 << 62

// ErrRange reports an index or size outside the tree.
var ErrRange = errors.New("merkle: index or size out of range")

// StoredCount is the number of stored hashes for a tree of size leaves:
// 2·size − popcount(size).
func StoredCount(size uint64) uint64 {
	if size > MaxSize {
		panic(fmt.Sprintf("merkle: size %d exceeds MaxSize", size))
	}
	return 2*size - uint64(bits.OnesCount64(size))
}

// StoredIndex is the position, in the storage layout, of the node at level
// (0 = leaves) and index k within that level. The node is written right
// after the leaf that completes it, ((k+1)<<level)−1, and its level−1 lower
// ancestors of that leaf.
func StoredIndex(level uint, k uint64) uint64 {
	if level >= 63 || k >= MaxSize>>level {
		panic(fmt.Sprintf("merkle: node (%d, %d) out of range", level, k))
	}
	last := (k+1)<<level - 1
	return StoredCount(last) + uint64(level)
}

// Range is the compact range [0, Size): the roots of the perfect subtrees
// that tile the leaves so far, largest (leftmost) first. It is enough to
// append leaves and to compute the root, in O(log n) space.
type Range struct {
	size  uint64
	peaks []Hash
}

// Size is the number of leaves appended so far.
func (r *Range) Size() uint64 { return r.size }

// Peaks returns a copy of the subtree roots, leftmost (largest) first.
func (r *Range) Peaks() []Hash { return append([]Hash(nil), r.peaks...) }

// Clone returns an independent copy of r.
func (r *Range) Clone() *Range { return &Range{size: r.size, peaks: r.Peaks()} }

// NewRange rebuilds a range from its size and its peaks (as returned by Peaks).
func NewRange(size uint64, peaks []Hash) (*Range, error) {
	if size > MaxSize {
		return nil, fmt.Errorf("%w: size %d", ErrRange, size)
	}
	if len(peaks) != bits.OnesCount64(size) {
		return nil, fmt.Errorf("merkle: size %d needs %d peaks, got %d", size, bits.OnesCount64(size), len(peaks))
	}
	return &Range{size: size, peaks: append([]Hash(nil), peaks...)}, nil
}

// Append adds a leaf hash. If store is not nil it is called with every hash
// the storage layout records for this leaf, in order: the leaf itself, then
// each subtree root it completes, bottom up.
func (r *Range) Append(leaf Hash, store func(Hash)) {
	if r.size >= MaxSize {
		panic("merkle: range is full")
	}
	h := leaf
	if store != nil {
		store(h)
	}
	for s := r.size; s&1 == 1; s >>= 1 {
		left := r.peaks[len(r.peaks)-1]
		r.peaks = r.peaks[:len(r.peaks)-1]
		h = HashChildren(left, h)
		if store != nil {
			store(h)
		}
	}
	r.peaks = append(r.peaks, h)
	r.size++
}

// Root is the RFC 6962 Merkle tree hash of the leaves appended so far.
func (r *Range) Root() Hash {
	if len(r.peaks) == 0 {
		return EmptyRoot()
	}
	h := r.peaks[len(r.peaks)-1]
	for i := len(r.peaks) - 2; i >= 0; i-- {
		h = HashChildren(r.peaks[i], h)
	}
	return h
}

// HashReader returns the stored hash at a storage index (see StoredIndex).
type HashReader func(index uint64) (Hash, error)

// pieces calls f for each perfect subtree (level, k) tiling [lo, hi),
// largest first. lo must be a multiple of the smallest power of two ≥ hi−lo,
// which holds for every range RFC 6962's recursion visits.
func pieces(lo, hi uint64, f func(level uint, k uint64) error) error {
	if lo >= hi {
		return fmt.Errorf("%w: empty range [%d, %d)", ErrRange, lo, hi)
	}
	if lo != 0 && uint(bits.TrailingZeros64(lo)) < uint(bits.Len64(hi-lo-1)) {
		return fmt.Errorf("%w: range [%d, %d) is not aligned", ErrRange, lo, hi)
	}
	for lo < hi {
		level := uint(bits.Len64(hi-lo) - 1) // largest power of two ≤ hi−lo
		if err := f(level, lo>>level); err != nil {
			return err
		}
		lo += 1 << level
	}
	return nil
}

// SubtreeHash is MTH(D[lo:hi]) for a subtree RFC 6962 proofs use: lo is
// aligned to the smallest power of two ≥ hi−lo. It reads O(log(hi−lo)) hashes.
func SubtreeHash(read HashReader, lo, hi uint64) (Hash, error) {
	var hs []Hash
	err := pieces(lo, hi, func(level uint, k uint64) error {
		h, err := read(StoredIndex(level, k))
		hs = append(hs, h)
		return err
	})
	if err != nil {
		return Hash{}, err
	}
	h := hs[len(hs)-1]
	for i := len(hs) - 2; i >= 0; i-- {
		h = HashChildren(hs[i], h)
	}
	return h, nil
}

// RootAt is the root of the tree's first size leaves.
func RootAt(read HashReader, size uint64) (Hash, error) {
	if size == 0 {
		return EmptyRoot(), nil
	}
	return SubtreeHash(read, 0, size)
}

// RangeAt rebuilds the compact range of the first size leaves from storage.
func RangeAt(read HashReader, size uint64) (*Range, error) {
	r := &Range{size: size}
	if size == 0 {
		return r, nil
	}
	err := pieces(0, size, func(level uint, k uint64) error {
		h, err := read(StoredIndex(level, k))
		r.peaks = append(r.peaks, h)
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// split is the largest power of two strictly smaller than n (n ≥ 2).
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// InclusionProof is the audit path PATH(index, D[0:size]) of RFC 6962
// §2.1.1, bottom-up: the first hash is the leaf's sibling.
func InclusionProof(read HashReader, index, size uint64) ([]Hash, error) {
	if index >= size || size > MaxSize {
		return nil, fmt.Errorf("%w: index %d in tree of size %d", ErrRange, index, size)
	}
	var path []Hash
	lo, hi := uint64(0), size
	for hi-lo > 1 {
		k := split(hi - lo)
		var h Hash
		var err error
		if index < lo+k {
			h, err = SubtreeHash(read, lo+k, hi)
			hi = lo + k
		} else {
			h, err = SubtreeHash(read, lo, lo+k)
			lo += k
		}
		if err != nil {
			return nil, err
		}
		path = append(path, h)
	}
	reverse(path)
	return path, nil
}

// ConsistencyProof is PROOF(size1, D[0:size2]) of RFC 6962 §2.1.2. It is
// empty when size1 is 0 or equal to size2.
func ConsistencyProof(read HashReader, size1, size2 uint64) ([]Hash, error) {
	if size1 > size2 || size2 > MaxSize {
		return nil, fmt.Errorf("%w: consistency from %d to %d", ErrRange, size1, size2)
	}
	if size1 == 0 || size1 == size2 {
		return nil, nil
	}
	var path []Hash
	m, lo, hi, whole := size1, uint64(0), size2, true
	for {
		n := hi - lo
		if m == n {
			if !whole {
				h, err := SubtreeHash(read, lo, hi)
				if err != nil {
					return nil, err
				}
				path = append(path, h)
			}
			break
		}
		k := split(n)
		var h Hash
		var err error
		if m <= k {
			h, err = SubtreeHash(read, lo+k, hi)
			hi = lo + k
		} else {
			h, err = SubtreeHash(read, lo, lo+k)
			m -= k
			lo += k
			whole = false
		}
		if err != nil {
			return nil, err
		}
		path = append(path, h)
	}
	reverse(path)
	return path, nil
}

func reverse(hs []Hash) {
	for i, j := 0, len(hs)-1; i < j; i, j = i+1, j-1 {
		hs[i], hs[j] = hs[j], hs[i]
	}
}
