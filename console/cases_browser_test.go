package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tally-mesh/tally/console"
)

// TestBrowserCaseApproval: in a real headless Chromium, quinn (an
// approver) proposes an adjustment for an exception and is not offered to
// approve it; paul, logged in in a second browser context, approves it and
// it is posted. Screenshots stay in the test's temp dir (and
// TALLY_SCREENSHOTS when set).
func TestBrowserCaseApproval(t *testing.T) {
	newTab := browser(t)
	e, poster := workflowEnv(t)
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
	screenshot(t, checker, "console-posted.png")
	got := poster.all(t)
	if len(got) != 1 || got[0].Meta["proposed_by"] != "quinn" || got[0].Meta["approved_by"] != "paul" {
		t.Fatalf("posted %+v", got)
	}
}
