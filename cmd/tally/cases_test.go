package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// consoleToken adds a console account and an API token for it with the
// CLI, and returns the token.
func consoleToken(t *testing.T, dir, name, role string) string {
	t.Helper()
	t.Setenv("TALLY_CONSOLE_PASSWORD", "a long enough password")
	if out, err := runCLI(t, "console", "users", "add", "--data", dir, "--name", name, "--role", role); err != nil {
		t.Fatal(err, out)
	}
	tok, err := runCLI(t, "console", "tokens", "add", "--data", dir, "--user", name, "--name", name+"-cli")
	if err != nil {
		t.Fatal(err, tok)
	}
	return strings.TrimSpace(strings.Split(tok, "\n")[0])
}

// reviewStatements takes every unsubmitted statement through the console's
// review to issued: submitted by maker, approved by checker, issued by maker.
func reviewStatements(t *testing.T, url, maker, checker string) {
	t.Helper()
	var rs []console.StatementReview
	if err := consoleGet(context.Background(), url, maker, "/v1/statement-reviews?state=unsubmitted", &rs); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		base := fmt.Sprintf("/v1/statement-reviews/%s/%d/", r.Party, r.Seq)
		for _, step := range []struct{ tok, action string }{{maker, "submit"}, {checker, "approve"}, {maker, "issue"}} {
			var got console.StatementReview
			if err := consoleDo(context.Background(), http.MethodPost, url, step.tok, base+step.action, []byte(`{}`), &got); err != nil {
				t.Fatalf("%s %s: %v", step.action, base, err)
			}
		}
	}
}

// TestExceptionsCaseCommands: `tally exceptions cases|propose|approve|show`
// over a running node's console API with API tokens; the maker cannot
// check; the checker's approval posts the correction through the operator
// log, it settles as its own entry, and tally verify recomputes it.
func TestExceptionsCaseCommands(t *testing.T) {
	n, dir, url := runningConsoleNode(t)
	mk, ck := consoleToken(t, dir, "mk", console.RoleApprover), consoleToken(t, dir, "ck", console.RoleApprover)
	// An over-reversal: the engine records an exception.
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, tx := range []string{
		`{"id":"cli-bet","type":"bet","amount":"5.00","currency":"EUR","occurred_at":"2026-11-02T10:00:00Z"}`,
		`{"id":"cli-rb","type":"rollback","parent":"cli-bet","amount":"9.00","currency":"EUR","occurred_at":"2026-11-02T10:00:01Z"}`,
	} {
		if _, err := nc.Request(wire.NewSubjects("").In("P"), []byte(tx), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var id string
	natstest.Eventually(t, 20*time.Second, func() error {
		out, err := runCLI(t, "exceptions", "cases", "--node", url, "--token", mk, "--state", "open", "--json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		var cs []console.Case
		if err := json.Unmarshal([]byte(out), &cs); err != nil {
			return err
		}
		for _, c := range cs {
			if c.TxID == "cli-rb" && c.Kind == "over_reversal" {
				id = c.ID
				return nil
			}
		}
		return fmt.Errorf("no case for cli-rb: %s", out)
	})
	out, err := runCLI(t, "exceptions", "propose", "--node", url, "--token", mk, "--currency", "EUR",
		"--line", "P=1.00", "--line", "operator=-1.00", "--reason", "the provider's report says so", id)
	if err != nil || !strings.Contains(out, "proposed") || !strings.Contains(out, "P=1.00;operator=-1.00") {
		t.Fatalf("propose: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "exceptions", "approve", "--node", url, "--token", mk, id); err == nil || !strings.Contains(err.Error(), console.CodeMakerChecker) {
		t.Fatalf("the maker approved: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "exceptions", "approve", "--node", url, "--token", ck, id); err != nil || !strings.Contains(out, "posted") {
		t.Fatalf("approve by the checker: %v\n%s", err, out)
	}
	out, err = runCLI(t, "exceptions", "show", "--node", url, "--token", ck, id)
	if err != nil || !strings.Contains(out, "case "+id+": posted") || !strings.Contains(out, "1 of 1 approvals") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	// The approved adjustment is a correction entry of its own in the
	// ledger, through the operator log and the settle commit path.
	var pos *console.LedgerPos
	natstest.Eventually(t, 20*time.Second, func() error {
		var c console.Case
		if err := consoleGet(context.Background(), url, ck, "/v1/cases/"+id, &c); err != nil {
			return err
		}
		if c.InLedger == nil {
			return fmt.Errorf("case %s is %s, not in the ledger yet", id, c.State)
		}
		pos = c.InLedger
		return nil
	})
	n.Close()
	ids, err := ledgerIDs(filepath.Join(dir, "ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if c := ids[txn.OpsID+"/adj-"+id+"-1"]; c != 1 {
		t.Fatalf("correction adj-%s-1 in the ledger %d times, want 1 (at %+v)", id, c, *pos)
	}
	out, err = runCLI(t, "verify", dir)
	if err != nil || !strings.Contains(out+err2s(err), "1 correction") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}

func err2s(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
