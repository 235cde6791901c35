package store

import (
	"errors"

	"github.com/tally-mesh/tally/store/merkle"
)

// chain checks segment files one after another, in order, as Verify and
// the hash-cache rebuild read them, and grows the tree they describe.
type chain struct {
	p     uint32
	segs  uint64        // segments accepted so far
	tree  *merkle.Range // tree after segment segs
	prev  [32]byte      // SHA-256 of segment segs
	store func(merkle.Hash)
	// lastLeaves are segment segs's leaf hashes, to name the entry that
	// changed when the next segment shows that segment segs was rewritten.
	lastLeaves []merkle.Hash
	lastCount  uint64

	// decode makes add decode and Validate every entry and check the
	// header's totals (Verify); without it only the framing, the chain and
	// the tree are checked (rebuilding the hash cache).
	decode  bool
	onEntry func(seg uint64, e *Entry) error
	// cache, if set, is the node's hash cache, used only to name the entry
	// that changed when a recomputed root does not match.
	cache merkle.HashReader
}

// add checks b as segment segs+1. The first problem found, in file order,
// is returned as a *CorruptError.
func (c *chain) add(b []byte) (SegmentHeader, error) {
	n := c.segs + 1
	seg, bad, err := splitSegment(b)
	if err != nil {
		if seg.hdr.Count > 0 && c.decode {
			// Entries removed or inserted break the framing at the end of
			// the file; the entries' own indexes say where it happened.
			if ce := c.checkOrder(n, seg.hdr.FirstIndex, seg.entries); ce != nil {
				return seg.hdr, ce
			}
		}
		return SegmentHeader{}, corrupt(c.p, n, badIndex(seg.hdr, bad), err, "segment file does not parse")
	}
	h := seg.hdr
	switch {
	case h.Number != n:
		return h, corrupt(c.p, n, -1, nil, "file holds segment %d", h.Number)
	case h.Partition != c.p:
		return h, corrupt(c.p, n, -1, nil, "header says partition %d", h.Partition)
	case h.FirstIndex != c.tree.Size():
		if i := c.locate(c.tree.Size()-c.lastCount, c.lastLeaves); i >= 0 {
			return h, corrupt(c.p, n-1, i, nil, "segment %d was rewritten: segment %d starts at index %d, segment %d now ends at %d; this entry's leaf hash differs from the node's hash cache", n-1, n, h.FirstIndex, n-1, c.tree.Size())
		}
		return h, corrupt(c.p, n, -1, nil, "first index %d, previous segments end at %d", h.FirstIndex, c.tree.Size())
	case h.PrevHash != c.prev:
		if i := c.locate(c.tree.Size()-c.lastCount, c.lastLeaves); i >= 0 {
			return h, corrupt(c.p, n-1, i, nil, "segment %d was rewritten: its SHA-256 %x is not the prev hash %x in segment %d; this entry's leaf hash differs from the node's hash cache", n-1, c.prev, h.PrevHash, n)
		}
		return h, corrupt(c.p, n, -1, nil, "prev hash %x does not match SHA-256 of segment %d (%x)", h.PrevHash, n-1, c.prev)
	case h.TreeSize != h.FirstIndex+uint64(h.Count):
		return h, corrupt(c.p, n, -1, nil, "tree size %d is not first index %d + count %d", h.TreeSize, h.FirstIndex, h.Count)
	}
	if c.decode {
		if ce := c.checkOrder(n, h.FirstIndex, seg.entries); ce != nil {
			return h, ce
		}
	}
	tot := totals{}
	var decoded []Entry
	leaves := make([]merkle.Hash, len(seg.entries))
	for i, raw := range seg.entries {
		idx := h.FirstIndex + uint64(i)
		if c.decode {
			e, err := UnmarshalEntry(raw)
			if err != nil {
				return h, corrupt(c.p, n, int64(idx), err, "entry does not decode")
			}
			switch {
			case e.Partition != c.p:
				return h, corrupt(c.p, n, int64(idx), nil, "entry says partition %d", e.Partition)
			case e.Index != idx:
				return h, corrupt(c.p, n, int64(idx), nil, "entry says index %d", e.Index)
			}
			if err := e.Validate(); err != nil {
				return h, corrupt(c.p, n, int64(idx), err, "entry %s/%s is not a valid settlement", e.Provider, e.Tx.ID)
			}
			tot.add(e.Tx.Currency.Code, e.Net)
			decoded = append(decoded, e)
		}
		leaves[i] = merkle.HashLeaf(raw)
	}
	for _, l := range leaves {
		c.tree.Append(l, c.store)
	}
	if root := c.tree.Root(); root != h.Root {
		if i := c.locate(h.FirstIndex, leaves); i >= 0 {
			return h, corrupt(c.p, n, i, nil, "root %x in header, recomputed %x; this entry's leaf hash differs from the node's hash cache", h.Root, root)
		}
		return h, corrupt(c.p, n, -1, nil, "root %x in header, recomputed %x", h.Root, root)
	}
	if c.decode {
		if got := tot.list(); !equalTotals(got, h.Totals) {
			return h, corrupt(c.p, n, -1, nil, "totals %s in header, entries sum to %s", fmtTotals(h.Totals), fmtTotals(got))
		}
	}
	// The settlement checks run on entries whose bytes the segment's root
	// vouches for, so a changed byte is reported as a change, not as a
	// wrong split.
	if c.onEntry != nil {
		for i := range decoded {
			if err := c.onEntry(n, &decoded[i]); err != nil {
				var ce *CorruptError
				if errors.As(err, &ce) {
					return h, err
				}
				return h, corrupt(c.p, n, int64(decoded[i].Index), nil, "%v", err)
			}
		}
	}
	c.segs, c.prev = n, SegmentHash(b)
	c.lastLeaves, c.lastCount = leaves, uint64(len(leaves))
	return h, nil
}

// checkOrder reads the index every entry of a segment records and, if they
// do not run first, first+1, ..., says what happened: entries swapped,
// removed, inserted or moved. Entries that do not decode are skipped here
// (the caller reports them in order).
func (c *chain) checkOrder(n, first uint64, raws [][]byte) *CorruptError {
	idx := make([]int64, len(raws)) // −1: does not decode
	for i, raw := range raws {
		idx[i] = -1
		if e, err := UnmarshalEntry(raw); err == nil {
			idx[i] = int64(e.Index)
		}
	}
	for i := range idx {
		at, got := int64(first)+int64(i), idx[i]
		if got < 0 || got == at {
			continue
		}
		next := int64(-1)
		if i+1 < len(idx) {
			next = idx[i+1]
		}
		switch {
		case got == at+1 && next == at:
			return corrupt(c.p, n, at, nil, "entries %d and %d are swapped: leaf %d holds the entry that says index %d, leaf %d the one that says %d", at, at+1, at, got, at+1, next)
		case got > at && next == at+1:
			return corrupt(c.p, n, at, nil, "the entry at leaf %d says index %d, its neighbours are in order: its index was changed", at, got)
		case got > at:
			return corrupt(c.p, n, at, nil, "entries %d..%d are missing: leaf %d holds the entry that says index %d", at, got-1, at, got)
		case got == at-1 && i > 0:
			// Two entries claim one index; the node's hash cache, if it has
			// that leaf, tells the original from the inserted one.
			forged := at - 1
			if c.cache != nil {
				if h, err := c.cache(merkle.StoredIndex(0, uint64(at-1))); err == nil && h == merkle.HashLeaf(raws[i-1]) {
					forged = at
				}
			}
			return corrupt(c.p, n, forged, nil, "an entry was inserted at leaf %d: leaves %d and %d both say index %d", forged, at-1, at, got)
		default:
			return corrupt(c.p, n, at, nil, "leaf %d holds the entry that says index %d: entries were moved", at, got)
		}
	}
	return nil
}

// locate returns the index of the first leaf that differs from the hash
// cache, or −1 if there is no cache or it agrees.
func (c *chain) locate(first uint64, leaves []merkle.Hash) int64 {
	if c.cache == nil {
		return -1
	}
	for i, l := range leaves {
		h, err := c.cache(merkle.StoredIndex(0, first+uint64(i)))
		if err != nil {
			return -1
		}
		if h != l {
			return int64(first) + int64(i)
		}
	}
	return -1
}

func fmtTotals(ts []CurrencyTotal) string {
	s := "["
	for i, t := range ts {
		if i > 0 {
			s += " "
		}
		s += t.Net.String() + " " + t.Currency
	}
	return s + "]"
}
