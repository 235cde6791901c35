package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"golang.org/x/mod/sumdb/note"
)

// testLedger is a small signed ledger: partition 0 with four segments,
// partition 3 with two, a checkpoint signed after every segment.
type testLedger struct {
	dir      string
	key      testKey
	segs     map[uint32][][]Entry // entries per segment (index 0 = segment 1)
	notes    map[uint32][][]byte  // checkpoint after each segment
	expected map[string]decimal.Decimal
}

func buildLedger(t *testing.T) *testLedger {
	t.Helper()
	tl := &testLedger{dir: t.TempDir(), key: newKey(t, testOrigin), segs: map[uint32][][]Entry{}, notes: map[uint32][][]byte{}, expected: map[string]decimal.Decimal{}}
	g := newGen(t)
	l := openLedger(t, tl.dir, tl.key)
	for _, s := range []struct {
		p uint32
		n int
	}{{0, 3}, {3, 2}, {0, 4}, {0, 2}, {3, 6}, {0, 5}} {
		es := g.entries(t, s.p, s.n)
		seal(t, l, s.p, es)
		tl.segs[s.p] = append(tl.segs[s.p], es)
		tl.notes[s.p] = append(tl.notes[s.p], sign(t, l, s.p))
		for _, e := range es {
			tl.expected[e.Tx.Currency.Code] = tl.expected[e.Tx.Currency.Code].Add(e.Net)
		}
	}
	if err := WriteVerifierKey(tl.dir, tl.key.vkey); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return tl
}

func (tl *testLedger) seg(p uint32, n uint64) string { return segFile(tl.dir, p, n) }

func (tl *testLedger) checkpoint(p uint32) string {
	return filepath.Join(partitionDir(tl.dir, p), checkpointFile)
}

// entryAt returns the file offset of entry i (0-based) of segment n's id.
func (tl *testLedger) idOffset(t *testing.T, p uint32, n uint64, i int) (int, Entry) {
	e := tl.segs[p][n-1][i]
	b := mustRead(t, tl.seg(p, n))
	off := bytes.Index(b, []byte(e.Tx.ID))
	if off < 0 {
		t.Fatalf("id %s not in segment %d", e.Tx.ID, n)
	}
	return off, e
}

func (tl *testLedger) flip(t *testing.T, path string, off int, mask byte) {
	b := mustRead(t, path)
	b[off] ^= mask
	mustWrite(t, path, b)
}

func TestVerifyGood(t *testing.T) {
	tl := buildLedger(t)
	var lines []string
	rep, err := Verify(tl.dir, tl.key.vkey, func(s string) { lines = append(lines, s) })
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Origin != testOrigin || rep.KeySource != "pinned" || rep.Segments != 6 || rep.Entries != 22 || len(rep.Partitions) != 2 {
		t.Fatalf("report = %+v", rep)
	}
	p0 := rep.Partitions[0]
	if p0.Partition != 0 || p0.Segments != 4 || p0.Entries != 14 || p0.SignedSize != 14 || p0.Unsigned() != 0 ||
		p0.Checkpoint != string(tl.notes[0][3]) {
		t.Fatalf("partition 0 report = %+v", p0)
	}
	for _, tot := range rep.Totals {
		if !tot.Net.Equal(tl.expected[tot.Currency]) {
			t.Fatalf("total %s = %s, want %s", tot.Currency, tot.Net, tl.expected[tot.Currency])
		}
	}
	// Conservation: the parties' shares add up to the nets, per currency.
	byCur := map[string]decimal.Decimal{}
	for _, pt := range rep.Parties {
		byCur[pt.Currency] = byCur[pt.Currency].Add(pt.Amount)
	}
	for _, tot := range rep.Totals {
		if !byCur[tot.Currency].Equal(tot.Net) {
			t.Fatalf("parties sum to %s %s, entries to %s", byCur[tot.Currency], tot.Currency, tot.Net)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("no progress lines")
	}

	// Without a pinned key, verifier.key is used.
	rep, err = Verify(tl.dir, "", nil)
	if err != nil || rep.KeySource != filepath.Join(tl.dir, VerifierKeyFile) {
		t.Fatalf("Verify with verifier.key: %v, source %q", err, rep.KeySource)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name      string
		tamper    func(t *testing.T, tl *testLedger) (wantIndex int64)
		partition uint32
		segment   uint64
		reason    string
		is        error // extra errors.Is target
	}{
		{"byte of an entry in a middle segment", func(t *testing.T, tl *testLedger) int64 {
			off, e := tl.idOffset(t, 0, 2, 1)
			tl.flip(t, tl.seg(0, 2), off+len(e.Tx.ID)-1, 0x01)
			return int64(e.Index)
		}, 0, 2, "root", nil},
		{"byte of an entry, no hash cache to locate it", func(t *testing.T, tl *testLedger) int64 {
			off, e := tl.idOffset(t, 0, 2, 1)
			tl.flip(t, tl.seg(0, 2), off+len(e.Tx.ID)-1, 0x01)
			os.Remove(filepath.Join(partitionDir(tl.dir, 0), hashesFile))
			return -1
		}, 0, 2, "root", nil},
		{"byte of an entry in the last segment", func(t *testing.T, tl *testLedger) int64 {
			off, e := tl.idOffset(t, 0, 4, 4)
			tl.flip(t, tl.seg(0, 4), off, 0x02)
			return int64(e.Index)
		}, 0, 4, "root", nil},
		{"byte of an entry in another partition", func(t *testing.T, tl *testLedger) int64 {
			off, e := tl.idOffset(t, 3, 1, 0)
			tl.flip(t, tl.seg(3, 1), off+3, 0x04)
			return int64(e.Index)
		}, 3, 1, "root", nil},
		{"share amount changed", func(t *testing.T, tl *testLedger) int64 {
			off, e := tl.idOffset(t, 0, 3, 1)
			b := mustRead(t, tl.seg(0, 3))
			at := off + bytes.Index(b[off:], []byte("\x08platform")) + 9 + 7 // last byte of its i64
			tl.flip(t, tl.seg(0, 3), at, 0x01)
			return int64(e.Index)
		}, 0, 3, "valid settlement", ErrUnbalanced},
		{"length prefix broken", func(t *testing.T, tl *testLedger) int64 {
			off, e := tl.idOffset(t, 0, 1, 2)
			tl.flip(t, tl.seg(0, 1), off-1, 0x40) // the id's length
			return int64(e.Index)
		}, 0, 1, "", ErrMalformed},
		{"middle segment deleted", func(t *testing.T, tl *testLedger) int64 {
			os.Remove(tl.seg(0, 2))
			return -1
		}, 0, 2, "missing", nil},
		{"last segment deleted", func(t *testing.T, tl *testLedger) int64 {
			os.Remove(tl.seg(0, 4))
			return -1
		}, 0, 4, "missing", nil},
		{"truncated inside an entry", func(t *testing.T, tl *testLedger) int64 {
			b := mustRead(t, tl.seg(0, 3))
			mustWrite(t, tl.seg(0, 3), b[:len(b)-10])
			return int64(tl.segs[0][2][1].Index) // the second (last) entry of segment 3
		}, 0, 3, "parse", ErrMalformed},
		{"truncated inside the header", func(t *testing.T, tl *testLedger) int64 {
			b := mustRead(t, tl.seg(0, 3))
			mustWrite(t, tl.seg(0, 3), b[:50])
			return -1
		}, 0, 3, "parse", ErrMalformed},
		{"byte appended", func(t *testing.T, tl *testLedger) int64 {
			b := mustRead(t, tl.seg(3, 2))
			mustWrite(t, tl.seg(3, 2), append(b, 0))
			return int64(tl.segs[3][1][5].Index)
		}, 3, 2, "trailing", ErrMalformed},
		{"two segments swapped", func(t *testing.T, tl *testLedger) int64 {
			a, b := mustRead(t, tl.seg(0, 2)), mustRead(t, tl.seg(0, 3))
			mustWrite(t, tl.seg(0, 2), b)
			mustWrite(t, tl.seg(0, 3), a)
			return -1
		}, 0, 2, "holds segment 3", nil},
		{"prev hash changed", func(t *testing.T, tl *testLedger) int64 {
			tl.flip(t, tl.seg(0, 3), 4+1+4+8+8+4, 0x80)
			return -1
		}, 0, 3, "prev hash", nil},
		{"sealed_at of a middle segment changed", func(t *testing.T, tl *testLedger) int64 {
			tl.flip(t, tl.seg(0, 2), 4+1+4+8+8+4+32+8+32+7, 0x01)
			return -1
		}, 0, 3, "prev hash", nil},
		{"sealed_at of the last segment changed", func(t *testing.T, tl *testLedger) int64 {
			tl.flip(t, tl.seg(0, 4), 4+1+4+8+8+4+32+8+32+7, 0x01)
			return -1
		}, 0, 4, "segment hash", nil},
		{"header totals changed", func(t *testing.T, tl *testLedger) int64 {
			// count, then "\x03" code exponent entries(u64) net(i64): last byte of the first net.
			tl.flip(t, tl.seg(0, 2), 109+1+4+1+8+7, 0x01)
			return -1
		}, 0, 2, "totals", nil},
		{"checkpoint signed by another key", func(t *testing.T, tl *testLedger) int64 {
			text, _ := noteText(tl.notes[0][3])
			other := newKey(t, testOrigin)
			msg, err := note.Sign(&note.Note{Text: text}, other.signer)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, tl.checkpoint(0), msg)
			return -1
		}, 0, 4, "signature", nil},
		{"checkpoint deleted", func(t *testing.T, tl *testLedger) int64 {
			os.Remove(tl.checkpoint(3))
			return -1
		}, 3, 2, "no checkpoint", nil},
		{"checkpoint of another partition", func(t *testing.T, tl *testLedger) int64 {
			mustWrite(t, tl.checkpoint(0), tl.notes[3][1])
			return -1
		}, 0, 2, "origin", nil},
		{"checkpoint text edited", func(t *testing.T, tl *testLedger) int64 {
			b := slices.Clone(tl.notes[0][3])
			b[bytes.IndexByte(b, '\n')+1] = '9' // the size line
			mustWrite(t, tl.checkpoint(0), b)
			return -1
		}, 0, 4, "signature", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := buildLedger(t)
			wantIndex := tc.tamper(t, tl)
			_, err := Verify(tl.dir, tl.key.vkey, nil)
			ce := asCorrupt(t, err)
			if ce.Partition != tc.partition || ce.Segment != tc.segment || ce.Index != wantIndex {
				t.Fatalf("Verify error at partition %d segment %d index %d, want %d/%d/%d: %v",
					ce.Partition, ce.Segment, ce.Index, tc.partition, tc.segment, wantIndex, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error %q does not mention %q", err, tc.reason)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
			msg := err.Error()
			for _, want := range []string{"partition", "segment"} {
				if !strings.Contains(msg, want) {
					t.Fatalf("message %q does not name the %s", msg, want)
				}
			}
		})
	}
}

// A checkpoint may lag the segments (sealed, committed, not yet signed),
// including an older checkpoint put back in place of the newest: the
// segments after it verify but are reported unsigned.
func TestVerifyUnsignedTail(t *testing.T) {
	tl := buildLedger(t)
	mustWrite(t, tl.checkpoint(0), tl.notes[0][1])
	rep, err := Verify(tl.dir, tl.key.vkey, nil)
	if err != nil {
		t.Fatalf("Verify with a lagging checkpoint: %v", err)
	}
	if p0 := rep.Partitions[0]; p0.SignedSegments != 2 || p0.Unsigned() != 2 || p0.SignedSize != 7 {
		t.Fatalf("partition 0 report = %+v", p0)
	}
}

func TestVerifyKeys(t *testing.T) {
	tl := buildLedger(t)
	other := newKey(t, testOrigin)
	// A replaced verifier.key does not fool a pinned key ...
	os.Remove(filepath.Join(tl.dir, VerifierKeyFile))
	if err := WriteVerifierKey(tl.dir, other.vkey); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(tl.dir, tl.key.vkey, nil); err != nil {
		t.Fatalf("Verify with the pinned key: %v", err)
	}
	// ... and the unpinned check fails on the signature.
	_, err := Verify(tl.dir, "", nil)
	if ce := asCorrupt(t, err); ce.Partition != 0 || !strings.Contains(ce.Reason, "signature") {
		t.Fatalf("Verify with a foreign verifier.key = %v", err)
	}
	if _, err := Verify(tl.dir, "not a key", nil); err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify with a bad key = %v, want a key error", err)
	}
	if _, err := Verify(t.TempDir(), tl.key.vkey, nil); err == nil {
		t.Fatalf("Verify of an empty directory succeeded")
	}
}
