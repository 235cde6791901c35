package main

import (
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

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/wire"
)

// TestBalancesAndStatementsFromANode settles the dirty-stream vector through
// a real node (embedded hub, ingest WAL, settle index and ledger), stops it,
// and reads the result with the offline commands: balances (text and
// --json) and statements issued from the node's own data directory, with the
// rule sets it recorded.
func TestBalancesAndStatementsFromANode(t *testing.T) {
	n, dir := startVectorNode(t, nil)
	defer n.Close()
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := os.ReadFile(filepath.Join(vectorDir, "dirty-stream.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if _, err := nc.Request(wire.NewSubjects("").In("P"), []byte(line), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, 30*time.Second, func() error {
		if s := n.Stats().Settle; s.Entries != 7 || s.OrphansHeld != 0 {
			return fmt.Errorf("%d entries, %d held", s.Entries, s.OrphansHeld)
		}
		return nil
	})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "balances", "--data", dir)
	if err != nil || !strings.Contains(out, "operator") || !strings.Contains(out, "-9.00") || !strings.Contains(out, "-1.00") {
		t.Errorf("balances: %v\n%s", err, out)
	}
	out, err = runCLI(t, "balances", "--data", dir, "--json")
	if err != nil {
		t.Fatal(err, out)
	}
	var bals []struct{ Party, Currency, Amount string }
	if err := json.Unmarshal([]byte(out), &bals); err != nil {
		t.Fatalf("balances --json: %v\n%s", err, out)
	}
	if fmt.Sprint(bals) != "[{P EUR -1.00} {operator EUR -9.00}]" {
		t.Errorf("balances --json = %v", bals)
	}

	outs := statementsRun(t, "--data", dir, "--period", "2026-11")
	if len(outs) != 2 {
		t.Fatalf("statements %+v, want P and operator", outs)
	}
	for _, o := range outs {
		s := o.Statement
		want := map[string]string{"P": "-1.00", "operator": "-9.00"}[s.Party]
		if o.Status != "issued" || s.Closing != want || s.Gaming.Stakes != "15.00" || s.Gaming.Wins != "25.00" || s.Gaming.GGR != "-10.00" {
			t.Errorf("%s: status %s closing %s gaming %+v, want closing %s and the vector's GGR", s.Party, o.Status, s.Closing, s.Gaming, want)
		}
	}
	if out, err := runCLI(t, "verify", dir); err != nil {
		t.Errorf("verify after statements: %v\n%s", err, out)
	}
}

// startVectorNode starts an in-process node (embedded hub on a free port,
// ingest, settle) in a temp data directory, settling with the dirty-stream
// vector's rules; edit adjusts the config first (nil: none). It is closed
// at the end of the test; closing it earlier is fine.
func startVectorNode(t *testing.T, edit func(*config.Config)) (*nodes.Node, string) {
	t.Helper()
	dir := t.TempDir()
	c := config.Default()
	c.DataDir = dir
	c.Hub.Port = -1
	c.Hub.SyncAlways = false
	rules, _ := filepath.Abs(filepath.Join(vectorDir, "dirty-stream.hcl"))
	c.Settle.Rules = rules
	c.Settle.SegmentMaxAge = 50 * time.Millisecond
	if edit != nil {
		edit(&c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := nodes.Start(context.Background(), c, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, dir
}
