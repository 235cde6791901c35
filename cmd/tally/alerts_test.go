package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-mesh/tally/internal/natstest"
)

// TestAlertsTailHubRestart runs a hub in one process and an ingest+settle
// node in another, stops the hub and starts it again. The node raises
// hub_unreachable while the hub is away, keeps the transitions in its
// outbox, and publishes firing then resolved into TALLY_ALERTS when the hub
// returns. `tally alerts tail` shows both: a follower started before the
// outage (its own process, reconnecting) and a --no-follow read afterwards.
func TestAlertsTailHubRestart(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	writeFile(t, filepath.Join(dir, "rules.hcl"), crashRules)
	hubCfg := writeFile(t, filepath.Join(dir, "hub.hcl"), fmt.Sprintf(`
node_id   = "hub-1"
data_dir  = "hub-data"
log_level = "warn"
roles     = ["hub"]
hub {
  listen        = "127.0.0.1:%d"
  sync_interval = "always"
}
alerts {
  interval = "200ms"
}
`, port))
	nodeCfg := writeFile(t, filepath.Join(dir, "node.hcl"), fmt.Sprintf(`
node_id   = "edge-settle-1"
data_dir  = "node-data"
log_level = "warn"
roles     = ["ingest", "settle"]
nats {
  url = %q
}
settle {
  rules           = "rules.hcl"
  segment_max_age = "50ms"
}
alerts {
  interval        = "200ms"
  hub_unreachable = "1s"
}
`, url))
	hub := startChild(t, dir, "node", "--config", hubCfg)
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port))
	startChild(t, dir, "node", "--config", nodeCfg)
	// The node creates TALLY_ALERTS at start; the follower waits for it.
	tailDir := filepath.Join(dir, "tail")
	if err := os.MkdirAll(tailDir, 0o755); err != nil {
		t.Fatal(err)
	}
	startChild(t, tailDir, "alerts", "tail", "--nats", url, "--since", "0", "--kind", "hub_unreachable")
	natstest.Eventually(t, 30*time.Second, func() error {
		out, err := runCLI(t, "alerts", "tail", "--nats", url, "--no-follow")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	time.Sleep(time.Second) // the follower's consumer is in place

	hub.stop(t)
	// Let the outage outlast hub_unreachable (1s) and a few evaluations. This
	// sleep sets up the condition; nothing below asserts on timing.
	time.Sleep(3 * time.Second)
	startChild(t, dir, "node", "--config", hubCfg)
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port))

	var out string
	natstest.Eventually(t, 60*time.Second, func() error {
		var err error
		out, err = runCLI(t, "alerts", "tail", "--nats", url, "--since", "10m", "--no-follow", "--kind", "hub_unreachable")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if !strings.Contains(out, "RESOLVED hub_unreachable") {
			return fmt.Errorf("no resolution yet:\n%s", out)
		}
		return nil
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "FIRING   hub_unreachable") || !strings.Contains(lines[0], "node=edge-settle-1") {
		t.Fatalf("want one firing then one resolved transition, got:\n%s", out)
	}
	natstest.Eventually(t, 60*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(tailDir, "child.log"))
		if !strings.Contains(string(b), "FIRING   hub_unreachable") || !strings.Contains(string(b), "RESOLVED hub_unreachable") {
			return fmt.Errorf("follower printed:\n%s", b)
		}
		return nil
	})
}
