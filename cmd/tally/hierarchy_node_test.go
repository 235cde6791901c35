package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-mesh/tally/internal/natstest"
)

// TestHierarchyThroughNode: the partner tree of vectors/hierarchy.json
// through a real node (embedded hub, ingest and settle roles in one child
// process, real JetStream and Badger): the vector's transactions are sent
// with `tally send` over HTTP, settled into the ledger with the rule file
// hierarchy-deducted.hcl, and `tally statements` on the node's data directory
// (rule sets as the node recorded them) must give the vector's figures for
// the deducted case: A 5,400.00, S 570.00, M 30.00.
func TestHierarchyThroughNode(t *testing.T) {
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(vectorDir, "hierarchy-deducted.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "rules.hcl"), string(rules))
	hubPort, httpPort := freePort(t), freePort(t)
	const token = "studio-http-token-0123456789"
	cfg := writeFile(t, filepath.Join(dir, "node.hcl"), fmt.Sprintf(`
node_id   = "node-1"
data_dir  = "data"
roles     = ["hub", "ingest", "settle"]
log_level = "warn"
hub {
  listen        = "127.0.0.1:%d"
  sync_interval = "always"
}
ingest {
  http_listen = "127.0.0.1:%d"
}
provider "studio" {
  nats_password = "studio-nats-password"
  http_token    = %q
}
settle {
  rules               = "rules.hcl"
  segment_max_age     = "50ms"
  segment_max_entries = 200
}
`, hubPort, httpPort, token))
	node := startChild(t, dir, "node", "--config", cfg)
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", httpPort))

	// The vector's transactions without the eval-only "provider" key.
	raw, err := os.ReadFile(filepath.Join(vectorDir, "hierarchy.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []byte
	n := 0
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "provider")
		b, _ := json.Marshal(m)
		lines = append(append(lines, b...), '\n')
		n++
	}
	in := writeFile(t, filepath.Join(dir, "tx.jsonl"), string(lines))
	if out, err := runCLI(t, "send", "--http", fmt.Sprintf("http://127.0.0.1:%d", httpPort), "--provider", "studio", "--token", token, in); err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	ledger := filepath.Join(dir, "data", "ledger")
	natstest.Eventually(t, 30*time.Second, func() error {
		ids, _ := ledgerIDs(ledger)
		if len(ids) < n {
			return fmt.Errorf("%d of %d transactions in the ledger", len(ids), n)
		}
		return nil
	})
	node.stop(t)

	// tally verify recomputes every entry's split from the recorded rule set,
	// the new tax type and the tree's declared parties included.
	if out, err := runCLI(t, "verify", filepath.Join(dir, "data")); err != nil || !strings.Contains(out, fmt.Sprintf("OK: %d entries", n)) {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	outs := statementsRun(t, "--data", filepath.Join(dir, "data"), "--period", "2026-11")
	got := map[string]string{}
	for _, o := range outs {
		got[o.Statement.Party] = o.Statement.Closing
	}
	for p, w := range map[string]string{"A": "5400.00", "S": "570.00", "M": "30.00"} {
		if got[p] != w {
			t.Errorf("%s closing %q, want %s (all: %v)", p, got[p], w, got)
		}
	}
}
