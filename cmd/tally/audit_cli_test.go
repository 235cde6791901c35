package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// TestAuditorPath is docs/audit.md as a test: run the demo, export it, verify
// the export with the pinned key, prove a transaction, check the receipt with
// `tally verify-proof` and with independent code, prove consistency from a
// kept checkpoint, and see verify name a change made to the export.
func TestAuditorPath(t *testing.T) {
	tmp := t.TempDir()
	data, exp := filepath.Join(tmp, "demo"), filepath.Join(tmp, "export")
	if out, err := runCLI(t, "demo", "--duration", "2s", "--data", data, "--rate", "300", "--seed", "11"); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	out, err := runCLI(t, "keygen", "--show", filepath.Join(data, "keys", "ledger.key"))
	if err != nil {
		t.Fatalf("keygen --show: %v\n%s", err, out)
	}
	key := strings.TrimSpace(out)
	if _, err := note.NewVerifier(key); err != nil {
		t.Fatalf("keygen --show printed %q: %v", key, err)
	}
	// Keep a checkpoint, as an auditor would at a first audit.
	kept := filepath.Join(tmp, "kept.checkpoint")
	ck, err := os.ReadFile(filepath.Join(data, "ledger", "p001", "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(kept, ck, 0o644)

	if out, err = runCLI(t, "export", "--data", data, "--out", exp); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	out, err = runCLI(t, "verify", exp, "--verifier-key", key, "--trusted", kept)
	if err != nil {
		t.Fatalf("verify export: %v\n%s", err, out)
	}
	for _, want := range []string{"export (created", "splits: ", "reversals recomputed", "balances: the settle index's balances (" + filepath.Join(exp, "balances.json"), "trusted checkpoints: 1", "OK: "} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`OK: (\d+) entries`).FindStringSubmatch(out)
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Fatalf("verify checked no entries:\n%s", out)
	}

	// Pick a transaction from the export and prove it.
	out, err = runCLI(t, "entries", "--data", exp, "--partition", "1", "--from", "3", "--count", "1")
	if err != nil {
		t.Fatalf("entries: %v\n%s", err, out)
	}
	var line entryLine
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &line); err != nil {
		t.Fatalf("entries output %q: %v", out, err)
	}
	base := filepath.Join(tmp, "tx")
	var so, se bytes.Buffer
	if err := cmdProve([]string{"--data", exp, "--provider", line.Entry.Provider, "--id", line.Entry.ID, "--out", base}, &so, &se); err != nil {
		t.Fatalf("prove: %v\n%s", err, se.String())
	}
	var pr struct {
		Index       uint64
		TreeSize    uint64 `json:"tree_size"`
		Root        string
		Proof       []string
		Receipt     string
		VerifierKey string `json:"verifier_key"`
	}
	if err := json.Unmarshal(so.Bytes(), &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Index != 3 {
		t.Fatalf("proof of the entry at index 3 says index %d", pr.Index)
	}
	// prove names partition 1's verifier key: the ledger key named like the
	// checkpoint origin, as keygen --show --partition 1 prints it.
	pkey, err := runCLI(t, "keygen", "--show", filepath.Join(data, "keys", "ledger.key"), "--partition", "1")
	if pkey = strings.TrimSpace(pkey); err != nil || pr.VerifierKey != pkey || !strings.HasPrefix(pkey, "tally.demo/ledger/p1+") {
		t.Fatalf("prove names key %q, keygen --show --partition 1 says %q (%v)", pr.VerifierKey, pkey, err)
	}
	if !strings.Contains(se.String(), "partition 1 verifier key (check the receipt with it): "+pkey) {
		t.Fatalf("prove did not print the partition's key:\n%s", se.String())
	}
	// The data directory (through the settle index) gives the same receipt.
	so.Reset()
	if err := cmdProve([]string{"--data", data, "--provider", line.Entry.Provider, "--id", line.Entry.ID}, &so, &se); err != nil || !strings.Contains(so.String(), strconv.Quote(pr.Receipt)[1:20]) {
		t.Fatalf("prove from the data dir: %v", err)
	}
	out, err = runCLI(t, "verify-proof", base+".tlog-proof", "--verifier-key", key, "--entry", base+".entry")
	if err != nil || !strings.Contains(out, "OK: leaf hash") || !strings.Contains(out, line.Entry.ID) || !strings.Contains(out, "signed by tally.demo/ledger/p1") {
		t.Fatalf("verify-proof: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "verify-proof", base+".tlog-proof", "--verifier-key", pkey, "--entry", base+".entry"); err != nil || !strings.Contains(out, "OK: leaf hash") {
		t.Fatalf("verify-proof with the partition key: %v\n%s", err, out)
	}
	// Independent check of the same receipt: note.Open with the partition's
	// key, then transparency-dev.
	receipt, _ := os.ReadFile(base + ".tlog-proof")
	entry, _ := os.ReadFile(base + ".entry")
	body, cp, _ := bytes.Cut(receipt, []byte("\n\n"))
	v, _ := note.NewVerifier(pkey)
	n, err := note.Open(cp, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open of the receipt's checkpoint: %v", err)
	}
	cl := strings.Split(n.Text, "\n")
	size, _ := strconv.ParseUint(cl[1], 10, 64)
	root, _ := base64.StdEncoding.DecodeString(cl[2])
	rl := strings.Split(string(body), "\n")
	if rl[0] != "c2sp.org/tlog-proof@v1" || rl[1] != "index 3" {
		t.Fatalf("receipt opens with %q", rl[:2])
	}
	var path [][]byte
	for _, l := range rl[2:] {
		h, _ := base64.StdEncoding.DecodeString(l)
		path = append(path, h)
	}
	th := rfc6962.DefaultHasher
	if err := proof.VerifyInclusion(th, 3, size, th.HashLeaf(entry), path, root); err != nil {
		t.Fatalf("transparency-dev rejects the receipt: %v", err)
	}
	// A changed entry fails verify-proof.
	entry[len(entry)-1] ^= 1
	os.WriteFile(base+".entry", entry, 0o644)
	if out, err = runCLI(t, "verify-proof", base+".tlog-proof", "--verifier-key", key, "--entry", base+".entry"); err == nil || !strings.Contains(out, "FAILED") {
		t.Fatalf("verify-proof of a changed entry: %v\n%s", err, out)
	}

	// Consistency from the kept checkpoint to today's.
	if out, err = runCLI(t, "consistency", "--data", exp, "--old", kept, "--verifier-key", key); err != nil || !strings.Contains(out, "is a prefix of size") {
		t.Fatalf("consistency --old: %v\n%s", err, out)
	}
	// kept is partition 1's checkpoint: partition 1's key checks it too.
	if out, err = runCLI(t, "consistency", "--data", exp, "--old", kept, "--verifier-key", pkey); err != nil || !strings.Contains(out, "is a prefix of size") {
		t.Fatalf("consistency --old: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "consistency", "--data", exp, "--partition", "1", "--from", "1"); err != nil || !strings.Contains(out, `"proof"`) {
		t.Fatalf("consistency --from 1: %v\n%s", err, out)
	}

	// Tampering with the export is named precisely.
	segs, _ := filepath.Glob(filepath.Join(exp, "p001", "*.seg"))
	b, _ := os.ReadFile(segs[1])
	b[len(b)-40] ^= 0x01
	os.WriteFile(segs[1], b, 0o644)
	out, err = runCLI(t, "verify", exp, "--verifier-key", key)
	if err == nil || !strings.Contains(out, "FAILED") || !strings.Contains(out, "p001/0000000000000002.seg") {
		t.Fatalf("verify of a changed export: %v\n%s", err, out)
	}
	// Without the manifest to catch it, the ledger checks name the entry.
	os.Remove(filepath.Join(exp, "manifest.json"))
	out, err = runCLI(t, "verify", exp, "--verifier-key", key)
	if err == nil || !regexp.MustCompile(`partition 1 segment 2 entry \d+`).MatchString(err.Error()) {
		t.Fatalf("verify of a changed export without manifest: %v\n%s", err, out)
	}
}
