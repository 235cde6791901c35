// Command genvectors writes the ledger format's test vectors: the
// machine-readable docs/ledger-vectors.json and the generated section of
// docs/ledger-format.md (between the "BEGIN GENERATED VECTORS" and "END
// GENERATED VECTORS" markers). Everything is deterministic: fixed entries,
// fixed times and a fixed, published test signing key (never use it for a
// real ledger). Run it from the repository root after a deliberate format
// change (which also needs a new version byte):
//
//	go run ./store/internal/genvectors
//
// Its test fails when the committed files differ from what it generates, so
// the vectors always describe the code.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/store/merkle"
	"github.com/tally-mesh/tally/txn"
)

// Paths relative to the repository root.
const (
	jsonPath = "docs/ledger-vectors.json"
	docPath  = "docs/ledger-format.md"
	begin    = "<!-- BEGIN GENERATED VECTORS (go run ./store/internal/genvectors) -->\n"
	end      = "<!-- END GENERATED VECTORS -->\n"
)

// Test key: Ed25519 seed 0x00..0x1f, named testOrigin. Published on purpose.
const testOrigin = "vectors.tally.example/ledger"

func testSeed() []byte {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = byte(i)
	}
	return s
}

// testKey returns the signer and verifier key of the published test key, in
// golang.org/x/mod/sumdb/note encoding.
func testKey() (note.Signer, string, string, error) {
	priv := ed25519.NewKeyFromSeed(testSeed())
	vkey, err := note.NewEd25519VerifierKey(testOrigin, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, "", "", err
	}
	parts := strings.Split(vkey, "+") // name+hash+key
	skey := "PRIVATE+KEY+" + testOrigin + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, testSeed()...))
	s, err := store.NewLogSigner(skey) // signs partition p as <origin>/p<p>
	if err != nil {
		return nil, "", "", err
	}
	return s, skey, vkey, nil
}

// Vectors is the content of docs/ledger-vectors.json.
type Vectors struct {
	Comment     string `json:"comment"`
	EntryFormat byte   `json:"entry_version"`
	SegFormat   byte   `json:"segment_version"`
	SigningKey  string `json:"test_signing_key"`
	VerifierKey string `json:"test_verifier_key"`
	// PartitionKey is partition 0's verifier key: the same public key named
	// like the checkpoint's origin, which a stock C2SP verifier needs.
	PartitionKey string          `json:"test_partition_0_verifier_key"`
	Entries      []EntryVector   `json:"entries"`
	Segment      SegmentVector   `json:"segment"`
	Roots        []RootVector    `json:"roots"`
	Inclusion    []InclVector    `json:"inclusion"`
	Consistency  []ConsVector    `json:"consistency"`
	Checkpoint   CheckpointBlock `json:"checkpoint"`
	Receipt      string          `json:"receipt"`
}

// EntryVector is one entry: its fields for people, its bytes, its leaf hash.
type EntryVector struct {
	Name     string `json:"name"`
	About    string `json:"about"`
	Fields   any    `json:"fields"`
	Hex      string `json:"hex"`
	LeafHash string `json:"leaf_hash"` // hex of SHA-256(0x00 ‖ bytes)
}

// SegmentVector is a segment file of the entries above.
type SegmentVector struct {
	Hex      string `json:"hex"`
	SHA256   string `json:"sha256"`
	Number   uint64 `json:"number"`
	TreeSize uint64 `json:"tree_size"`
	Root     string `json:"root"`
	SealedAt string `json:"sealed_at"`
}

// RootVector is the tree root over the first Size entries.
type RootVector struct {
	Size uint64 `json:"size"`
	Root string `json:"root"` // hex
}

// InclVector is an inclusion proof of Index in the tree of Size.
type InclVector struct {
	Index uint64   `json:"index"`
	Size  uint64   `json:"size"`
	Proof []string `json:"proof"` // hex, leaf's sibling first
}

// ConsVector is a consistency proof from From to To.
type ConsVector struct {
	From  uint64   `json:"from"`
	To    uint64   `json:"to"`
	Proof []string `json:"proof"` // hex
}

// CheckpointBlock is the signed checkpoint of the segment.
type CheckpointBlock struct {
	Body string `json:"body"`
	Note string `json:"note"`
}

func cur(code string) money.Currency {
	c, ok := money.Lookup(code)
	if !ok {
		panic("unknown currency " + code)
	}
	return c
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// entries are the vector entries, for partition 0 indexes 0..3.
func entries() []struct {
	name, about string
	e           store.Entry
} {
	var rs [32]byte
	for i := range rs {
		rs[i] = byte(i)
	}
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	eur, jpy, kwd, clf := cur("EUR"), cur("JPY"), cur("KWD"), cur("CLF")
	return []struct {
		name, about string
		e           store.Entry
	}{
		{"bet-eur", "a 10.00 EUR bet with every field set, split 7.00 / 2.50 / 0.50", store.Entry{
			EdgeNode: "edge-1", EdgeSeq: 42, Provider: "acme",
			Tx: txn.Tx{ID: "p-1001", Type: txn.Bet, Amount: d("10.00"), Currency: eur, OccurredAt: t0, Round: "R1", Seq: 17,
				Game: "book-of-x", Category: "slot", Jurisdiction: "MT", Brand: "main", Affiliate: "aff-7", Player: "9f2c",
				Meta: map[string]string{"campaign": "nov", "ab": "x"}},
			RuleSet: rs, Rule: "slots-70-30", Net: d("10.00"),
			Shares:    []money.Share{{Party: "acme", Amount: d("7.00")}, {Party: "platform", Amount: d("2.50")}, {Party: "aff-7", Amount: d("0.50")}},
			SettledAt: t0.Add(time.Second + 500),
		}},
		{"win-jpy", "a 1500 JPY win (exponent 0): negative net and shares, optional fields empty", store.Entry{
			EdgeNode: "edge-2", EdgeSeq: 7, Provider: "studio-9",
			Tx:      txn.Tx{ID: "w-77", Type: txn.Win, Amount: d("1500"), Currency: jpy, OccurredAt: t0.Add(time.Minute)},
			RuleSet: rs, Rule: "default", Net: d("-1500"),
			Shares:    []money.Share{{Party: "studio-9", Amount: d("-180")}, {Party: "operator", Amount: d("-1320")}},
			SettledAt: t0.Add(time.Minute + time.Second),
		}},
		{"rollback-kwd", "a partial rollback of 1.001 KWD (exponent 3) naming its parent; no rule, shares from the parent's", store.Entry{
			EdgeNode: "edge-1", EdgeSeq: 43, Provider: "acme",
			Tx: txn.Tx{ID: "rb-1", Type: txn.Rollback, Amount: d("1.001"), Currency: kwd, OccurredAt: t0.Add(2 * time.Minute),
				Parent: "p-0999", Round: "R1"},
			RuleSet: rs, Rule: "", Net: d("-1.001"),
			Shares:    []money.Share{{Party: "acme", Amount: d("-0.701")}, {Party: "platform", Amount: d("-0.300")}},
			SettledAt: t0.Add(2*time.Minute + time.Second),
		}},
		{"fee-clf-unicode", "a 0.0001 CLF fee (exponent 4) with UTF-8 text and one share", store.Entry{
			EdgeNode: "edge-3", EdgeSeq: 1 << 40, Provider: "tienda",
			Tx: txn.Tx{ID: "fee/ñ-1", Type: txn.Fee, Amount: d("0.0001"), Currency: clf, OccurredAt: t0.Add(3 * time.Minute),
				Game: "pañuelo", Meta: map[string]string{"nota": "año — 2026"}},
			RuleSet: rs, Rule: "fees", Net: d("-0.0001"),
			Shares:    []money.Share{{Party: "operator", Amount: d("-0.0001")}},
			SettledAt: t0.Add(3*time.Minute + time.Second),
		}},
	}
}

func hexs(hs [][32]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h[:])
	}
	return out
}

// generate builds the vectors by running the real code: Entry.MarshalBinary,
// Ledger.Seal and Sign, the proofs, the receipt.
func generate() (Vectors, error) {
	signer, skey, vkey, err := testKey()
	if err != nil {
		return Vectors{}, err
	}
	v := Vectors{
		Comment:     "tally ledger format test vectors, generated by go run ./store/internal/genvectors; the signing key is a published test key",
		EntryFormat: store.EntryVersion, SegFormat: store.SegmentVersion, SigningKey: skey, VerifierKey: vkey,
	}
	if v.PartitionKey, err = store.PartitionVerifierKey(vkey, 0); err != nil {
		return v, err
	}
	dir, err := os.MkdirTemp("", "genvectors-")
	if err != nil {
		return v, err
	}
	defer os.RemoveAll(dir)
	l, err := store.Open(store.Options{Dir: dir, Origin: testOrigin, Signer: signer})
	if err != nil {
		return v, err
	}
	defer l.Close()
	var es []store.Entry
	for i, x := range entries() {
		e := x.e
		e.Partition, e.Index = 0, uint64(i)
		b, err := e.MarshalBinary()
		if err != nil {
			return v, fmt.Errorf("%s: %w", x.name, err)
		}
		if err := e.Validate(); err != nil {
			return v, fmt.Errorf("%s: %w", x.name, err)
		}
		lh := merkle.HashLeaf(b)
		fields, _ := json.Marshal(viewOf(e))
		v.Entries = append(v.Entries, EntryVector{Name: x.name, About: x.about, Fields: json.RawMessage(fields), Hex: hex.EncodeToString(b), LeafHash: hex.EncodeToString(lh[:])})
		es = append(es, e)
	}
	sealedAt := time.Date(2026, 11, 1, 10, 5, 0, 0, time.UTC)
	h, seg, err := l.Seal(0, es, sealedAt)
	if err != nil {
		return v, err
	}
	sum := sha256.Sum256(seg)
	v.Segment = SegmentVector{Hex: hex.EncodeToString(seg), SHA256: hex.EncodeToString(sum[:]), Number: h.Number,
		TreeSize: h.TreeSize, Root: hex.EncodeToString(h.Root[:]), SealedAt: sealedAt.Format(time.RFC3339Nano)}
	size := uint64(len(es))
	for n := uint64(0); n <= size; n++ {
		r, err := l.RootAt(0, n)
		if err != nil {
			return v, err
		}
		v.Roots = append(v.Roots, RootVector{Size: n, Root: hex.EncodeToString(r[:])})
		for i := uint64(0); i < n; i++ {
			p, err := l.InclusionProof(0, i, n)
			if err != nil {
				return v, err
			}
			v.Inclusion = append(v.Inclusion, InclVector{Index: i, Size: n, Proof: hexs(p)})
		}
	}
	for m := uint64(1); m < size; m++ {
		p, err := l.ConsistencyProof(0, m, size)
		if err != nil {
			return v, err
		}
		v.Consistency = append(v.Consistency, ConsVector{From: m, To: size, Proof: hexs(p)})
	}
	msg, err := l.Sign(0)
	if err != nil {
		return v, err
	}
	body, _, _ := bytes.Cut(msg, []byte("\n\n"))
	v.Checkpoint = CheckpointBlock{Body: string(body) + "\n", Note: string(msg)}
	p, err := l.InclusionProof(0, 2, size)
	if err != nil {
		return v, err
	}
	v.Receipt = string(store.Receipt{Index: 2, Proof: p, Checkpoint: msg}.Marshal())
	return v, nil
}

// viewOf is a plain rendering of an entry's fields for the JSON file.
func viewOf(e store.Entry) map[string]any {
	c := e.Tx.Currency
	shares := []map[string]string{}
	for _, s := range e.Shares {
		shares = append(shares, map[string]string{"party": s.Party, "amount": c.Format(s.Amount)})
	}
	return map[string]any{
		"partition": e.Partition, "index": e.Index, "edge_node": e.EdgeNode, "edge_seq": e.EdgeSeq, "provider": e.Provider,
		"id": e.Tx.ID, "type": e.Tx.Type, "currency": c.Code, "exponent": c.Exponent, "amount": c.Format(e.Tx.Amount),
		"occurred_at": e.Tx.OccurredAt.Format(time.RFC3339Nano), "round": e.Tx.Round, "parent": e.Tx.Parent, "seq": e.Tx.Seq,
		"game": e.Tx.Game, "category": e.Tx.Category, "jurisdiction": e.Tx.Jurisdiction, "brand": e.Tx.Brand,
		"affiliate": e.Tx.Affiliate, "player": e.Tx.Player, "meta": e.Tx.Meta, "rule_set": hex.EncodeToString(e.RuleSet[:]),
		"rule": e.Rule, "net": c.Format(e.Net), "shares": shares, "settled_at": e.SettledAt.Format(time.RFC3339Nano),
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString(s + "\n")
	return b.String()
}

// docSection renders the vectors for docs/ledger-format.md.
func docSection(v Vectors) string {
	var b strings.Builder
	b.WriteString(begin)
	b.WriteString("\nGenerated from the code; `docs/ledger-vectors.json` holds the same values (and every\ninclusion and consistency proof of the tree below) for programs. The signing key is a\npublished test key (Ed25519 seed 00 01 … 1f):\n\n")
	fmt.Fprintf(&b, "```\nverifier key:             %s\npartition 0 verifier key: %s\n```\n\n", v.VerifierKey, v.PartitionKey)
	for i, e := range v.Entries {
		fmt.Fprintf(&b, "**Entry %d, `%s`**: %s. %d bytes:\n\n```\n%s```\n\nleaf hash `%s`\n\n", i, e.Name, e.About, len(e.Hex)/2, wrap(e.Hex, 64), e.LeafHash)
	}
	fmt.Fprintf(&b, "**Segment 1 of partition 0** holding entries 0–3, sealed at %s, %d bytes, SHA-256 `%s`:\n\n```\n%s```\n\n", v.Segment.SealedAt, len(v.Segment.Hex)/2, v.Segment.SHA256, wrap(v.Segment.Hex, 64))
	b.WriteString("**Roots** of the tree over the first n entries:\n\n| n | root |\n|---|---|\n")
	for _, r := range v.Roots {
		fmt.Fprintf(&b, "| %d | `%s` |\n", r.Size, r.Root)
	}
	b.WriteString("\n**Checkpoint** after segment 1 (signed note):\n\n```\n" + v.Checkpoint.Note + "```\n\n")
	b.WriteString("**Receipt** (C2SP tlog-proof) of entry 2:\n\n```\n" + v.Receipt + "```\n\n")
	b.WriteString(end)
	return b.String()
}

// render returns the JSON file and the doc with its generated section
// replaced (or appended if the markers are missing).
func render(v Vectors, doc string) ([]byte, string, error) {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, "", err
	}
	sec := docSection(v)
	if i := strings.Index(doc, begin); i >= 0 {
		j := strings.Index(doc[i:], end)
		if j < 0 {
			return nil, "", fmt.Errorf("%s has %q without %q", docPath, begin, end)
		}
		doc = doc[:i] + sec + doc[i+j+len(end):]
	} else {
		doc += "\n" + sec
	}
	return append(js, '\n'), doc, nil
}

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	v, err := generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "genvectors:", err)
		os.Exit(1)
	}
	doc, err := os.ReadFile(filepath.Join(*root, docPath))
	if err != nil {
		fmt.Fprintln(os.Stderr, "genvectors:", err)
		os.Exit(1)
	}
	js, newDoc, err := render(v, string(doc))
	if err == nil {
		err = os.WriteFile(filepath.Join(*root, jsonPath), js, 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(*root, docPath), []byte(newDoc), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genvectors:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s and the generated section of %s\n", jsonPath, docPath)
}
