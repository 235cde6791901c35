package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

// TestDemoVerifyTamper is the first-time operator's path: run the demo, verify
// what it wrote, then change one byte of ledger data and watch verify fail and
// name the place.
func TestDemoVerifyTamper(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	out, err := runCLI(t, "demo", "--duration", "2s", "--data", dir, "--rate", "400", "--seed", "7")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"== providers", "accepted", "== settlement", "== balances", "operator", "checkpoint", "verify " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "verify", dir)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`OK: (\d+) entries`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("verify output has no entry count:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Fatalf("verify reports 0 entries")
	}

	// Flip one byte in the middle of a segment file of partition 0.
	segs, _ := filepath.Glob(filepath.Join(dir, "ledger", "p000", "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no segments in partition 0")
	}
	seg := segs[len(segs)/2]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)*2/3] ^= 0x01
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "verify", dir)
	if err == nil {
		t.Fatalf("verify passed a tampered ledger:\n%s", out)
	}
	segNo := strings.TrimLeft(strings.TrimSuffix(filepath.Base(seg), ".seg"), "0")
	for _, want := range []string{"partition 0", "segment " + segNo} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("verify error does not name %q: %v", want, err)
		}
	}
}

func TestNodeCheckConfig(t *testing.T) {
	for _, f := range []string{"single-node.hcl", "edge.hcl", "settle.hcl"} {
		out, err := runCLI(t, "node", "--config", filepath.Join("..", "..", "config", "examples", f), "--check-config")
		if err != nil || !strings.Contains(out, "ok") {
			t.Errorf("check-config %s: %v\n%s", f, err, out)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	os.WriteFile(bad, []byte("node_id = \"x\"\ningest {\n  group_wait = \"soon\"\n}\n"), 0o644)
	_, err := runCLI(t, "node", "--config", bad, "--check-config")
	if err == nil || !strings.Contains(err.Error(), "bad.hcl:3") || !strings.Contains(err.Error(), "ingest.group_wait") {
		t.Errorf("check-config of a bad file = %v, want file:line and key", err)
	}
}

func TestUsage(t *testing.T) {
	_, err := runCLI(t, "frobnicate")
	var ue usageError
	if !errors.As(err, &ue) || exitCode(err) != 2 {
		t.Errorf("unknown command: %v, want a usage error (exit 2)", err)
	}
	if _, err := runCLI(t, "verify"); exitCode(err) != 2 {
		t.Errorf("verify without DIR: %v, want exit 2", err)
	}
	if out, err := runCLI(t, "rules", "check", filepath.Join("..", "..", "config", "examples", "rules.hcl")); err != nil || !strings.Contains(out, "ok: 2 rule set versions") {
		t.Errorf("rules check example: %v\n%s", err, out)
	}
}
