package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// TestBrowserCaseApproval: in a real headless Chromium, quinn (an
// approver) proposes an adjustment for an exception and is not offered to
// approve it; paul, logged in in a second browser context, approves it and
// it is posted through the node's own Poster (the operator log, wired by
// nodes.Start: no stand-in). The case page then shows the correction in
// the ledger, and with the node stopped audit.Verify (tally verify)
// recomputes it as one correction entry that names the exception, the
// proposer and the approver. Screenshots stay in the test's temp dir (and
// TALLY_SCREENSHOTS when set).
func TestBrowserCaseApproval(t *testing.T) {
	newTab := browser(t)
	e := start(t)
	e.addUser("paul", console.RoleApprover)
	e.addUser("quinn", console.RoleApprover)
	id := e.overReversal(1)

	maker, cancel := newTab()
	defer cancel()
	if err := chromedp.Do(maker, chromedp.Navigate(e.base+"/"), loginUI("quinn"), chromedp.Click(chromedp.ID("nav-cases")),
		chromedp.WaitVisible(chromedp.ID("cases"))); err != nil {
		t.Fatal(err)
	}
	if _, err := waitText(maker, "#cases", func(s string) bool { return strings.Contains(s, id) && strings.Contains(s, "over_reversal") }); err != nil {
		t.Fatalf("the queue does not list %s: %v", id, err)
	}
	screenshot(t, maker, "console-cases.png")
	if err := chromedp.Do(maker, chromedp.Navigate(e.base+"/cases/"+id), chromedp.WaitVisible(chromedp.ID("propose-form")),
		chromedp.SetValue(chromedp.ID("currency"), "EUR"),
		chromedp.SendKeys(chromedp.ID("lines"), "prov-a=10.00;operator=-10.00"),
		chromedp.SendKeys(chromedp.ID("propose-reason"), "refund the excess of the over-reversal"),
		chromedp.Click(chromedp.ID("propose"))); err != nil {
		t.Fatal(err)
	}
	if st, err := waitText(maker, "#state", func(s string) bool { return s == "proposed" }); err != nil {
		t.Fatalf("after proposing: state %q: %v", st, err)
	}
	body, err := chromedp.Run(maker, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "another approver must check it") || strings.Contains(body, "Approve") {
		t.Fatalf("the proposer's page offers approval or lacks the notice: %s", body)
	}
	screenshot(t, maker, "console-proposed.png")

	checker, cancel2 := newTab()
	defer cancel2()
	if err := chromedp.Do(checker, chromedp.Navigate(e.base+"/"), loginUI("paul"), chromedp.Navigate(e.base+"/cases/"+id),
		chromedp.WaitVisible(chromedp.ID("approve"))); err != nil {
		t.Fatal(err)
	}
	if p, err := waitText(checker, "#proposal", func(s string) bool { return strings.Contains(s, "prov-a=10.00;operator=-10.00") }); err != nil {
		t.Fatalf("proposal shown to the checker: %q: %v", p, err)
	}
	screenshot(t, checker, "console-approve.png")
	if err := chromedp.Do(checker, chromedp.Click(chromedp.ID("approve"))); err != nil {
		t.Fatal(err)
	}
	if st, err := waitText(checker, "#state", func(s string) bool { return s == console.StatePosted }); err != nil {
		t.Fatalf("after approving: state %q: %v", st, err)
	}
	if p, err := waitText(checker, "#posted", func(s string) bool { return strings.Contains(s, "adj-"+id+"-1") }); err != nil {
		t.Fatalf("posted row %q: %v", p, err)
	}
	// The page is rendered on the server: reload until the settle index
	// has the correction (bounded: 40 reloads).
	var inLedger string
	for range 40 {
		p, err := chromedp.Run(checker, chromedp.Text(chromedp.ID("posted")))
		if err == nil && strings.Contains(p, "in the ledger at partition") {
			inLedger = p
			break
		}
		time.Sleep(250 * time.Millisecond)
		if err := chromedp.Do(checker, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("posted"))); err != nil {
			t.Fatal(err)
		}
	}
	if inLedger == "" {
		t.Fatal("the posted correction never showed in the ledger on the case page")
	}
	screenshot(t, checker, "console-posted.png")

	// Offline, as tally verify does: the correction is one entry of its
	// own, recomputed from its meta, and the index balances match.
	_, vkey, err := store.LoadOrCreateKey(e.cfg.KeyPath(), e.cfg.Settle.Origin)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.node.Close(); err != nil {
		t.Fatal(err)
	}
	idx, err := settle.OpenIndex(e.cfg.IndexDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	pbs, err := idx.Committed()
	idx.Close()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(e.cfg.LedgerDir(), audit.Options{Key: vkey, Balances: &audit.Balances{Source: "index", Partitions: pbs}})
	if err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	if rep.Corrections != 1 || len(rep.BalancesChecked) == 0 {
		t.Fatalf("audit: %d corrections, balances of %v", rep.Corrections, rep.BalancesChecked)
	}
	var got []store.Entry
	if err := store.ForEachEntry(e.cfg.LedgerDir(), func(en store.Entry) error {
		if en.Provider == txn.OpsID {
			got = append(got, en)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Tx.ID != "adj-"+id+"-1" || got[0].Tx.Type != txn.Correction {
		t.Fatalf("operator entries in the ledger: %+v", got)
	}
	if m := got[0].Tx.Meta; m["exception"] != id || m["proposed_by"] != "quinn" || m["approved_by"] != "paul" || m["lines"] != "prov-a=10.00;operator=-10.00" {
		t.Fatalf("the correction's meta %v", m)
	}
}
