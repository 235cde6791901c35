package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tally-mesh/tally/console"
)

// TestBrowserStatementReview walks a signed statement through /reviews in
// a real headless Chromium (same skip rules as TestBrowser): admin submits
// it (draft) and is not offered to approve what it submitted; an approver
// in another browser context approves it; admin issues it. The partner
// (alice), in a third context, sees no statement until it is issued, and
// then sees it in its portal.
func TestBrowserStatementReview(t *testing.T) {
	newTab := browser(t)
	e := start(t)
	e.addUser("reviewer", console.RoleApprover)
	e.send("prov-a", "a-1", "100.00")
	e.waitSettled("prov-a", "10.00")
	signStatement(t, e, "prov-a")
	const row = `tr[data-statement="prov-a/1"]`
	state := func(ctx context.Context, want string) {
		t.Helper()
		if s, err := waitText(ctx, row+" td.state", func(s string) bool { return s == want }); err != nil {
			t.Fatalf("statement state %q, want %s: %v", s, want, err)
		}
	}

	partner, cancel := newTab()
	defer cancel()
	if err := chromedp.Do(partner, chromedp.Navigate(e.base+"/"), loginUI("alice")); err != nil {
		t.Fatal(err)
	}
	if s, err := chromedp.Run(partner, chromedp.Text(chromedp.ID("statements"))); err != nil || !strings.Contains(s, "No statements issued yet") {
		t.Fatalf("the partner's statements before the review: %q: %v", s, err)
	}

	maker, cancel2 := newTab()
	defer cancel2()
	if err := chromedp.Do(maker, chromedp.Navigate(e.base+"/"), loginUI("admin"), chromedp.Navigate(e.base+"/reviews"),
		chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatal(err)
	}
	state(maker, "unsubmitted")
	if err := chromedp.Do(maker, chromedp.Click(chromedp.CSS(row+` form[action$="/submit"] button`))); err != nil {
		t.Fatal(err)
	}
	state(maker, "draft")
	// admin may approve statements, but not one it submitted itself.
	if n, err := chromedp.Run(maker, chromedp.Nodes(chromedp.CSS(row+` form[action$="/approve"]`), chromedp.AtLeast(0))); err != nil || len(n) != 0 {
		t.Fatalf("the submitter is offered to approve (%d forms, %v)", len(n), err)
	}

	checker, cancel3 := newTab()
	defer cancel3()
	if err := chromedp.Do(checker, chromedp.Navigate(e.base+"/"), loginUI("reviewer"), chromedp.Navigate(e.base+"/reviews"),
		chromedp.WaitVisible(chromedp.CSS(row+` form[action$="/approve"]`))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, checker, "console-reviews.png")
	if err := chromedp.Do(checker, chromedp.Click(chromedp.CSS(row+` form[action$="/approve"] button`))); err != nil {
		t.Fatal(err)
	}
	state(checker, "approved")
	// An approved statement is not yet the partner's.
	if err := chromedp.Do(partner, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("statements"))); err != nil {
		t.Fatal(err)
	}
	if s, err := chromedp.Run(partner, chromedp.Text(chromedp.ID("statements"))); err != nil || !strings.Contains(s, "No statements issued yet") {
		t.Fatalf("the partner sees an approved, unissued statement: %q: %v", s, err)
	}

	if err := chromedp.Do(maker, chromedp.Reload(), chromedp.Click(chromedp.CSS(row+` form[action$="/issue"] button`))); err != nil {
		t.Fatal(err)
	}
	state(maker, "issued")
	if by, err := chromedp.Run(maker, chromedp.Text(chromedp.CSS(row+" td:nth-child(7)"))); err != nil || by != "admin / reviewer / admin" {
		t.Errorf("submitted / approved / issued by %q: %v", by, err)
	}
	if err := chromedp.Do(partner, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("statements"))); err != nil {
		t.Fatal(err)
	}
	if s, err := waitText(partner, "#statements", func(s string) bool { return strings.Contains(s, "2026-11") }); err != nil || !strings.Contains(s, "prov-a") {
		t.Fatalf("the partner's statements after issue: %q: %v", s, err)
	}
	// The review page does not exist for a partner.
	if err := chromedp.Do(partner, chromedp.Navigate(e.base+"/reviews")); err != nil {
		t.Fatal(err)
	}
	if body, err := chromedp.Run(partner, chromedp.Text(chromedp.CSS("body"))); err != nil || strings.Contains(body, "Statement reviews") {
		t.Fatalf("a partner reached /reviews: %v\n%s", err, body)
	}
}
