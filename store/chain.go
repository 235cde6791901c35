package store

import (
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

	// decode makes add decode and Validate every entry and check the
	// header's totals (Verify); without it only the framing, the chain and
	// the tree are checked (rebuilding the hash cache).
	decode  bool
	onEntry func(*Entry)
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
		return SegmentHeader{}, corrupt(c.p, n, badIndex(seg.hdr, bad), err, "segment file does not parse")
	}
	h := seg.hdr
	switch {
	case h.Number != n:
		return h, corrupt(c.p, n, -1, nil, "file holds segment %d", h.Number)
	case h.Partition != c.p:
		return h, corrupt(c.p, n, -1, nil, "header says partition %d", h.Partition)
	case h.FirstIndex != c.tree.Size():
		return h, corrupt(c.p, n, -1, nil, "first index %d, previous segments end at %d", h.FirstIndex, c.tree.Size())
	case h.PrevHash != c.prev:
		return h, corrupt(c.p, n, -1, nil, "prev hash %x does not match SHA-256 of segment %d (%x)", h.PrevHash, n-1, c.prev)
	case h.TreeSize != h.FirstIndex+uint64(h.Count):
		return h, corrupt(c.p, n, -1, nil, "tree size %d is not first index %d + count %d", h.TreeSize, h.FirstIndex, h.Count)
	}
	tot := totals{}
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
			if c.onEntry != nil {
				c.onEntry(&e)
			}
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
	c.segs, c.prev = n, SegmentHash(b)
	return h, nil
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
