package store

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
)

// SegmentVersion is the format version in every segment header.
const SegmentVersion byte = 1

// segmentMagic opens every segment file.
var segmentMagic = [4]byte{'T', 'L', 'S', 'G'}

// Limits on segments.
const (
	MaxSegmentEntries = 1 << 20   // entries in one segment
	MaxSegmentBytes   = 128 << 20 // bytes of one segment file
	MaxTotals         = 256       // currencies in one segment header
)

// SegmentHeader opens a segment file. Every field is checked by Verify:
// Number, FirstIndex, Count, TreeSize and Root against the recomputed tree,
// PrevHash against the previous file, Totals against the entries.
type SegmentHeader struct {
	Version    byte
	Partition  uint32
	Number     uint64   // 1-based, contiguous per partition
	FirstIndex uint64   // leaf index of the first entry
	Count      uint32   // entries in the segment, ≥ 1
	PrevHash   [32]byte // SHA-256 of the previous segment file; zero for segment 1
	TreeSize   uint64   // leaves in the partition's tree after this segment: FirstIndex + Count
	Root       [32]byte // RFC 6962 root of the tree at TreeSize
	SealedAt   time.Time
	Totals     []CurrencyTotal // per currency, sorted by code
}

// CurrencyTotal is the sum of Net over a set of entries in one currency.
type CurrencyTotal struct {
	Currency string // ISO 4217 code
	Entries  uint64
	Net      decimal.Decimal
}

// SegmentHash is the SHA-256 of a whole segment file; the next segment's
// PrevHash and the checkpoint's segment line carry it.
func SegmentHash(seg []byte) [32]byte { return sha256.Sum256(seg) }

func (h *SegmentHeader) append(w *enc) error {
	w.raw(segmentMagic[:])
	w.u8(h.Version)
	w.u32(h.Partition)
	w.u64(h.Number)
	w.u64(h.FirstIndex)
	w.u32(h.Count)
	w.hash(h.PrevHash)
	w.u64(h.TreeSize)
	w.hash(h.Root)
	if err := checkTime("sealed_at", h.SealedAt); err != nil {
		return err
	}
	w.time(h.SealedAt)
	if len(h.Totals) > MaxTotals {
		return fmt.Errorf("%d currencies exceed the limit of %d: %w", len(h.Totals), MaxTotals, ErrLimit)
	}
	w.uvarint(uint64(len(h.Totals)))
	for i, t := range h.Totals {
		cur, err := currencyOf(money.Currency{Code: t.Currency, Exponent: expOf(t.Currency)})
		if err != nil {
			return err
		}
		if i > 0 && t.Currency <= h.Totals[i-1].Currency {
			return fmt.Errorf("totals not sorted at %s: %w", t.Currency, ErrInvalidEntry)
		}
		m, err := minor(cur, t.Net, "total "+t.Currency)
		if err != nil {
			return err
		}
		w.str(cur.Code)
		w.u8(byte(cur.Exponent))
		w.u64(t.Entries)
		w.i64(m)
	}
	return nil
}

func expOf(code string) int32 {
	c, _ := money.Lookup(code)
	return c.Exponent
}

func (h *SegmentHeader) decode(d *dec) {
	if m := d.take(4, "magic"); d.err == nil && [4]byte(m) != segmentMagic {
		d.fail("not a segment file (magic %q)", m)
	}
	h.Version = d.u8("version")
	if d.err == nil && h.Version != SegmentVersion {
		d.fail("unknown segment version %d", h.Version)
	}
	h.Partition = d.u32("partition")
	h.Number = d.u64("number")
	h.FirstIndex = d.u64("first index")
	h.Count = d.u32("count")
	if d.err == nil && (h.Count == 0 || h.Count > MaxSegmentEntries) {
		d.fail("count %d outside 1..%d", h.Count, MaxSegmentEntries)
	}
	h.PrevHash = d.hash("prev hash")
	h.TreeSize = d.u64("tree size")
	h.Root = d.hash("root")
	h.SealedAt = d.time("sealed_at")
	n := d.uvarint("totals count", MaxTotals)
	for i := range n {
		code := d.str("total currency", MaxStringLen)
		exp := d.u8("total exponent")
		entries := d.u64("total entries")
		net := d.i64("total net")
		if d.err != nil {
			return
		}
		cur, ok := money.Lookup(code)
		switch {
		case !ok:
			d.fail("unknown currency %q in totals", code)
		case int32(exp) != cur.Exponent:
			d.fail("currency %s has exponent %d, totals say %d", code, cur.Exponent, exp)
		case i > 0 && code <= h.Totals[i-1].Currency:
			d.fail("totals not sorted at %s", code)
		}
		if d.err != nil {
			return
		}
		h.Totals = append(h.Totals, CurrencyTotal{Currency: code, Entries: entries, Net: cur.FromMinor(net)})
	}
}

// encodeSegment lays out the header and the already-encoded entries.
func encodeSegment(h *SegmentHeader, entries [][]byte) ([]byte, error) {
	size := 256 + 64*len(h.Totals)
	for _, e := range entries {
		size += len(e) + 3
	}
	w := enc{b: make([]byte, 0, size)}
	if err := h.append(&w); err != nil {
		return nil, err
	}
	for _, e := range entries {
		w.bytes(e)
	}
	if w.len() > MaxSegmentBytes {
		return nil, fmt.Errorf("segment is %d bytes, limit is %d: %w", w.len(), MaxSegmentBytes, ErrLimit)
	}
	return w.result(), nil
}

// rawSegment is a segment split into its header and its entries' bytes.
type rawSegment struct {
	hdr     SegmentHeader
	entries [][]byte // each entry's encoding, as stored
}

// splitSegment parses the header and the entry framing strictly. On error,
// bad is the position (0-based) of the entry whose frame is broken, or −1
// if the header is.
func splitSegment(b []byte) (seg rawSegment, bad int, err error) {
	if len(b) > MaxSegmentBytes {
		return seg, -1, fmt.Errorf("segment is %d bytes, limit is %d: %w", len(b), MaxSegmentBytes, ErrMalformed)
	}
	d := dec{b: b}
	seg.hdr.decode(&d)
	if d.err != nil {
		return seg, -1, fmt.Errorf("segment header: %w", d.err)
	}
	seg.entries = make([][]byte, 0, seg.hdr.Count)
	for i := range int(seg.hdr.Count) {
		e := d.bytes("entry", MaxEntrySize)
		if d.err != nil {
			return seg, i, fmt.Errorf("entry %d of %d: %w", i, seg.hdr.Count, d.err)
		}
		seg.entries = append(seg.entries, e)
	}
	d.done()
	if d.err != nil {
		return seg, int(seg.hdr.Count) - 1, fmt.Errorf("after the last entry: %w", d.err)
	}
	return seg, -1, nil
}

// DecodeSegment parses a segment file strictly and decodes its entries.
// It checks the encoding only; Verify checks the chain, the tree and the
// money.
func DecodeSegment(b []byte) (SegmentHeader, []Entry, error) {
	seg, _, err := splitSegment(b)
	if err != nil {
		return SegmentHeader{}, nil, fmt.Errorf("decode segment: %w", err)
	}
	out := make([]Entry, len(seg.entries))
	for i, raw := range seg.entries {
		if out[i], err = UnmarshalEntry(raw); err != nil {
			return SegmentHeader{}, nil, fmt.Errorf("decode segment %d entry %d: %w", seg.hdr.Number, i, err)
		}
	}
	return seg.hdr, out, nil
}

// totals sums Net per currency, sorted by code. The sums are money.Acc:
// int64 coefficients while they fit (no allocation per entry), the same
// decimal Decimal.Add would give.
type totals map[string]*currencyAcc

type currencyAcc struct {
	entries uint64
	net     money.Acc
}

func (t totals) add(code string, net decimal.Decimal) {
	c := t[code]
	if c == nil {
		c = &currencyAcc{}
		t[code] = c
	}
	c.entries++
	c.net.Add(net)
}

func (t totals) list() []CurrencyTotal {
	out := make([]CurrencyTotal, 0, len(t))
	for code, c := range t {
		out = append(out, CurrencyTotal{Currency: code, Entries: c.entries, Net: c.net.Decimal()})
	}
	sortTotals(out)
	return out
}

func sortTotals(ts []CurrencyTotal) {
	slices.SortFunc(ts, func(a, b CurrencyTotal) int { return strings.Compare(a.Currency, b.Currency) })
}

func equalTotals(a, b []CurrencyTotal) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Currency != b[i].Currency || a[i].Entries != b[i].Entries || !a[i].Net.Equal(b[i].Net) {
			return false
		}
	}
	return true
}
