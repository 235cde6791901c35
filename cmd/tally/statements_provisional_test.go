package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
)

// TestStatementsProvisional (issue 15 item 6): statements for the month
// that has not ended are provisional: signed, marked in the signed note,
// written under provisional/ outside the chain, and never final; the month
// before is issued final in the chain, and the next provisional links to it.
// A provisional statement cannot enter the chain, by Issue or by a copied file.
func TestStatementsProvisional(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "..", "settle", "rules", "testdata", "contract.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	l := newTestLedger(t, data, book)
	now := time.Now().UTC()
	cur := statement.PeriodOf(rules.PeriodMonth, now)
	prev := statement.PeriodOf(rules.PeriodMonth, cur.Start.Add(-time.Hour))
	l.settle([][]byte{
		[]byte(fmt.Sprintf(`{"provider":"studio-a","id":"old","type":"bet","amount":"100.00","currency":"EUR","occurred_at":%q,"game":"g","category":"slots"}`, prev.Start.Add(time.Hour).Format(time.RFC3339))),
		[]byte(fmt.Sprintf(`{"provider":"studio-a","id":"new","type":"bet","amount":"50.00","currency":"EUR","occurred_at":%q,"game":"g","category":"slots"}`, cur.Start.Add(time.Minute).Format(time.RFC3339))),
	})

	outs := statementsRun(t, "--data", data, "--period", cur.String(), "--party", "operator")
	if len(outs) != 1 || outs[0].Status != "provisional" || !outs[0].Statement.Provisional || outs[0].Statement.AsOf == "" {
		t.Fatalf("current month: %+v, want one provisional statement", outs)
	}
	if !strings.Contains(outs[0].Path, filepath.Join("operator", "provisional", cur.String()+"-EUR.note")) {
		t.Fatalf("provisional written to %s", outs[0].Path)
	}
	_, vkey, err := store.LoadOrCreateKey(filepath.Join(data, "keys", "ledger.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(outs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(b, note.VerifierList(v))
	if err != nil {
		t.Fatalf("provisional note does not verify: %v", err)
	}
	if !strings.Contains(n.Text, `"provisional":true,"as_of":"`) {
		t.Fatalf("signed note not marked provisional:\n%s", n.Text)
	}
	root := filepath.Join(data, "statements")
	chain, err := statement.Load(root, "operator", v)
	if err != nil || len(chain.Issued) != 0 {
		t.Fatalf("chain after a provisional: %v, %d issued; want none", err, len(chain.Issued))
	}

	// The month before has ended: final, in the chain.
	fin := statementsRun(t, "--data", data, "--period", prev.String(), "--party", "operator")
	if len(fin) != 1 || fin[0].Status != "issued" || fin[0].Statement.Provisional || strings.Contains(string(fin[0].Statement.Canonical()), "provisional") {
		t.Fatalf("previous month: %+v, want one final statement", fin)
	}
	again := statementsRun(t, "--data", data, "--period", cur.String(), "--party", "operator")
	if len(again) != 1 || again[0].Status != "provisional" || again[0].Statement.Previous != fin[0].Hash || again[0].Statement.Opening != "100.00" {
		t.Fatalf("provisional after the final: %+v (want previous %s, opening 100.00)", again[0].Statement, fin[0].Hash)
	}

	chain, err = statement.Load(root, "operator", v)
	if err != nil || len(chain.Issued) != 1 {
		t.Fatalf("chain: %v, %d issued; want the one final", err, len(chain.Issued))
	}
	if _, err := chain.Issue(again[0].Statement, nil); !errors.Is(err, statement.ErrProvisional) {
		t.Fatalf("Issue(provisional) = %v, want ErrProvisional", err)
	}
	// A provisional note moved into the chain breaks it.
	if err := os.WriteFile(filepath.Join(root, "operator", "000002-"+cur.String()+"-EUR.note"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := statement.Load(root, "operator", v); !errors.Is(err, statement.ErrChain) || !strings.Contains(err.Error(), "provisional") {
		t.Fatalf("Load with a provisional in the chain = %v, want ErrChain naming it", err)
	}
}
