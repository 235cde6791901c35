package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tally-mesh/tally/internal/natstest"
)

// TestDemoPlantsExceptions: the demo's simulated providers leave an
// over-reversal and an orphan in the settle node's exception queue (and a
// conflicting resend, refused at the edge), and it prints the console's URL
// and logins.
func TestDemoPlantsExceptions(t *testing.T) {
	old := demoOrphanTimeout
	demoOrphanTimeout = time.Second
	defer func() { demoOrphanTimeout = old }()
	out, err := runCLI(t, "demo", "--duration", "3s", "--data", filepath.Join(t.TempDir(), "demo"), "--rate", "100", "--seed", "5")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, s := range []string{"console at http://127.0.0.1:", "  operator: ops / ops-", "  approver: checker / checker-", "  partner:  studio-1 / partner-",
		"planted for the console's exception queue: over-reversal studio-1-r1-rb-", "rejected: conflict", " exceptions 2 "} {
		if !strings.Contains(out, s) {
			t.Errorf("the demo's output lacks %q:\n%s", s, out)
		}
	}
}

// TestDemoStaysUntilInterrupt: with --stay yes (the default on a terminal)
// the demo keeps its node and console up after the traffic, answering on the
// console, until SIGINT; then it drains, prints its summary and exits 0.
func TestDemoStaysUntilInterrupt(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "demo.log")
	c := startChildLog(t, logPath, os.O_TRUNC, "demo", "--duration", "1s", "--rate", "50", "--providers", "1", "--stay", "yes", "--data", filepath.Join(dir, "demo"))
	var url string
	natstest.Eventually(t, 60*time.Second, func() error {
		b, _ := os.ReadFile(logPath)
		m := regexp.MustCompile(`the node and the console at (\S+)/ stay up until Ctrl-C`).FindSubmatch(b)
		if m == nil {
			return fmt.Errorf("not staying yet:\n%s", tail(b, 2000))
		}
		url = string(m[1])
		return nil
	})
	time.Sleep(1500 * time.Millisecond) // well past --duration: still up
	resp, err := http.Get(url + "/login")
	if err != nil {
		t.Fatalf("console after the traffic: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("console after the traffic: %s", resp.Status)
	}
	c.cmd.Process.Signal(os.Interrupt)
	err, exited := c.waitFor(60 * time.Second)
	if !exited || err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("after SIGINT: exited %v, %v\n%s", exited, err, tail(b, 2000))
	}
	if b, _ := os.ReadFile(logPath); !bytes.Contains(b, []byte("== settlement")) {
		t.Fatalf("no summary after SIGINT:\n%s", tail(b, 2000))
	}
}
