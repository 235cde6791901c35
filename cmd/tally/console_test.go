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

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/wire"
)

// TestConsoleCommandsOnARunningNode: accounts and tokens written by `tally
// console`, then `balances --node` and `exceptions --node` read the running
// node (where `balances --data` fails on the Badger lock), and statements
// issued by `tally statements` while it runs are listed and downloadable
// over the console API, scoped to the partner.
func TestConsoleCommandsOnARunningNode(t *testing.T) {
	n, dir, url := runningConsoleNode(t)
	t.Setenv("TALLY_CONSOLE_PASSWORD", "a long enough password")
	if out, err := runCLI(t, "console", "users", "add", "--data", dir, "--name", "ops", "--role", "viewer"); err != nil {
		t.Fatal(err, out)
	}
	if out, err := runCLI(t, "console", "users", "add", "--data", dir, "--name", "p", "--role", "partner", "--parties", "P"); err != nil {
		t.Fatal(err, out)
	}
	if out, err := runCLI(t, "console", "users", "add", "--data", dir, "--name", "x", "--role", "partner"); err == nil {
		t.Fatalf("a partner account without parties was written: %s", out)
	}
	opsTok, err := runCLI(t, "console", "tokens", "add", "--data", dir, "--user", "ops", "--name", "ops-cli")
	if err != nil {
		t.Fatal(err, opsTok)
	}
	opsTok = strings.TrimSpace(strings.Split(opsTok, "\n")[0])
	pTok, err := runCLI(t, "console", "tokens", "add", "--data", dir, "--user", "p", "--name", "p-cli")
	if err != nil {
		t.Fatal(err, pTok)
	}
	pTok = strings.TrimSpace(strings.Split(pTok, "\n")[0])
	consoleCommandsChecks(t, n, dir, url, opsTok, pTok)
}

// runningConsoleNode runs a node with the console on, fed the
// dirty-stream vector (7 entries, exceptions among the rest).
func runningConsoleNode(t *testing.T) (*nodes.Node, string, string) {
	t.Helper()
	n, dir := startVectorNode(t, func(c *config.Config) { c.Settle.ConsoleListen = "127.0.0.1:0" })
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
	return n, dir, "http://" + n.ConsoleAddr()
}

func consoleCommandsChecks(t *testing.T, n *nodes.Node, dir, url, opsTok, pTok string) {
	if _, err := runCLI(t, "balances", "--data", dir); err == nil {
		t.Fatal("balances --data on a running node's directory worked; the test expects Badger's lock")
	}
	out, err := runCLI(t, "balances", "--node", url, "--token", opsTok, "--json")
	if err != nil {
		t.Fatal(err, out)
	}
	var bals []struct{ Party, Currency, Amount string }
	if err := json.Unmarshal([]byte(out), &bals); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if fmt.Sprint(bals) != "[{P EUR -1.00} {operator EUR -9.00}]" { // as TestBalancesAndStatementsFromANode reads offline
		t.Fatalf("live balances %v", bals)
	}
	out, err = runCLI(t, "balances", "--node", url, "--token", pTok)
	if err != nil || !strings.Contains(out, "-1.00") || strings.Contains(out, "operator") {
		t.Fatalf("partner's live balances: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "exceptions", "--node", url, "--token", opsTok); err != nil || !strings.HasPrefix(out, "at ") {
		t.Fatalf("exceptions: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "exceptions", "--node", url, "--token", pTok); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("a partner read the exception queue: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "balances", "--node", url, "--token", "tally_wrong"); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("a wrong token: %v\n%s", err, out)
	}
	// Statements issued while the node runs, listed and downloaded live.
	if out, err := runCLI(t, "statements", "--data", dir, "--period", "2026-11"); err != nil {
		t.Fatal(err, out)
	}
	var items []struct{ Party string }
	if err := consoleGet(context.Background(), url, pTok, "/v1/statements", &items); err != nil || len(items) != 0 {
		t.Fatalf("partner's statements before their review: %+v %v", items, err)
	}
	// The console's review: submitted, approved by another identity, issued.
	reviewStatements(t, url, consoleToken(t, dir, "mk", "operator"), consoleToken(t, dir, "ck", "approver"))
	var issued []struct{ Party, Period, Note, CSV string }
	if err := consoleGet(context.Background(), url, pTok, "/v1/statements", &issued); err != nil {
		t.Fatal(err)
	}
	if len(issued) != 1 || issued[0].Party != "P" || issued[0].Period != "2026-11" {
		t.Fatalf("partner's statements: %+v", issued)
	}
	var all []struct{ Party string }
	if err := consoleGet(context.Background(), url, opsTok, "/v1/statements", &all); err != nil {
		t.Fatal(err)
	}
	if len(all) < 2 {
		t.Fatalf("operator's statements: %+v", all)
	}
	var x any
	if err := consoleGet(context.Background(), url, pTok, "/v1/statements/operator/1/json", &x); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("partner downloads operator's statement: %v %v", err, x)
	}
	var st map[string]any
	if err := consoleGet(context.Background(), url, pTok, strings.TrimSuffix(issued[0].Note, "note")+"json", &st); err != nil || st["party"] != "P" {
		t.Fatalf("partner's statement json: %v %v", err, st)
	}
}
