package store

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// docBlock returns the text after marker in docs/ledger-format.md, up to the
// end of the fenced block or inline code that follows it.
func docBlock(t *testing.T, marker string) string {
	t.Helper()
	doc := string(mustRead(t, filepath.Join("..", "docs", "ledger-format.md")))
	_, rest, ok := strings.Cut(doc, marker+"\n")
	if !ok {
		t.Fatalf("docs/ledger-format.md has no %q", marker)
	}
	if strings.HasPrefix(rest, "```\n") {
		block, _, ok := strings.Cut(rest[4:], "```")
		if !ok {
			t.Fatalf("unterminated block after %q", marker)
		}
		return block
	}
	line, _, _ := strings.Cut(rest, "\n")
	return strings.Trim(line, "`")
}

// TestFormatDocVector checks the documented test vector against the code.
func TestFormatDocVector(t *testing.T) {
	var want []byte
	for _, line := range strings.Split(docBlock(t, "<!-- vector: entry -->"), "\n") {
		h, _, _ := strings.Cut(line, "#")
		b, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil {
			t.Fatalf("bad hex in the doc vector line %q: %v", line, err)
		}
		want = append(want, b...)
	}
	e := sampleEntry(t)
	got, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("sample entry encodes to\n%x\nthe doc says\n%x", got, want)
	}
	dec, err := UnmarshalEntry(want)
	if err != nil || !equalEntry(dec, e) {
		t.Fatalf("the doc vector decodes to %+v, %v", dec, err)
	}
	leaf := e.LeafHash()
	if doc := docBlock(t, "<!-- vector: leaf -->"); doc != hex.EncodeToString(leaf[:]) {
		t.Fatalf("leaf hash is %x, the doc says %s", leaf, doc)
	}
}

// TestSegmentGolden pins the bytes of a whole segment: header, totals and
// entries. Run with -update after a deliberate format change (and a new
// version byte).
func TestSegmentGolden(t *testing.T) {
	e1 := sampleEntry(t)
	e1.Index = 0
	e2 := sampleEntry(t)
	e2.Index, e2.Tx.ID = 1, "p-1002"
	e2.Tx.Currency = mustCur(t, "JPY")
	e2.Tx.Amount, e2.Net = e2.Tx.Currency.FromMinor(15), e2.Tx.Currency.FromMinor(15)
	e2.Shares = e2.Shares[:2]
	e2.Shares[0].Amount, e2.Shares[1].Amount = e2.Tx.Currency.FromMinor(12), e2.Tx.Currency.FromMinor(3)
	e1.Partition, e2.Partition = 0, 0

	l := openLedger(t, t.TempDir(), newKey(t, testOrigin))
	_, seg, err := l.Seal(0, []Entry{e1, e2}, time.Date(2026, 11, 1, 10, 0, 2, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "segment-v1.hex")
	if *update {
		if err := os.WriteFile(path, []byte(hex.EncodeToString(seg)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := hex.DecodeString(strings.TrimSpace(string(mustRead(t, path))))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seg, want) {
		t.Fatalf("segment bytes changed:\n got %x\nwant %x", seg, want)
	}
}
