package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store/merkle"
)

// The tamper suite of issue 5: each way of changing a ledger an attacker
// without the signing key has — flip a byte in an entry, delete an entry,
// reorder two entries, insert a forged entry, swap two segments, replace the
// checkpoint with one signed by another key, truncate the tail — in its naive
// form and in the form where the attacker rewrites everything they can
// (entry indexes, header counts, roots and totals) so that the segment is
// consistent in itself. Every case must be detected, at the partition,
// segment and entry it happened in, with a reason naming what differs.
//
// buildLedger's partition 0 has segments of 3, 4, 2 and 5 entries (leaves
// 0–2, 3–6, 7–8, 9–13) and partition 3 segments of 2 and 6.

// segmentLeaves returns the leaf hashes of partition p's segments 1..n−1.
func (tl *testLedger) treeBefore(t *testing.T, p uint32, n uint64) *merkle.Range {
	t.Helper()
	r := &merkle.Range{}
	for k := uint64(1); k < n; k++ {
		seg, _, err := splitSegment(mustRead(t, tl.seg(p, k)))
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range seg.entries {
			r.Append(merkle.HashLeaf(raw), nil)
		}
	}
	return r
}

// rewrite decodes segment n of partition p, lets f change its entries, and
// writes it back. With coherent, the entries are renumbered from the
// segment's first index and the header's count, tree size, root and totals
// are recomputed, as an attacker who knows the format would do; without it
// only the entry frames change.
func (tl *testLedger) rewrite(t *testing.T, p uint32, n uint64, coherent bool, f func([]Entry) []Entry) {
	tl.rewriteHeader(t, p, n, coherent, coherent, f)
}

// rewriteHeader is rewrite with the renumbering and the header recomputation
// chosen separately.
func (tl *testLedger) rewriteHeader(t *testing.T, p uint32, n uint64, renumber, header bool, f func([]Entry) []Entry) {
	t.Helper()
	seg, _, err := splitSegment(mustRead(t, tl.seg(p, n)))
	if err != nil {
		t.Fatal(err)
	}
	var es []Entry
	for _, raw := range seg.entries {
		e, err := UnmarshalEntry(raw)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	es = f(es)
	h := seg.hdr
	tree := tl.treeBefore(t, p, n)
	tot := totals{}
	raws := make([][]byte, len(es))
	for i := range es {
		if renumber {
			es[i].Index = h.FirstIndex + uint64(i)
		}
		if raws[i], err = es[i].MarshalBinary(); err != nil {
			t.Fatal(err)
		}
		tree.Append(merkle.HashLeaf(raws[i]), nil)
		tot.add(es[i].Tx.Currency.Code, es[i].Net)
	}
	if header {
		h.Count, h.TreeSize, h.Root, h.Totals = uint32(len(es)), tree.Size(), tree.Root(), tot.list()
	}
	b, err := encodeSegment(&h, raws)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, tl.seg(p, n), b)
}

// forged is a valid, balanced entry that was never settled.
func forged(t *testing.T, like Entry, index uint64) Entry {
	e := like
	e.Index = index
	e.Tx.ID = "forged-1"
	cur := e.Tx.Currency
	e.Tx.Amount = cur.FromMinor(100)
	e.Tx.Type = "bet"
	e.Tx.Parent = ""
	e.Rule = "default"
	e.Net = cur.FromMinor(100)
	e.Shares = []money.Share{{Party: "acme", Amount: cur.FromMinor(1)}, {Party: "mallory", Amount: cur.FromMinor(99)}}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	return e
}

func noCache(t *testing.T, tl *testLedger, p uint32) {
	if err := os.Remove(filepath.Join(partitionDir(tl.dir, p), hashesFile)); err != nil {
		t.Fatal(err)
	}
}

func TestTamperSuite(t *testing.T) {
	tests := []struct {
		name      string
		tamper    func(t *testing.T, tl *testLedger)
		trusted   func(tl *testLedger) [][]byte // checkpoints the auditor kept
		partition uint32
		segment   uint64
		index     int64 // −1: no single entry can be named
		reason    string
	}{
		// 1. flip a byte in an entry
		{"flip a byte in an entry", func(t *testing.T, tl *testLedger) {
			off, e := tl.idOffset(t, 0, 2, 1)
			tl.flip(t, tl.seg(0, 2), off+len(e.Tx.ID)-1, 0x01)
		}, nil, 0, 2, 4, "leaf hash differs"},
		{"flip a byte in an entry, no hash cache", func(t *testing.T, tl *testLedger) {
			off, e := tl.idOffset(t, 0, 2, 1)
			tl.flip(t, tl.seg(0, 2), off+len(e.Tx.ID)-1, 0x01)
			noCache(t, tl, 0)
		}, nil, 0, 2, -1, "recomputed"},
		{"flip a byte in an entry's index", func(t *testing.T, tl *testLedger) {
			off, _ := tl.idOffset(t, 0, 4, 2) // leaf 11
			b := mustRead(t, tl.seg(0, 4))
			// back from the id: provider "acme" (1+4), edge seq (8), edge node "edge-1" (1+6), then the index's last byte
			at := off - 1 - 5 - 8 - 7 - 1
			b[at] ^= 0x40
			mustWrite(t, tl.seg(0, 4), b)
		}, nil, 0, 4, 11, "its index was changed"},

		// 2. delete an entry
		{"delete an entry, header untouched", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 0, 2, false, func(es []Entry) []Entry { return append(es[:1:1], es[2:]...) })
		}, nil, 0, 2, 4, "entries 4..4 are missing"},
		{"delete an entry, header recomputed", func(t *testing.T, tl *testLedger) {
			tl.rewriteHeader(t, 0, 4, false, true, func(es []Entry) []Entry { return append(es[:2:2], es[3:]...) })
		}, nil, 0, 4, 11, "entries 11..11 are missing"},
		{"delete an entry, everything renumbered and recomputed", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 0, 2, true, func(es []Entry) []Entry { return append(es[:1:1], es[2:]...) })
		}, nil, 0, 2, 4, "segment 2 was rewritten"},
		{"delete the last entry, everything recomputed", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 0, 4, true, func(es []Entry) []Entry { return es[:4] })
		}, nil, 0, 4, -1, "checkpoint size 14, segment ends at size 13"},
		{"delete an entry of the last segment, everything recomputed", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 0, 4, true, func(es []Entry) []Entry { return append(es[:1:1], es[2:]...) })
		}, nil, 0, 4, 10, "checkpoint size 14, segment ends at size 13; this entry's leaf hash differs"},

		// 3. reorder two entries
		{"reorder two entries", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 0, 2, false, func(es []Entry) []Entry { es[1], es[2] = es[2], es[1]; return es })
		}, nil, 0, 2, 4, "entries 4 and 5 are swapped"},
		{"reorder two entries, renumbered and recomputed", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 0, 2, true, func(es []Entry) []Entry { es[1], es[2] = es[2], es[1]; return es })
		}, nil, 0, 2, 4, "segment 2 was rewritten"},
		{"reorder two entries of the last segment, renumbered and recomputed", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 3, 2, true, func(es []Entry) []Entry { es[3], es[4] = es[4], es[3]; return es })
		}, nil, 3, 2, 5, "checkpoint root"},

		// 4. insert a forged entry
		{"insert a forged entry, header untouched", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 0, 2, false, func(es []Entry) []Entry {
				return append(es[:2:2], append([]Entry{forged(t, es[1], 5)}, es[2:]...)...)
			})
		}, nil, 0, 2, 5, "an entry was inserted at leaf 5"},
		{"insert a forged entry after the one it copies, header untouched", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 0, 2, false, func(es []Entry) []Entry {
				return append(es[:3:3], append([]Entry{forged(t, es[1], 5)}, es[3:]...)...)
			})
		}, nil, 0, 2, 6, "an entry was inserted at leaf 6"},
		{"insert a forged entry, renumbered and recomputed", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 0, 3, true, func(es []Entry) []Entry {
				return append([]Entry{forged(t, es[0], 0)}, es...)
			})
		}, nil, 0, 3, 7, "segment 3 was rewritten"},
		{"insert a forged entry at the end of the ledger, recomputed", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 0, 4, true, func(es []Entry) []Entry { return append(es, forged(t, es[0], 0)) })
		}, nil, 0, 4, -1, "checkpoint size 14, segment ends at size 15"},

		// 5. swap two segments
		{"swap two segments", func(t *testing.T, tl *testLedger) {
			a, b := mustRead(t, tl.seg(0, 2)), mustRead(t, tl.seg(0, 3))
			mustWrite(t, tl.seg(0, 2), b)
			mustWrite(t, tl.seg(0, 3), a)
		}, nil, 0, 2, -1, "file holds segment 3"},
		{"swap two segments of different partitions", func(t *testing.T, tl *testLedger) {
			a, b := mustRead(t, tl.seg(0, 1)), mustRead(t, tl.seg(3, 1))
			mustWrite(t, tl.seg(0, 1), b)
			mustWrite(t, tl.seg(3, 1), a)
		}, nil, 0, 1, -1, "header says partition 3"},

		// 6. replace the checkpoint with one signed by another key
		{"checkpoint signed by another key", func(t *testing.T, tl *testLedger) {
			text, _ := noteText(tl.notes[0][3])
			msg, err := note.Sign(&note.Note{Text: text}, newKey(t, testOrigin).signer)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, tl.checkpoint(0), msg)
		}, nil, 0, 4, -1, "signature does not verify"},
		{"rewritten ledger with a checkpoint signed by another key", func(t *testing.T, tl *testLedger) {
			tl.rewrite(t, 3, 2, true, func(es []Entry) []Entry { return es[:5] })
			var c Checkpoint
			seg, _, _ := splitSegment(mustRead(t, tl.seg(3, 2)))
			c.Origin, c.Size, c.Root, c.Segment, c.SegmentHash = testOrigin+"/p3", seg.hdr.TreeSize, seg.hdr.Root, 2, SegmentHash(mustRead(t, tl.seg(3, 2)))
			msg, err := note.Sign(&note.Note{Text: c.Body()}, newKey(t, testOrigin).signer)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, tl.checkpoint(3), msg)
		}, nil, 3, 2, -1, "signature does not verify"},

		// 7. truncate the tail
		{"truncate the tail: last segment removed", func(t *testing.T, tl *testLedger) {
			os.Remove(tl.seg(0, 4))
		}, nil, 0, 4, -1, "segment files are missing"},
		{"truncate the tail: last bytes cut", func(t *testing.T, tl *testLedger) {
			b := mustRead(t, tl.seg(3, 2))
			mustWrite(t, tl.seg(3, 2), b[:len(b)-3])
		}, nil, 3, 2, 7, "does not parse"},
		{"truncate the tail and put back an older genuine checkpoint", func(t *testing.T, tl *testLedger) {
			os.Remove(tl.seg(0, 4))
			mustWrite(t, tl.checkpoint(0), tl.notes[0][2])
		}, func(tl *testLedger) [][]byte { return [][]byte{tl.notes[0][3]} }, 0, 4, -1, "the tail was truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := buildLedger(t)
			var trusted [][]byte
			if tc.trusted != nil {
				trusted = tc.trusted(tl)
			}
			tc.tamper(t, tl)
			_, err := VerifyWith(tl.dir, VerifyOptions{Key: tl.key.vkey, Trusted: trusted})
			if err == nil {
				t.Fatalf("Verify passed a tampered ledger")
			}
			ce := asCorrupt(t, err)
			if ce.Partition != tc.partition || ce.Segment != tc.segment || ce.Index != tc.index {
				t.Fatalf("Verify error at partition %d segment %d index %d, want %d/%d/%d: %v",
					ce.Partition, ce.Segment, ce.Index, tc.partition, tc.segment, tc.index, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error %q does not say %q", err, tc.reason)
			}
			t.Logf("detected: %v", err)
		})
	}
}

// Without a remembered checkpoint, a tail removed together with the newest
// checkpoint, replaced by an older genuine one, looks like a shorter honest
// ledger: the documented limit of a single audit (docs/audit.md). The
// trusted-checkpoint case above is the defence.
func TestTruncatedTailNeedsARememberedCheckpoint(t *testing.T) {
	tl := buildLedger(t)
	os.Remove(tl.seg(0, 4))
	mustWrite(t, tl.checkpoint(0), tl.notes[0][2])
	rep, err := Verify(tl.dir, tl.key.vkey, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Partitions[0].Entries != 9 {
		t.Fatalf("partition 0 has %d entries, want the 9 of segments 1-3", rep.Partitions[0].Entries)
	}
	// An older trusted checkpoint is still consistent.
	if _, err := VerifyWith(tl.dir, VerifyOptions{Key: tl.key.vkey, Trusted: [][]byte{tl.notes[0][1], tl.notes[3][1]}}); err != nil {
		t.Fatalf("Verify with older trusted checkpoints: %v", err)
	}
	// A trusted checkpoint signed by someone else is refused outright.
	text, _ := noteText(tl.notes[0][1])
	other, _ := note.Sign(&note.Note{Text: text}, newKey(t, testOrigin).signer)
	if _, err := VerifyWith(tl.dir, VerifyOptions{Key: tl.key.vkey, Trusted: [][]byte{other}}); err == nil || !strings.Contains(err.Error(), "trusted checkpoint 1") {
		t.Fatalf("Verify with a foreign trusted checkpoint = %v", err)
	}
}
