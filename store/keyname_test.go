package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// sigNames returns the key names on a note's signature lines, read from the
// text as any client would ("— <name> <base64>").
func sigNames(t *testing.T, msg []byte) (origin string, names []string) {
	t.Helper()
	body, sigs, ok := strings.Cut(string(msg), "\n\n")
	if !ok {
		t.Fatalf("not a note: %q", msg)
	}
	origin, _, _ = strings.Cut(body, "\n")
	for _, l := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		f := strings.Fields(strings.TrimPrefix(l, "— "))
		if !strings.HasPrefix(l, "— ") || len(f) != 2 {
			t.Fatalf("signature line %q", l)
		}
		names = append(names, f[0])
	}
	return origin, names
}

// C2SP tlog-checkpoint: the signature's key name is the checkpoint origin.
// A stock note.Open checks it with the partition key derived from the one
// ledger key, and not with the ledger key itself (its name differs).
func TestCheckpointKeyNameIsOrigin(t *testing.T) {
	tl := buildLedger(t)
	stem, err := note.NewVerifier(tl.key.vkey)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []uint32{0, 3} {
		msg := mustRead(t, tl.checkpoint(p))
		origin, names := sigNames(t, msg)
		if origin != partitionOrigin(testOrigin, p) || len(names) != 1 || names[0] != origin {
			t.Fatalf("partition %d: origin %q signed by %q, want the origin", p, origin, names)
		}
		pkey, err := PartitionVerifierKey(tl.key.vkey, p)
		if err != nil {
			t.Fatal(err)
		}
		if name, _, _ := strings.Cut(pkey, "+"); name != origin {
			t.Fatalf("partition %d key is named %q", p, name)
		}
		again, err := PartitionVerifierKey(pkey, p)
		if err != nil || again != pkey {
			t.Fatalf("PartitionVerifierKey of a partition key = %q, %v", again, err)
		}
		pv, _ := note.NewVerifier(pkey)
		n, err := note.Open(msg, note.VerifierList(pv))
		if err != nil || n.Sigs[0].Name != origin {
			t.Fatalf("partition %d: note.Open with the partition key: %v", p, err)
		}
		var un *note.UnverifiedNoteError
		if _, err := note.Open(msg, note.VerifierList(stem)); !errors.As(err, &un) {
			t.Fatalf("partition %d: note.Open with the stem key = %v, want unverified", p, err)
		}
		for _, k := range []string{tl.key.vkey, pkey} {
			_, signer, err := OpenCheckpoint(msg, k)
			if err != nil || signer != origin {
				t.Fatalf("partition %d: OpenCheckpoint with %s = %q, %v", p, k, signer, err)
			}
			ck, err := CheckpointVerifierKey(msg, k)
			if err != nil || ck != pkey {
				t.Fatalf("partition %d: CheckpointVerifierKey = %q, %v; want %q", p, ck, err, pkey)
			}
		}
	}
}

func TestVerifyStemAndPartitionKeys(t *testing.T) {
	tl := buildLedger(t)
	if _, err := Verify(tl.dir, tl.key.vkey, nil); err != nil {
		t.Fatalf("Verify with the ledger key: %v", err)
	}
	if _, err := Verify(tl.dir, "", nil); err != nil {
		t.Fatalf("Verify with verifier.key: %v", err)
	}
	// A partition key vouches for its partition only: partition 0's key
	// passes partition 0 and fails partition 3 as a different key.
	p0, _ := PartitionVerifierKey(tl.key.vkey, 0)
	rep, err := Verify(tl.dir, p0, nil)
	var un *note.UnverifiedNoteError
	if ce := asCorrupt(t, err); ce.Partition != 3 || !errors.As(err, &un) || len(rep.Partitions) != 2 || rep.Partitions[0].SignedSegments != 4 {
		t.Fatalf("Verify with partition 0's key = %v", err)
	}
	os.RemoveAll(partitionDir(tl.dir, 3))
	if _, err := Verify(tl.dir, p0, nil); err != nil {
		t.Fatalf("Verify of partition 0 alone with its key: %v", err)
	}
	// The same public key under another name is another key.
	renamed, err := VerifierKeyNamed(tl.key.vkey, "someone.else/ledger")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{renamed, newKey(t, testOrigin).vkey} {
		_, err := Verify(tl.dir, k, nil)
		if ce := asCorrupt(t, err); ce.Partition != 0 || !errors.As(err, &un) || !strings.Contains(ce.Reason, "signature does not verify") {
			t.Fatalf("Verify with %s = %v, want a different key", k, err)
		}
	}
}

// A ledger written before checkpoints were signed under their origin (one
// key name, the stem, for every partition) still verifies, and a node that
// takes such a partition over (the same key file, a copy of the ledger)
// signs its next checkpoints under the origin: the old checkpoints, kept
// by an auditor, and the new ones verify with the one ledger key.
func TestLegacyStemSignedLedger(t *testing.T) {
	dir := t.TempDir()
	skey, vkey, err := GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	legacy, _ := note.NewSigner(skey)
	g := newGen(t)
	l, err := Open(Options{Dir: dir, Origin: testOrigin, Signer: legacy})
	if err != nil {
		t.Fatal(err)
	}
	seal(t, l, 0, g.entries(t, 0, 3))
	seal(t, l, 2, g.entries(t, 2, 2))
	old := [][]byte{sign(t, l, 0), sign(t, l, 2)}
	l.Close()
	if err := WriteVerifierKey(dir, vkey); err != nil {
		t.Fatal(err)
	}
	for i, msg := range old {
		if _, names := sigNames(t, msg); names[0] != testOrigin {
			t.Fatalf("legacy checkpoint %d signed by %q", i, names)
		}
	}
	p0, _ := PartitionVerifierKey(vkey, 0)
	for _, k := range []string{vkey, ""} {
		if _, err := Verify(dir, k, nil); err != nil {
			t.Fatalf("Verify of a stem-signed ledger with %q: %v", k, err)
		}
	}
	if _, signer, err := OpenCheckpoint(old[0], p0); err != nil || signer != testOrigin {
		t.Fatalf("legacy checkpoint with the partition key: %q, %v", signer, err)
	}
	if k, err := CheckpointVerifierKey(old[0], p0); err != nil || k != vkey {
		t.Fatalf("CheckpointVerifierKey of a legacy checkpoint = %q, %v; want the stem key", k, err)
	}

	// Takeover: another node, the same key file, the ledger rebuilt.
	keyPath := filepath.Join(t.TempDir(), "ledger.key")
	if err := os.WriteFile(keyPath, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared, vkey2, err := LoadOrCreateKey(keyPath, testOrigin)
	if err != nil || vkey2 != vkey {
		t.Fatalf("LoadOrCreateKey = %s, %v", vkey2, err)
	}
	l2, err := Open(Options{Dir: dir, Origin: testOrigin, Signer: shared})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got := sign(t, l2, 0); string(got) != string(old[0]) {
		t.Fatalf("signing an unchanged tree re-signed it")
	}
	seal(t, l2, 0, g.entries(t, 0, 4))
	now := sign(t, l2, 0)
	if origin, names := sigNames(t, now); names[0] != origin {
		t.Fatalf("checkpoint after takeover signed by %q, origin %q", names, origin)
	}
	if _, err := VerifyWith(dir, VerifyOptions{Key: vkey, Trusted: old}); err != nil {
		t.Fatalf("Verify after takeover with old checkpoints trusted: %v", err)
	}
	if _, err := VerifyWith(dir, VerifyOptions{Key: p0, Trusted: old[:1]}); err == nil || !strings.Contains(err.Error(), "partition 2") {
		// partition 2 is another partition's: p0's key cannot vouch for it
		t.Fatalf("Verify with partition 0's key of a two-partition ledger = %v", err)
	}

	// A legacy signature under a name that is not the stem is refused.
	other, _, err := GenerateKey("someone.else/ledger")
	if err != nil {
		t.Fatal(err)
	}
	os2, _ := note.NewSigner(other)
	l3, err := Open(Options{Dir: t.TempDir(), Origin: testOrigin, Signer: os2})
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	seal(t, l3, 0, g.entries(t, 0, 1))
	msg := sign(t, l3, 0)
	ovk, _ := VerifierKey(other)
	if _, _, err := OpenCheckpoint(msg, ovk); !errors.Is(err, ErrMalformed) {
		t.Fatalf("checkpoint of %s/p0 signed as someone.else/ledger = %v, want refused", testOrigin, err)
	}
}

// One partition's checkpoint signed under another partition's name does
// not pass, with that partition's key or the ledger key.
func TestCheckpointSignedUnderAnotherPartition(t *testing.T) {
	tl := buildLedger(t)
	ls := tl.key.signer.(*LogSigner)
	s3, err := ls.Named(partitionOrigin(testOrigin, 3))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := ParseCheckpointNote(mustRead(t, tl.checkpoint(0)))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: ck.Body()}, s3)
	if err != nil {
		t.Fatal(err)
	}
	p3, _ := PartitionVerifierKey(tl.key.vkey, 3)
	if _, _, err := OpenCheckpoint(msg, p3); !errors.Is(err, ErrMalformed) {
		t.Fatalf("with partition 3's key = %v, want refused", err)
	}
	var un *note.UnverifiedNoteError
	if _, _, err := OpenCheckpoint(msg, tl.key.vkey); !errors.As(err, &un) {
		t.Fatalf("with the ledger key = %v, want unverified", err)
	}
	if _, err := Open(Options{Dir: t.TempDir(), Origin: "other.example/ledger", Signer: ls}); err == nil {
		t.Fatalf("Open with a key named unlike the origin succeeded")
	}
}

// A partition changes hands: node B holds a copy of node A's key file,
// rebuilds the partition from A's segments (as catch-up from TALLY_LEDGER
// does, through Append) and goes on. A's checkpoint, kept by an auditor,
// and a receipt A issued verify with the same keys as B's; a node with its
// own key instead of the shared one signs checkpoints nobody accepts.
func TestTakeoverSharedKey(t *testing.T) {
	g := newGen(t)
	keyA := filepath.Join(t.TempDir(), "ledger.key")
	sa, vkey, err := LoadOrCreateKey(keyA, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	dirA := t.TempDir()
	la, err := Open(Options{Dir: dirA, Origin: testOrigin, Signer: sa})
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	const p = 1
	var segs [][]byte
	for _, n := range []int{3, 4} {
		_, b, err := la.Seal(p, g.entries(t, p, n), testTime)
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, b)
	}
	keptA := sign(t, la, p)
	path, err := la.InclusionProof(p, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	e, _, _ := la.Entry(p, 2)
	raw, _ := e.MarshalBinary()
	receiptA := Receipt{Index: 2, Proof: path, Checkpoint: keptA}.Marshal()

	takeOver := func(keyPath string) (string, []byte) {
		s, _, err := LoadOrCreateKey(keyPath, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		l, err := Open(Options{Dir: dir, Origin: testOrigin, Signer: s})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for _, b := range segs {
			if _, _, err := l.Append(p, b); err != nil {
				t.Fatal(err)
			}
		}
		seal(t, l, p, g.entries(t, p, 5))
		return dir, sign(t, l, p)
	}
	// The operator copied the key file to node B.
	keyB := filepath.Join(t.TempDir(), "ledger.key")
	if err := os.WriteFile(keyB, mustRead(t, keyA), 0o600); err != nil {
		t.Fatal(err)
	}
	dirB, noteB := takeOver(keyB)
	pkey, _ := PartitionVerifierKey(vkey, p)
	for _, k := range []string{vkey, pkey} {
		if _, err := VerifyWith(dirB, VerifyOptions{Key: k, Trusted: [][]byte{keptA}}); err != nil {
			t.Fatalf("Verify after the takeover with %s and A's checkpoint trusted: %v", k, err)
		}
		if _, err := VerifyReceipt(receiptA, k, raw); err != nil {
			t.Fatalf("A's receipt after the takeover with %s: %v", k, err)
		}
	}
	ka, _ := CheckpointVerifierKey(keptA, vkey)
	kb, _ := CheckpointVerifierKey(noteB, vkey)
	if ka != pkey || kb != pkey {
		t.Fatalf("stock-verifier keys: A %q, B %q, want %q for both", ka, kb, pkey)
	}

	// Node C created its own key: its checkpoints are another key's.
	dirC, _ := takeOver(filepath.Join(t.TempDir(), "ledger.key"))
	var un *note.UnverifiedNoteError
	if _, err := Verify(dirC, vkey, nil); !errors.As(err, &un) {
		t.Fatalf("Verify of a takeover with a new key = %v, want signed by a different key", err)
	}
}
