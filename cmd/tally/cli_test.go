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
	ex := filepath.Join("..", "..", "config", "examples")
	out, err := runCLI(t, "node", "--config", filepath.Join(ex, "single-node.hcl"), "--check-config")
	if err != nil || !strings.Contains(out, ": ok") {
		t.Errorf("check-config single-node.hcl: %v\n%s", err, out)
	}
	// The edge and settle examples name files under /etc/tally that this
	// machine does not have: check-config says so instead of "ok".
	for f, want := range map[string][]string{
		"edge.hcl":   {`nats.creds = "/etc/tally/edge-eu-1.creds": no such file`},
		"settle.hcl": {`settle.rules = "/etc/tally/rules.hcl": no such file`, `nats.creds = "/etc/tally/settle-1.creds": no such file`},
	} {
		out, err := runCLI(t, "node", "--config", filepath.Join(ex, f), "--check-config")
		if err == nil || strings.Contains(out, ": ok") {
			t.Errorf("check-config %s with missing files: %v\n%s", f, err, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("check-config %s does not report %q:\n%s", f, w, out)
			}
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	os.WriteFile(bad, []byte("node_id = \"x\"\ningest {\n  group_wait = \"soon\"\n}\n"), 0o644)
	_, err = runCLI(t, "node", "--config", bad, "--check-config")
	if err == nil {
		t.Errorf("check-config of a bad file passed")
	}
	out, _ = runCLI(t, "node", "--config", bad, "--check-config")
	if !strings.Contains(out, "bad.hcl:3") || !strings.Contains(out, "ingest.group_wait") {
		t.Errorf("check-config of a bad file: want file:line and key:\n%s", out)
	}
}

// TestCheckConfigAllProblems: an unknown key, a syntax error, a bad value and
// several missing or broken files are all reported in one run, with file:line
// for what is in the config.
func TestCheckConfigAllProblems(t *testing.T) {
	dir := t.TempDir()
	badRules := filepath.Join(dir, "rules.hcl")
	os.WriteFile(badRules, []byte("ruleset \"x\" {\n  effective = \"not a time\"\n}\n"), 0o644)
	badKey := filepath.Join(dir, "ledger.key")
	os.WriteFile(badKey, []byte("not a key\n"), 0o600)
	cfgText := `node_id  = "settle-1"
data_dir = "data"
roles    = ["settle"]
colour   = "blue"
nats {
  url   = "nats://127.0.0.1:4222"
  creds = "missing.creds"
}
settle {
  rules       = "rules.hcl"
  signing_key = "ledger.key"
  segment_max_age = "soon"
}
ingest {
  group_max = 10 10
}
`
	path := filepath.Join(dir, "node.hcl")
	os.WriteFile(path, []byte(cfgText), 0o644)
	out, err := runCLI(t, "node", "--config", path, "--check-config")
	if err == nil || strings.Contains(out, ": ok") {
		t.Fatalf("check-config passed:\n%s", out)
	}
	for _, want := range []string{
		"node.hcl:4: Unsupported argument", // unknown key
		"node.hcl:12: settle.segment_max_age",
		"node.hcl:15:", // syntax error
		`nats.creds = "` + filepath.Join(dir, "missing.creds") + `": no such file`,
		`settle.rules = "` + badRules + `": the rule book has problems`,
		`settle.signing_key = "` + badKey + `": not a ledger signing key`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check-config does not report %q:\n%s", want, out)
		}
	}
	if exitCode(err) != 1 {
		t.Errorf("exit %d, want 1", exitCode(err))
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

// TestHelpEveryCommand runs every command and subcommand with -h and --help:
// each prints its usage on stdout, exits 0, and does nothing else — no demo
// started, no key printed or written, no file opened as "--help".
func TestHelpEveryCommand(t *testing.T) {
	var names [][]string
	for name := range commands {
		names = append(names, []string{name})
	}
	names = append(names, []string{"rules", "check"}, []string{"rules", "eval"}, []string{"dlq", "list"}, []string{"dlq", "show"}, []string{"payouts", "run"}, []string{"payouts", "list"}, []string{"version"})
	if len(names) < 20 {
		t.Fatalf("only %d commands registered", len(names))
	}
	dir := t.TempDir()
	t.Chdir(dir) // anything a command would create lands here
	for _, n := range names {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string(nil), n...), h)
			var out, errb bytes.Buffer
			err := run(context.Background(), args, &out, &errb)
			if err != nil {
				t.Errorf("tally %s: %v (exit %d)", strings.Join(args, " "), err, exitCode(err))
				continue
			}
			if want := "Usage: tally " + strings.Join(n, " "); !strings.HasPrefix(out.String(), want) {
				t.Errorf("tally %s printed %q, want it to start with %q", strings.Join(args, " "), out.String(), want)
			}
			if errb.Len() != 0 {
				t.Errorf("tally %s wrote to stderr: %s", strings.Join(args, " "), errb.String())
			}
			for _, bad := range []string{"signing key (keep", "signing key:", "hub at", "== providers", "verifier key (give"} {
				if strings.Contains(out.String(), bad) {
					t.Errorf("tally %s ran the command: %q in\n%s", strings.Join(args, " "), bad, out.String())
				}
			}
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("-h created %v", ents)
	}
	// The top level.
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		if out, err := runCLI(t, args...); err != nil || !strings.Contains(out, "tally send") {
			t.Errorf("tally %v: %v\n%s", args, err, out)
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if out, err := runCLI(t, args...); err != nil || !strings.HasPrefix(out, "tally ") || !strings.Contains(out, "go1.") {
			t.Errorf("tally %v: %v\n%s", args, err, out)
		}
	}
}

// TestFlagShapedArgs: an unknown flag anywhere is a usage error (exit 2) with
// the usage on stderr, never a file name; flags may follow positional
// arguments; "--" ends the flags.
func TestFlagShapedArgs(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, args := range [][]string{
		{"rules", "check", "--frob"},
		{"rules", "check", "x.hcl", "--frob"},
		{"verify", "--frob"},
		{"verify", "somedir", "--frob"},
		{"keygen", "--frob"},
		{"demo", "--frob"},
		{"send", "--frob"},
		{"dlq", "list", "--frob"},
		{"statements", "--data", dir, "--frob"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, &out, &errb)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "-frob") || !strings.Contains(errb.String(), "Usage: tally") {
			t.Errorf("tally %v: %v (exit %d), stderr %q; want a usage error naming -frob", args, err, exitCode(err), errb.String())
		}
	}
	// A flag after the positional argument is parsed as a flag.
	_, err := runCLI(t, "rules", "check", filepath.Join(dir, "missing.hcl"), "--help")
	if err != nil {
		t.Errorf("rules check FILE --help: %v, want the usage", err)
	}
	// After "--", a name that starts with "-" is a file name.
	out, err := runCLI(t, "rules", "check", "--", "--help")
	if err == nil || !strings.Contains(out, "--help") {
		t.Errorf("rules check -- --help: %v, want the file --help to be opened (and missing)\n%s", err, out)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("created %v", ents)
	}
}

// TestDemoTwiceOnOneDir: a second demo on the same --data continues it: its
// ids carry the run number, so it makes no conflicts beyond the ones the
// simulation makes on purpose, and the ledger of both runs verifies.
func TestDemoTwiceOnOneDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	conflicts := regexp.MustCompile(`rejected: conflict\s+(\d+)`)
	deliberate := regexp.MustCompile(`\((\d+) ids re-sent with a new payload on purpose`)
	accepted := regexp.MustCompile(`(?m)^\s+accepted\s+(\d+)`)
	for run := 1; run <= 2; run++ {
		out, err := runCLI(t, "demo", "--duration", "2s", "--data", dir, "--rate", "300", "--seed", "11")
		if err != nil {
			t.Fatalf("demo run %d: %v\n%s", run, err, out)
		}
		if run == 2 && !strings.Contains(out, "continuing in "+dir+": run 2") {
			t.Errorf("run 2 does not say it continues:\n%s", out)
		}
		d := deliberate.FindStringSubmatch(out)
		a := accepted.FindStringSubmatch(out)
		if d == nil || a == nil {
			t.Fatalf("run %d: no deliberate-conflict or accepted count:\n%s", run, out)
		}
		nd, _ := strconv.Atoi(d[1])
		na, _ := strconv.Atoi(a[1])
		nc := 0
		if m := conflicts.FindStringSubmatch(out); m != nil {
			nc, _ = strconv.Atoi(m[1])
		}
		if nc > nd {
			t.Errorf("run %d: %d conflicts, only %d made on purpose:\n%s", run, nc, nd, out)
		}
		if na < 20 {
			t.Errorf("run %d accepted only %d (the same seed as run 1 would make its ids duplicates)", run, na)
		}
	}
	out, err := runCLI(t, "verify", dir)
	if err != nil || !strings.Contains(out, "OK:") {
		t.Fatalf("verify after two runs: %v\n%s", err, out)
	}
}

// TestVerifyWrongKey: a ledger checked with another key is "signed by a
// different key", said once (stdout, not again by main), naming the key
// expected and the key found — not "ledger corrupt". The old flag name
// --key still works.
func TestVerifyWrongKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	if out, err := runCLI(t, "demo", "--duration", "1s", "--data", dir, "--rate", "200", "--seed", "5"); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	other, err := runCLI(t, "keygen", "--name", "someone.else/ledger")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`verifier key \(give to auditors\): (\S+)`).FindStringSubmatch(other)
	if m == nil {
		t.Fatalf("keygen printed %q", other)
	}
	for _, flag := range []string{"--verifier-key", "--key"} {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"verify", dir, flag, m[1], "-q"}, &out, &errb)
		var rep reportedError
		if err == nil || exitCode(err) != 1 || !errors.As(err, &rep) {
			t.Fatalf("verify %s OTHER: %v, want exit 1 already reported", flag, err)
		}
		if !strings.Contains(out.String(), "signed by a different key") || strings.Contains(out.String(), "corrupt") ||
			!regexp.MustCompile(`signed by tally\.demo/ledger/p\d+ \(key id`).MatchString(out.String()) || !strings.Contains(out.String(), "expected key someone.else/ledger (key id") ||
			!regexp.MustCompile(`for this partition someone\.else/ledger/p\d+, key id`).MatchString(out.String()) {
			t.Errorf("verify %s OTHER said:\n%s", flag, out.String())
		}
		if strings.Count(out.String()+errb.String(), "signed by a different key") != 1 {
			t.Errorf("said more than once:\n%s%s", out.String(), errb.String())
		}
	}
	// Roots are base64, as in the checkpoint the same output shows.
	out, err := runCLI(t, "verify", dir, "-q")
	if err != nil {
		t.Fatal(err)
	}
	rm := regexp.MustCompile(`partition 0: \d+ segments, \d+ entries, root (\S+)\n\s+checkpoint: \S+ \| \d+ \| (\S+) \|`).FindStringSubmatch(out)
	if rm == nil || rm[1] != rm[2] {
		t.Errorf("partition 0 root and checkpoint root differ or are missing:\n%s", out)
	}
}
