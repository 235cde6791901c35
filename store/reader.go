package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/tally-mesh/tally/store/merkle"
)

// ErrNotFound is returned when no entry has the (provider, id) asked for.
var ErrNotFound = errors.New("entry not found")

// Reader serves entries, roots and proofs from a ledger directory or an
// export without writing to it, so auditor commands can run while a node
// appends. It sees the segments present when it was opened.
//
// Proofs come from the partition's hash cache when it is present and agrees
// with the last segment's root, else from a tree rebuilt in memory from the
// segments (NoCache forces that). The cache is not trusted beyond that
// check: callers verify every proof against a signed root before handing it
// out (audit.Prove does), and retry with NoCache if it does not verify.
type Reader struct {
	dir     string
	noCache bool

	mu    sync.Mutex
	parts map[uint32]*readPart
}

type readPart struct {
	id   uint32
	dir  string
	segs uint64
	size uint64   // tree size at the end of segment segs
	root [32]byte // root in segment segs's header

	loaded bool
	read   merkle.HashReader
	file   *os.File
}

// OpenReader opens dir (a ledger directory or an export) for reading. With
// noCache, proofs never use the hash cache.
func OpenReader(dir string, noCache bool) (*Reader, error) {
	ps, err := listPartitions(dir)
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", dir, err)
	}
	r := &Reader{dir: dir, noCache: noCache, parts: map[uint32]*readPart{}}
	for _, p := range ps {
		pd := partitionDir(dir, p)
		n, _, err := listSegments(pd, p)
		if err != nil {
			return nil, fmt.Errorf("open ledger %s: %w", dir, err)
		}
		rp := &readPart{id: p, dir: pd, segs: n, root: merkle.EmptyRoot()}
		if n > 0 {
			h, err := readHeader(segmentPath(pd, n))
			if err != nil {
				return nil, corrupt(p, n, -1, err, "read segment header")
			}
			rp.size, rp.root = h.TreeSize, h.Root
		}
		r.parts[p] = rp
	}
	return r, nil
}

// Dir is the directory the reader was opened on.
func (r *Reader) Dir() string { return r.dir }

// Partitions lists the partitions, sorted.
func (r *Reader) Partitions() []uint32 {
	out := make([]uint32, 0, len(r.parts))
	for p := range r.parts {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Head returns the partition's segment count, tree size and root as of
// OpenReader.
func (r *Reader) Head(p uint32) (segments, size uint64, root [32]byte, err error) {
	rp, err := r.part(p)
	if err != nil {
		return 0, 0, root, err
	}
	return rp.segs, rp.size, rp.root, nil
}

func (r *Reader) part(p uint32) (*readPart, error) {
	rp := r.parts[p]
	if rp == nil {
		return nil, fmt.Errorf("partition %d: no such partition in %s: %w", p, r.dir, fs.ErrNotExist)
	}
	return rp, nil
}

// Checkpoint returns the partition's checkpoint file (a signed note, not
// checked here), or nil if there is none.
func (r *Reader) Checkpoint(p uint32) []byte {
	rp := r.parts[p]
	if rp == nil {
		return nil
	}
	b, err := readFileMax(filepath.Join(rp.dir, checkpointFile), maxCheckpoint)
	if err != nil {
		return nil
	}
	return b
}

// Entry returns the entry at leaf index i of partition p and its segment.
func (r *Reader) Entry(p uint32, i uint64) (Entry, uint64, error) {
	rp, err := r.part(p)
	if err != nil {
		return Entry{}, 0, err
	}
	return findEntry(rp.dir, p, rp.segs, rp.size, i)
}

// Entries returns the entries with leaf indexes in [start, end) of partition
// p, at most max of them.
func (r *Reader) Entries(p uint32, start, end uint64, max int) ([]IndexedEntry, error) {
	rp, err := r.part(p)
	if err != nil {
		return nil, err
	}
	return readEntries(rp.dir, p, rp.segs, rp.size, start, end, max)
}

// Find scans every partition for the entry of (provider, id) and returns
// its partition, leaf index and segment; ErrNotFound if there is none. It
// reads every segment: O(ledger size).
func (r *Reader) Find(provider, id string) (uint32, uint64, uint64, error) {
	needle := []byte(id)
	for _, p := range r.Partitions() {
		rp := r.parts[p]
		for n := uint64(1); n <= rp.segs; n++ {
			b, err := readFileMax(segmentPath(rp.dir, n), MaxSegmentBytes)
			if err != nil {
				return 0, 0, 0, corrupt(p, n, -1, err, "read segment")
			}
			if !bytes.Contains(b, needle) {
				continue
			}
			seg, bad, err := splitSegment(b)
			if err != nil {
				return 0, 0, 0, corrupt(p, n, badIndex(seg.hdr, bad), err, "segment does not parse")
			}
			for k, raw := range seg.entries {
				if !bytes.Contains(raw, needle) {
					continue
				}
				e, err := UnmarshalEntry(raw)
				if err != nil {
					return 0, 0, 0, corrupt(p, n, int64(seg.hdr.FirstIndex)+int64(k), err, "entry does not decode")
				}
				if e.Provider == provider && e.Tx.ID == id {
					return p, e.Index, n, nil
				}
			}
		}
	}
	return 0, 0, 0, fmt.Errorf("%s/%s in %s: %w", provider, id, r.dir, ErrNotFound)
}

// hashes loads the partition's hash source on first use.
func (r *Reader) hashes(p uint32) (*readPart, error) {
	rp, err := r.part(p)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rp.loaded {
		return rp, nil
	}
	if !r.noCache {
		if f, err := os.Open(filepath.Join(rp.dir, hashesFile)); err == nil {
			read := func(i uint64) (merkle.Hash, error) {
				var h merkle.Hash
				if _, err := f.ReadAt(h[:], int64(i)*32); err != nil {
					return h, fmt.Errorf("hash cache index %d: %w", i, err)
				}
				return h, nil
			}
			if root, err := merkle.RootAt(read, rp.size); err == nil && root == rp.root {
				rp.read, rp.file, rp.loaded = read, f, true
				return rp, nil
			}
			f.Close()
		}
	}
	var stored []merkle.Hash
	tree := &merkle.Range{}
	for n := uint64(1); n <= rp.segs; n++ {
		b, err := readFileMax(segmentPath(rp.dir, n), MaxSegmentBytes)
		if err != nil {
			return nil, corrupt(p, n, -1, err, "read segment")
		}
		seg, bad, err := splitSegment(b)
		if err != nil {
			return nil, corrupt(p, n, badIndex(seg.hdr, bad), err, "segment does not parse")
		}
		for _, raw := range seg.entries {
			tree.Append(merkle.HashLeaf(raw), func(h merkle.Hash) { stored = append(stored, h) })
		}
		if tree.Size() != seg.hdr.TreeSize || tree.Root() != seg.hdr.Root {
			return nil, corrupt(p, n, -1, nil, "root %x in header, recomputed %x (run tally verify)", seg.hdr.Root, tree.Root())
		}
	}
	rp.read = func(i uint64) (merkle.Hash, error) {
		if i >= uint64(len(stored)) {
			return merkle.Hash{}, fmt.Errorf("hash index %d of %d: %w", i, len(stored), merkle.ErrRange)
		}
		return stored[i], nil
	}
	rp.loaded = true
	return rp, nil
}

// InclusionProof is the RFC 6962 inclusion proof of leaf index in partition
// p's tree at size.
func (r *Reader) InclusionProof(p uint32, index, size uint64) ([][32]byte, error) {
	rp, err := r.hashes(p)
	if err != nil {
		return nil, err
	}
	if size > rp.size {
		return nil, fmt.Errorf("inclusion proof: partition %d: size %d beyond tree size %d: %w", p, size, rp.size, merkle.ErrRange)
	}
	return merkle.InclusionProof(rp.read, index, size)
}

// ConsistencyProof is the RFC 6962 consistency proof between sizes of
// partition p's tree.
func (r *Reader) ConsistencyProof(p uint32, size1, size2 uint64) ([][32]byte, error) {
	rp, err := r.hashes(p)
	if err != nil {
		return nil, err
	}
	if size2 > rp.size {
		return nil, fmt.Errorf("consistency proof: partition %d: size %d beyond tree size %d: %w", p, size2, rp.size, merkle.ErrRange)
	}
	return merkle.ConsistencyProof(rp.read, size1, size2)
}

// RootAt is the root of partition p's tree at size.
func (r *Reader) RootAt(p uint32, size uint64) ([32]byte, error) {
	rp, err := r.hashes(p)
	if err != nil {
		return [32]byte{}, err
	}
	if size > rp.size {
		return [32]byte{}, fmt.Errorf("root: partition %d: size %d beyond tree size %d: %w", p, size, rp.size, merkle.ErrRange)
	}
	return merkle.RootAt(rp.read, size)
}

// Close releases the hash cache files. Idempotent.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for _, rp := range r.parts {
		if rp.file != nil {
			if err := rp.file.Close(); err != nil && first == nil {
				first = err
			}
			rp.file = nil
		}
	}
	return first
}

// IndexedEntry is an entry with the segment that holds it and its bytes.
type IndexedEntry struct {
	Entry
	Segment uint64
	Raw     []byte // the canonical encoding, as stored (the Merkle leaf data)
}

// findEntry finds leaf i among segments 1..segs of a partition directory by
// binary search over the headers: O(log segments) header reads and one
// segment read.
func findEntry(dir string, p uint32, segs, size, i uint64) (Entry, uint64, error) {
	if i >= size {
		return Entry{}, 0, fmt.Errorf("entry %d of partition %d: tree size is %d: %w", i, p, size, merkle.ErrRange)
	}
	n, err := segmentOf(dir, p, segs, i)
	if err != nil {
		return Entry{}, 0, err
	}
	b, err := readFileMax(segmentPath(dir, n), MaxSegmentBytes)
	if err != nil {
		return Entry{}, 0, corrupt(p, n, int64(i), err, "read segment")
	}
	seg, bad, err := splitSegment(b)
	if err != nil {
		return Entry{}, 0, corrupt(p, n, badIndex(seg.hdr, bad), err, "segment does not parse")
	}
	if i < seg.hdr.FirstIndex || i >= seg.hdr.TreeSize {
		return Entry{}, 0, corrupt(p, n, int64(i), nil, "segment holds leaves %d..%d", seg.hdr.FirstIndex, seg.hdr.TreeSize-1)
	}
	e, err := UnmarshalEntry(seg.entries[i-seg.hdr.FirstIndex])
	if err != nil {
		return Entry{}, 0, corrupt(p, n, int64(i), err, "entry does not decode")
	}
	return e, n, nil
}

// segmentOf returns the number of the segment holding leaf i.
func segmentOf(dir string, p uint32, segs, i uint64) (uint64, error) {
	lo, hi := uint64(1), segs // the segment holding i is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		h, err := readHeader(segmentPath(dir, mid))
		if err != nil {
			return 0, corrupt(p, mid, -1, err, "read segment header")
		}
		if h.TreeSize > i {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// readEntries returns the entries [start, min(end, size, start+max)).
func readEntries(dir string, p uint32, segs, size, start, end uint64, max int) ([]IndexedEntry, error) {
	end = min(end, size)
	if max > 0 {
		end = min(end, start+uint64(max))
	}
	if start >= end {
		if start > size {
			return nil, fmt.Errorf("entries from %d of partition %d: tree size is %d: %w", start, p, size, merkle.ErrRange)
		}
		return nil, nil
	}
	n, err := segmentOf(dir, p, segs, start)
	if err != nil {
		return nil, err
	}
	var out []IndexedEntry
	for ; n <= segs && uint64(len(out)) < end-start; n++ {
		b, err := readFileMax(segmentPath(dir, n), MaxSegmentBytes)
		if err != nil {
			return nil, corrupt(p, n, -1, err, "read segment")
		}
		seg, bad, err := splitSegment(b)
		if err != nil {
			return nil, corrupt(p, n, badIndex(seg.hdr, bad), err, "segment does not parse")
		}
		for k, raw := range seg.entries {
			i := seg.hdr.FirstIndex + uint64(k)
			if i < start || i >= end {
				continue
			}
			e, err := UnmarshalEntry(raw)
			if err != nil {
				return nil, corrupt(p, n, int64(i), err, "entry does not decode")
			}
			out = append(out, IndexedEntry{Entry: e, Segment: n, Raw: raw})
		}
	}
	return out, nil
}
