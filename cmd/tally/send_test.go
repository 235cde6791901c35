package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-mesh/tally/internal/natstest"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// sendCLI runs `tally send` and decodes its answer lines.
func sendCLI(t *testing.T, args ...string) ([]sendLine, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"send"}, args...), &out, &errb)
	var ls []sendLine
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var a sendLine
		if jerr := json.Unmarshal([]byte(l), &a); jerr != nil {
			t.Fatalf("send printed %q: %v (stderr %s)", l, jerr, errb.String())
		}
		ls = append(ls, a)
	}
	return ls, err
}

func statuses(ls []sendLine) string {
	var s []string
	for _, l := range ls {
		st := l.Status
		if l.Code != "" {
			st += ":" + l.Code
		}
		s = append(s, fmt.Sprintf("%d=%s", l.Line, st))
	}
	return strings.Join(s, " ")
}

// TestSendAgainstDemo is the README's provider path: while `tally demo`
// runs, `tally send` as one of its providers over NATS (user/password) and
// HTTP (bearer token), a CSV upload, and a provider trying to speak for
// another; afterwards the ledger holds what was accepted, once, and
// `tally dlq` shows what was rejected.
func TestSendAgainstDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	var demoOut syncBuffer
	demoDone := make(chan error, 1)
	go func() {
		demoDone <- run(context.Background(), []string{"demo", "--duration", "8s", "--rate", "100", "--data", dir, "--seed", "3"}, &demoOut, &demoOut)
	}()
	var natsCmd, httpCmd, csvCmd []string
	natstest.Eventually(t, 30*time.Second, func() error {
		for _, l := range strings.Split(demoOut.String(), "\n") {
			f := strings.Fields(l)
			if len(f) < 3 || f[0] != "tally" || f[1] != "send" {
				continue
			}
			switch {
			case strings.Contains(l, "--format csv"):
				csvCmd = f[2 : len(f)-1]
			case strings.Contains(l, "--nats"):
				natsCmd = f[2 : len(f)-1]
			case strings.Contains(l, "--http"):
				httpCmd = f[2 : len(f)-1]
			}
		}
		if natsCmd == nil || httpCmd == nil || csvCmd == nil {
			return fmt.Errorf("demo has not printed the send commands yet:\n%s", demoOut.String())
		}
		return nil
	})
	in := filepath.Join(t.TempDir(), "tx.jsonl")
	os.WriteFile(in, []byte(`{"id":"me-1","type":"bet","amount":"5.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}
{"id":"me-2","type":"win","amount":"2.50","currency":"EUR","occurred_at":"2026-11-01T10:00:01Z"}

{"id":"me-1","type":"bet","amount":"5.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}
{"id":"me-1","type":"bet","amount":"6.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}
{"id":"me-3","type":"bet","amount":5,"currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}
`), 0o644)
	ls, err := sendCLI(t, append(natsCmd, "--concurrency", "1", in)...)
	if exitCode(err) != sendExitRejected {
		t.Fatalf("send over NATS: %v, want exit 1 (some lines rejected)", err)
	}
	if got, want := statuses(ls), "1=accepted 2=accepted 4=duplicate 5=rejected:conflict 6=rejected:amount_not_string"; got != want {
		t.Errorf("over NATS: %s\nwant %s", got, want)
	}
	// HTTP shares the provider's dedup index.
	ls, err = sendCLI(t, append(httpCmd, in)...)
	if exitCode(err) != sendExitRejected {
		t.Fatalf("send over HTTP: %v, want exit 1 (some lines rejected)", err)
	}
	if got, want := statuses(ls), "1=duplicate 2=duplicate 4=duplicate 5=rejected:conflict 6=rejected:amount_not_string"; got != want {
		t.Errorf("over HTTP: %s\nwant %s", got, want)
	}
	csv := filepath.Join(t.TempDir(), "up.csv")
	os.WriteFile(csv, []byte("id,type,amount,currency,occurred_at\nu-1,bet,3.00,EUR,2026-11-01T10:00:00Z\nu-2,bet,1.234,EUR,2026-11-01T10:00:00Z\n"), 0o644)
	ls, err = sendCLI(t, append(csvCmd, csv)...)
	if exitCode(err) != sendExitRejected || len(ls) != 2 || ls[0].Status != "accepted" || ls[1].Code != "too_many_decimals" {
		t.Errorf("csv upload: %s, %v", statuses(ls), err)
	}
	// studio-1's credentials cannot speak for studio-2, over NATS or HTTP.
	other := func(cmd []string) []string {
		c := append([]string(nil), cmd...)
		for i := range c {
			if c[i] == "--provider" {
				c[i+1] = "studio-2"
			}
		}
		return append(c, "--give-up", "10s", "--timeout", "1s", in)
	}
	ls, err = sendCLI(t, other(natsCmd)...)
	if exitCode(err) != sendExitFatal || len(ls) != 5 || ls[0].Status != statusError || !strings.Contains(ls[0].Reason, "ermissions") || ls[0].Attempts != 1 {
		t.Errorf("studio-1 as studio-2 over NATS: %+v, %v; want a permissions error per line, at once", ls, err)
	}
	ls, err = sendCLI(t, other(httpCmd)...)
	if exitCode(err) != sendExitFatal || len(ls) != 5 || ls[0].Code != "forbidden" {
		t.Errorf("studio-1 as studio-2 over HTTP: %s, %v; want forbidden, exit 3", statuses(ls), err)
	}

	if err := <-demoDone; err != nil {
		t.Fatalf("demo: %v\n%s", err, demoOut.String())
	}
	ids, err := ledgerIDs(filepath.Join(dir, "ledger"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"studio-1/me-1", "studio-1/me-2", "uploads/u-1"} {
		if ids[k] != 1 {
			t.Errorf("%s in the ledger %d times, want 1", k, ids[k])
		}
	}
	for _, k := range []string{"studio-1/me-3", "studio-2/me-1", "uploads/u-2"} {
		if ids[k] != 0 {
			t.Errorf("rejected %s is in the ledger", k)
		}
	}
	out, err := runCLI(t, "dlq", "list", "--data", dir, "--provider", "studio-1", "--code", "conflict")
	if err != nil || !strings.Contains(out, "me-1") || !strings.Contains(out, "conflict") {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^(\d+)\s+\S+\s+studio-1\s+conflict\s+id "me-1"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dlq list shows no studio-1 conflict row:\n%s", out)
	}
	out, err = runCLI(t, "dlq", "show", "--data", dir, m[1])
	if err != nil || !strings.Contains(out, `\"6.00\"`) || !strings.Contains(out, `"code": "conflict"`) {
		t.Errorf("dlq show %s: %v\n%s", m[1], err, out)
	}
}
