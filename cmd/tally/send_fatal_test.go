package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/nodes"
)

// sendHub starts a real hub and ingest node with providers p1 and p2
// (NATS password and HTTP token each). It returns the NATS and HTTP URLs.
func sendHub(t *testing.T) (natsURL, httpURL string) {
	t.Helper()
	natsURL, httpURL, _ = sendHubNkey(t)
	return natsURL, httpURL
}

// sendHubNkey is sendHub with a third provider, p3, that signs in with an
// nkey; it returns the file holding p3's seed.
func sendHubNkey(t *testing.T) (natsURL, httpURL, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile = filepath.Join(t.TempDir(), "p3.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Hub.Port = 0
	cfg.Hub.SyncAlways = false
	cfg.Roles = []string{config.RoleHub, config.RoleIngest}
	cfg.Ingest.HTTPListen = "127.0.0.1:0"
	cfg.Providers = []config.Provider{
		{Name: "p1", NATSPassword: "password-1", HTTPToken: "token-p1-0123456789"},
		{Name: "p2", NATSPassword: "password-2", HTTPToken: "token-p2-0123456789"},
		{Name: "p3", NATSNkey: pub},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := nodes.Start(context.Background(), cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n.ClientURL(), "http://" + n.HTTPAddr(), seedFile
}

func txLine(id, amount string) string {
	return fmt.Sprintf(`{"id":%q,"type":"bet","amount":%q,"currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, id, amount)
}

func writeLines(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tx.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sendBounded runs tally send with a hard bound: a run that has not ended
// after a minute fails the test (the behaviour under test ends it at once;
// the bound only keeps a regression from hanging the suite).
func sendBounded(t *testing.T, args ...string) ([]sendLine, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	err := run(ctx, append([]string{"send"}, args...), &out, &errb)
	if ctx.Err() != nil {
		t.Fatalf("tally send %v did not end within a minute", args)
	}
	var ls []sendLine
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var a sendLine
		if jerr := json.Unmarshal([]byte(l), &a); jerr != nil {
			t.Fatalf("send printed %q: %v", l, jerr)
		}
		ls = append(ls, a)
	}
	return ls, errb.String(), err
}

// TestSendFatalErrors: a wrong password, another provider's subject, a wrong
// or foreign HTTP token and malformed URLs end tally send at once with exit
// 3 and a clear message, over NATS and HTTP alike; nothing is retried.
func TestSendFatalErrors(t *testing.T) {
	natsURL, httpURL := sendHub(t)
	in := writeLines(t, txLine("f-1", "1.00"), txLine("f-2", "2.00"), txLine("f-3", "3.00"), txLine("f-4", "4.00"))
	long := []string{"--give-up", "10m", "--timeout", "30s"} // a retry loop would outlive sendBounded

	// Wrong password: refused at connect, nothing sent.
	ls, _, err := sendBounded(t, append(long, "--nats", natsURL, "--user", "p1", "--password", "wrong", "--provider", "p1", in)...)
	if exitCode(err) != sendExitFatal || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") || !strings.Contains(err.Error(), "refused these credentials") || len(ls) != 0 {
		t.Errorf("wrong password: exit %d, %v, %d lines; want exit 3 naming the refused credentials", exitCode(err), err, len(ls))
	}
	// p1's credentials on p2's subject: the server's permissions violation
	// ends the run; every line is answered with it, only the first was sent.
	ls, _, err = sendBounded(t, append(long, "--nats", natsURL, "--user", "p1", "--password", "password-1", "--provider", "p2", in)...)
	if exitCode(err) != sendExitFatal || len(ls) != 4 {
		t.Fatalf("p1 as p2 over NATS: exit %d, %v, %s", exitCode(err), err, statuses(ls))
	}
	for i, l := range ls {
		if l.Status != statusError || l.Code != "forbidden" || !strings.Contains(l.Reason, "ermissions violation") || l.Attempts > 1 || (i > 0 && !l.Local) {
			t.Errorf("p1 as p2 over NATS, line %d: %+v", l.Line, l)
		}
	}
	// The same over HTTP: a token of another provider, and an unknown one.
	for _, c := range []struct{ token, code string }{{"token-p1-0123456789", "forbidden"}, {"nope-nope-nope-nope-nope", "unauthorized"}} {
		ls, _, err = sendBounded(t, append(long, "--http", httpURL, "--token", c.token, "--provider", "p2", in)...)
		if exitCode(err) != sendExitFatal || len(ls) != 4 || ls[0].Code != c.code || ls[0].Status != statusError || ls[3].Attempts != 0 {
			t.Errorf("token %s over HTTP: exit %d, %v, %+v", c.token, exitCode(err), err, ls)
		}
	}
	// Malformed URLs.
	for _, args := range [][]string{
		{"--nats", "nats://[::1:4222"},
		{"--nats", "nats://no-such-host.invalid:4222"},
		{"--http", "htp:/127.0.0.1", "--token", "token-p1-0123456789"},
		{"--http", "127.0.0.1:8080", "--token", "token-p1-0123456789"},
	} {
		ls, _, err = sendBounded(t, append(append(long, args...), "--provider", "p1", in)...)
		if exitCode(err) != sendExitFatal || len(ls) != 0 || !strings.Contains(err.Error(), "nothing was sent") {
			t.Errorf("%v: exit %d, %v, %d lines; want exit 3 before sending", args, exitCode(err), err, len(ls))
		}
	}
}

// TestSendExitCodes: 0 when every line is accepted or a duplicate, 1 when
// any is rejected, the same over NATS and HTTP.
func TestSendExitCodes(t *testing.T) {
	natsURL, httpURL := sendHub(t)
	good := writeLines(t, txLine("e-1", "1.00"), txLine("e-2", "2.00"))
	bad := writeLines(t, txLine("e-3", "1.00"), txLine("e-4", "1.001"))
	for _, tr := range [][]string{
		{"--nats", natsURL, "--user", "p1", "--password", "password-1"},
		{"--http", httpURL, "--token", "token-p1-0123456789"},
	} {
		ls, _, err := sendBounded(t, append(tr, "--provider", "p1", good)...)
		if err != nil || len(ls) != 2 {
			t.Errorf("%s good: %v %s", tr[0], err, statuses(ls))
		}
		ls, _, err = sendBounded(t, append(tr, "--provider", "p1", bad)...)
		if exitCode(err) != sendExitRejected || len(ls) != 2 || ls[1].Code != "too_many_decimals" {
			t.Errorf("%s with a rejected line: exit %d, %v, %s; want exit 1", tr[0], exitCode(err), err, statuses(ls))
		}
	}
}

// TestSendOversized: a line above the server's max_payload gets a definite,
// coded answer from tally send itself (request_too_large), at once; the
// other lines are sent as usual.
func TestSendOversized(t *testing.T) {
	natsURL, _ := sendHub(t)
	nc, err := nats.Connect(natsURL, nats.UserInfo("p1", "password-1"))
	if err != nil {
		t.Fatal(err)
	}
	maxPayload := nc.MaxPayload()
	nc.Close()
	big := `{"id":"o-2","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z","meta":{"k":"` + strings.Repeat("x", int(maxPayload)) + `"}}`
	in := writeLines(t, txLine("o-1", "1.00"), big, txLine("o-3", "1.00"))
	ls, _, err := sendBounded(t, "--nats", natsURL, "--user", "p1", "--password", "password-1", "--provider", "p1", "--give-up", "10m", in)
	if exitCode(err) != sendExitRejected || len(ls) != 3 {
		t.Fatalf("exit %d, %v, %s", exitCode(err), err, statuses(ls))
	}
	if got := statuses(ls); got != "1=accepted 2=rejected:request_too_large 3=accepted" {
		t.Errorf("answers %s", got)
	}
	if !ls[1].Local || ls[1].Attempts != 1 || !strings.Contains(ls[1].Reason, "max_payload") {
		t.Errorf("oversized line: %+v", ls[1])
	}
}

// TestSendNATSContext: the URL and credentials come from $NATS_URL, or from a
// `nats` CLI context (--context, $NATS_CONTEXT, or the selected one).
func TestSendNATSContext(t *testing.T) {
	natsURL, _, seedFile := sendHubNkey(t)
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	t.Setenv("NATS_URL", "")
	t.Setenv("NATS_CONTEXT", "")
	ctxDir := filepath.Join(cfgHome, "nats", "context")
	os.MkdirAll(ctxDir, 0o700)
	b, _ := json.Marshal(map[string]string{"url": natsURL, "user": "p1", "password": "password-1"})
	os.WriteFile(filepath.Join(ctxDir, "tally-p1.json"), b, 0o600)

	ls, _, err := sendBounded(t, "--context", "tally-p1", "--provider", "p1", writeLines(t, txLine("c-1", "1.00")))
	if err != nil || statuses(ls) != "1=accepted" {
		t.Errorf("--context: %v %s", err, statuses(ls))
	}
	os.WriteFile(filepath.Join(cfgHome, "nats", "context.txt"), []byte("tally-p1\n"), 0o600)
	ls, _, err = sendBounded(t, "--provider", "p1", writeLines(t, txLine("c-2", "1.00")))
	if err != nil || statuses(ls) != "1=accepted" {
		t.Errorf("selected context: %v %s", err, statuses(ls))
	}
	os.Remove(filepath.Join(cfgHome, "nats", "context.txt"))
	t.Setenv("NATS_URL", natsURL)
	ls, _, err = sendBounded(t, "--user", "p1", "--password", "password-1", "--provider", "p1", writeLines(t, txLine("c-3", "1.00")))
	if err != nil || statuses(ls) != "1=accepted" {
		t.Errorf("$NATS_URL: %v %s", err, statuses(ls))
	}
	// An nkey seed file, as a flag and from a context.
	ls, _, err = sendBounded(t, "--nkey", seedFile, "--provider", "p3", writeLines(t, txLine("c-5", "1.00")))
	if err != nil || statuses(ls) != "1=accepted" {
		t.Errorf("--nkey: %v %s", err, statuses(ls))
	}
	t.Setenv("NATS_URL", "")
	b, _ = json.Marshal(map[string]string{"url": natsURL, "nkey": seedFile})
	os.WriteFile(filepath.Join(ctxDir, "tally-p3.json"), b, 0o600)
	ls, _, err = sendBounded(t, "--context", "tally-p3", "--provider", "p3", writeLines(t, txLine("c-6", "1.00")))
	if err != nil || statuses(ls) != "1=accepted" {
		t.Errorf("context with nkey: %v %s", err, statuses(ls))
	}
	_, _, err = sendBounded(t, "--context", "missing", "--provider", "p1", writeLines(t, txLine("c-4", "1.00")))
	if exitCode(err) != sendExitFatal || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing context: exit %d, %v", exitCode(err), err)
	}
}
