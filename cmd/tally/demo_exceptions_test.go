package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
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
