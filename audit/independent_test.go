package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// This file checks tally's proofs with code tally's authors did not write:
// github.com/transparency-dev/merkle/proof (VerifyInclusion,
// VerifyConsistency with rfc6962.DefaultHasher), golang.org/x/mod/sumdb/tlog
// (CheckRecord, CheckTree) and golang.org/x/mod/sumdb/note (Open). The
// receipt and checkpoint text is parsed here by hand from the C2SP specs, not
// with tally's parsers.

const indepOrigin = "tally.test/indep"

// randomEntry is a valid entry with random amounts, currency and shares.
func randomEntry(rng *rand.Rand, p uint32, n int) store.Entry {
	codes := []string{"EUR", "JPY", "KWD", "USD", "CLF"}
	cur, _ := money.Lookup(codes[rng.IntN(len(codes))])
	m := rng.Int64N(10_000_000)
	types := []txn.Type{txn.Bet, txn.Win, txn.Purchase, txn.Fee}
	tx := txn.Tx{
		ID: fmt.Sprintf("tx-%d-%d", p, n), Type: types[rng.IntN(len(types))], Amount: cur.FromMinor(m), Currency: cur,
		OccurredAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Millisecond),
		Game:       fmt.Sprintf("g%d", rng.IntN(9)), Player: strconv.FormatUint(rng.Uint64(), 16),
	}
	sign := int64(tx.Type.Sign())
	parts := 1 + rng.IntN(4)
	var shares []money.Share
	left := m
	for i := range parts {
		a := left
		if i < parts-1 {
			a = rng.Int64N(left + 1)
		}
		left -= a
		shares = append(shares, money.Share{Party: fmt.Sprintf("party-%d", i), Amount: cur.FromMinor(sign * a)})
	}
	return store.Entry{Partition: p, EdgeNode: "edge", EdgeSeq: uint64(n), Provider: "acme", Tx: tx,
		Rule: "r", Net: cur.FromMinor(sign * m), Shares: shares}
}

// head parses origin, size and root of a checkpoint note per C2SP
// tlog-checkpoint, by hand.
func head(t *testing.T, text string) (string, int64, []byte) {
	t.Helper()
	lines := strings.Split(text, "\n")
	if len(lines) < 4 {
		t.Fatalf("checkpoint text %q has fewer than 3 lines", text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("checkpoint size %q: %v", lines[1], err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		t.Fatalf("checkpoint root %q: %v", lines[2], err)
	}
	return lines[0], size, root
}

// parseReceipt splits a c2sp.org/tlog-proof@v1 by hand.
func parseReceipt(t *testing.T, b []byte) (index uint64, path [][]byte, checkpoint []byte) {
	t.Helper()
	body, cp, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		t.Fatalf("receipt has no empty line")
	}
	lines := strings.Split(string(body), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		t.Fatalf("receipt header %q", lines[0])
	}
	lines = lines[1:]
	if strings.HasPrefix(lines[0], "extra ") {
		lines = lines[1:]
	}
	idx, ok := strings.CutPrefix(lines[0], "index ")
	if !ok {
		t.Fatalf("receipt line %q is not an index", lines[0])
	}
	index, err := strconv.ParseUint(idx, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != 32 {
			t.Fatalf("receipt hash line %q: %v", l, err)
		}
		path = append(path, h)
	}
	return index, path, cp
}

// sizes are the tree sizes a checkpoint is taken at: 1, 2, then every power
// of two ±1 up to 2^11+1, and a few random ones; 0 is checked separately.
func checkpointSizes(rng *rand.Rand) []int {
	set := map[int]bool{1: true, 2: true}
	for k := 1; k <= 11; k++ {
		for _, d := range []int{-1, 0, 1} {
			if s := 1<<k + d; s > 0 {
				set[s] = true
			}
		}
	}
	for range 5 {
		set[1+rng.IntN(3000)] = true
	}
	var out []int
	for s := range set {
		out = append(out, s)
	}
	slicesSort(out)
	return out
}

func slicesSort(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

func TestIndependentVerification(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	skey, vkey, err := note.GenerateKey(nil, indepOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := store.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	const p = 2
	// The checkpoint's signature line is named like its origin (C2SP
	// tlog-checkpoint), so a stock verifier needs the ledger's public key
	// under that name: derived here from the key text, by the note spec.
	origin := fmt.Sprintf("%s/p%d", indepOrigin, p)
	pkey := renameKey(t, vkey, origin)
	if k, err := store.PartitionVerifierKey(vkey, p); err != nil || k != pkey {
		t.Fatalf("store.PartitionVerifierKey = %q, %v; want %q", k, err, pkey)
	}
	verifier, err := note.NewVerifier(pkey)
	if err != nil {
		t.Fatal(err)
	}
	stemVerifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := store.Open(store.Options{Dir: dir, Origin: indepOrigin, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	th := rfc6962.DefaultHasher

	type signedTree struct {
		size int64
		root []byte
		note []byte
	}
	var trees []signedTree
	var leaves [][]byte // entry bytes by index
	for _, target := range checkpointSizes(rng) {
		// Seal up to target in random segment sizes.
		for len(leaves) < target {
			n := min(target-len(leaves), 1+rng.IntN(200))
			es := make([]store.Entry, n)
			for i := range es {
				es[i] = randomEntry(rng, p, len(leaves)+i)
			}
			if _, _, err := l.Seal(p, es, time.Now()); err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				b, err := e.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				leaves = append(leaves, b)
			}
		}
		msg, err := l.Sign(p)
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(msg, note.VerifierList(verifier))
		if err != nil {
			t.Fatalf("note.Open of the checkpoint at size %d: %v", target, err)
		}
		if len(n.Sigs) != 1 || n.Sigs[0].Name != origin {
			t.Fatalf("checkpoint signed as %+v, want the origin %s", n.Sigs, origin)
		}
		if _, err := note.Open(msg, note.VerifierList(stemVerifier)); err == nil {
			t.Fatalf("checkpoint of %s opens with the key named %s", origin, indepOrigin)
		}
		o, size, root := head(t, n.Text)
		if o != origin || size != int64(target) {
			t.Fatalf("checkpoint says %s size %d, want size %d", o, size, target)
		}
		trees = append(trees, signedTree{size, root, msg})

		// Inclusion: first, last and random leaves, through audit.Prove's
		// receipt, with transparency-dev and with sumdb/tlog.
		idx := []int{0, target - 1}
		for range 8 {
			idx = append(idx, rng.IntN(target))
		}
		for _, i := range idx {
			pr, err := Prove(l, p, uint64(i))
			if err != nil {
				t.Fatalf("Prove(%d) at size %d: %v", i, target, err)
			}
			if err := pr.AddVerifierKey(vkey); err != nil || pr.VerifierKey != pkey {
				t.Fatalf("receipt verifier key %q, %v; want %q", pr.VerifierKey, err, pkey)
			}
			ri, path, cp := parseReceipt(t, []byte(pr.Receipt))
			if ri != uint64(i) || !bytes.Equal(cp, msg) {
				t.Fatalf("receipt for %d says index %d, checkpoint equal: %v", i, ri, bytes.Equal(cp, msg))
			}
			if _, err := note.Open(cp, note.VerifierList(verifier)); err != nil {
				t.Fatalf("receipt checkpoint: %v", err)
			}
			entry, err := hex.DecodeString(pr.EntryHex)
			if err != nil || !bytes.Equal(entry, leaves[i]) {
				t.Fatalf("proof entry bytes differ from what was sealed at %d", i)
			}
			leaf := th.HashLeaf(entry)
			if err := proof.VerifyInclusion(th, uint64(i), uint64(size), leaf, path, root); err != nil {
				t.Fatalf("transparency-dev rejects the inclusion of %d in %d: %v", i, size, err)
			}
			tp := make(tlog.RecordProof, len(path))
			for k, h := range path {
				copy(tp[k][:], h)
			}
			var tr tlog.Hash
			copy(tr[:], root)
			if err := tlog.CheckRecord(tp, size, tr, int64(i), tlog.RecordHash(entry)); err != nil {
				t.Fatalf("sumdb/tlog rejects the inclusion of %d in %d: %v", i, size, err)
			}
			// A receipt for a changed entry must fail.
			bad := bytes.Clone(entry)
			bad[len(bad)-1] ^= 1
			if proof.VerifyInclusion(th, uint64(i), uint64(size), th.HashLeaf(bad), path, root) == nil {
				t.Fatalf("inclusion of a changed entry %d verifies", i)
			}
		}
	}
	if len(leaves) < 2000 {
		t.Fatalf("only %d entries", len(leaves))
	}

	// Consistency between every pair of signed trees, and from the empty tree.
	empty := th.EmptyRoot()
	for j, b := range trees {
		if err := proof.VerifyConsistency(th, 0, uint64(b.size), nil, empty, b.root); err != nil {
			t.Fatalf("consistency 0 → %d: %v", b.size, err)
		}
		r0, err := l.RootAt(p, 0)
		if err != nil || !bytes.Equal(r0[:], empty) {
			t.Fatalf("RootAt(0) = %x, %v; want the RFC 6962 empty root", r0, err)
		}
		for _, a := range trees[:j+1] {
			cp, err := Consistency(l, p, uint64(a.size), uint64(b.size))
			if err != nil {
				t.Fatalf("Consistency(%d, %d): %v", a.size, b.size, err)
			}
			path := make([][]byte, len(cp.Proof))
			for k, s := range cp.Proof {
				path[k], _ = base64.StdEncoding.DecodeString(s)
			}
			if err := proof.VerifyConsistency(th, uint64(a.size), uint64(b.size), path, a.root, b.root); err != nil {
				t.Fatalf("transparency-dev rejects consistency %d → %d: %v", a.size, b.size, err)
			}
			tp := make(tlog.TreeProof, len(path))
			for k, h := range path {
				copy(tp[k][:], h)
			}
			var ra, rb tlog.Hash
			copy(ra[:], a.root)
			copy(rb[:], b.root)
			if err := tlog.CheckTree(tp, b.size, rb, a.size, ra); err != nil {
				t.Fatalf("sumdb/tlog rejects consistency %d → %d: %v", a.size, b.size, err)
			}
		}
	}
	// The whole ledger still passes the full structural audit, with the
	// ledger key and with the partition's.
	for _, k := range []string{vkey, pkey} {
		if _, err := store.Verify(dir, k, nil); err != nil {
			t.Fatalf("Verify with %s: %v", k, err)
		}
	}
}

// renameKey returns vkey's Ed25519 public key under name, by the
// signed-note spec: "<name>+<hash>+<base64(0x01 ‖ key)>", the hash computed
// by note.NewEd25519VerifierKey.
func renameKey(t *testing.T, vkey, name string) string {
	t.Helper()
	f := strings.SplitN(vkey, "+", 3)
	raw, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil || len(raw) != 33 || raw[0] != 1 {
		t.Fatalf("verifier key %q is not Ed25519", vkey)
	}
	k, err := note.NewEd25519VerifierKey(name, raw[1:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}
