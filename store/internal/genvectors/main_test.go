package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/store"
)

const repo = "../../.."

// TestVectorsAreCurrent fails when docs/ledger-vectors.json or the generated
// section of docs/ledger-format.md differ from what the code produces now.
func TestVectorsAreCurrent(t *testing.T) {
	v, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(repo, docPath))
	if err != nil {
		t.Fatal(err)
	}
	js, newDoc, err := render(v, string(doc))
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile(filepath.Join(repo, jsonPath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, js) {
		t.Errorf("%s is not what the code generates: run go run ./store/internal/genvectors (after a deliberate format change and a new version byte)", jsonPath)
	}
	if newDoc != string(doc) {
		t.Errorf("the generated section of %s is stale: run go run ./store/internal/genvectors", docPath)
	}
	// The first vector is the field-by-field annotated one in the doc.
	_, annotated, ok := strings.Cut(string(doc), "<!-- vector: entry -->\n```\n")
	if !ok {
		t.Fatal("no annotated vector in the doc")
	}
	annotated, _, _ = strings.Cut(annotated, "```")
	var hexs strings.Builder
	for _, line := range strings.Split(annotated, "\n") {
		h, _, _ := strings.Cut(line, "#")
		hexs.WriteString(strings.TrimSpace(h))
	}
	// The annotated vector is for partition 3 index 17; the generated one for
	// partition 0 index 0. Everything after those 13 bytes is the same.
	if a, g := hexs.String()[26:], v.Entries[0].Hex[26:]; a != g {
		t.Errorf("annotated vector and generated entry 0 differ after partition and index:\n%s\n%s", a, g)
	}
}

// TestVectorsVerifyIndependently checks the vectors with code tally's authors
// did not write, and the entries round-trip through tally's strict decoder.
func TestVectorsVerifyIndependently(t *testing.T) {
	v, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	th := rfc6962.DefaultHasher
	var leaves [][]byte
	for _, e := range v.Entries {
		b, _ := hex.DecodeString(e.Hex)
		dec, err := store.UnmarshalEntry(b)
		if err != nil {
			t.Fatalf("%s does not decode: %v", e.Name, err)
		}
		re, _ := dec.MarshalBinary()
		if !bytes.Equal(re, b) {
			t.Fatalf("%s does not re-encode to the same bytes", e.Name)
		}
		if got := hex.EncodeToString(th.HashLeaf(b)); got != e.LeafHash {
			t.Fatalf("%s leaf hash %s, rfc6962 says %s", e.Name, e.LeafHash, got)
		}
		leaves = append(leaves, b)
	}
	roots := map[uint64][]byte{}
	for _, r := range v.Roots {
		roots[r.Size], _ = hex.DecodeString(r.Root)
	}
	if !bytes.Equal(roots[0], th.EmptyRoot()) {
		t.Fatalf("root of size 0 is not the empty root")
	}
	for _, in := range v.Inclusion {
		var p [][]byte
		for _, h := range in.Proof {
			b, _ := hex.DecodeString(h)
			p = append(p, b)
		}
		if err := proof.VerifyInclusion(th, in.Index, in.Size, th.HashLeaf(leaves[in.Index]), p, roots[in.Size]); err != nil {
			t.Fatalf("inclusion %d in %d: %v", in.Index, in.Size, err)
		}
	}
	for _, c := range v.Consistency {
		var p [][]byte
		for _, h := range c.Proof {
			b, _ := hex.DecodeString(h)
			p = append(p, b)
		}
		if err := proof.VerifyConsistency(th, c.From, c.To, p, roots[c.From], roots[c.To]); err != nil {
			t.Fatalf("consistency %d → %d: %v", c.From, c.To, err)
		}
	}
	// The checkpoint is signed under its origin: a stock note.Open checks
	// it with the partition key (the same public key, named like the origin).
	vf, err := note.NewVerifier(v.PartitionKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(v.Checkpoint.Note), note.VerifierList(vf))
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if n.Sigs[0].Name != lines[0] || !strings.HasPrefix(v.PartitionKey, lines[0]+"+") {
		t.Fatalf("checkpoint of origin %q signed under %q, partition key %q", lines[0], n.Sigs[0].Name, v.PartitionKey)
	}
	size, _ := strconv.ParseUint(lines[1], 10, 64)
	root, _ := base64.StdEncoding.DecodeString(lines[2])
	if size != 4 || !bytes.Equal(root, roots[4]) {
		t.Fatalf("checkpoint says size %d root %x", size, root)
	}
	seg, _ := hex.DecodeString(v.Segment.Hex)
	if _, es, err := store.DecodeSegment(seg); err != nil || len(es) != 4 {
		t.Fatalf("segment: %v", err)
	}
	for _, k := range []string{v.VerifierKey, v.PartitionKey} {
		if _, err := store.VerifyReceipt([]byte(v.Receipt), k, leaves[2]); err != nil {
			t.Fatalf("receipt with %s: %v", k, err)
		}
	}
}
