package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tally-mesh/tally/internal/browsertest"
)

// browser starts a headless Chromium (internal/browsertest: skips without
// one unless TALLY_BROWSER_REQUIRED=1); each call of the returned function
// is a fresh browser context (its own cookies) bounded by 60 s.
func browser(t *testing.T) func() (context.Context, context.CancelFunc) {
	start := browsertest.Start(t)
	return func() (context.Context, context.CancelFunc) { return start(60 * time.Second) }
}

// screenshot keeps a screenshot in the test's temp dir (browsertest.Shot).
func screenshot(t *testing.T, ctx context.Context, name string) {
	browsertest.Shot(t, ctx, t.TempDir(), name)
}

func loginUI(name string) chromedp.Action[chromedp.Void] { return browsertest.Login(name, pw) }

// waitText polls sel's text until ok holds (browsertest.WaitText).
func waitText(ctx context.Context, sel string, ok func(string) bool) (string, error) {
	return browsertest.WaitText(ctx, sel, ok)
}

// TestBrowser logs in as an operator and as a partner in a real headless
// Chromium: each sees its balances, and follows a live update.
func TestBrowser(t *testing.T) {
	newTab := browser(t)
	e := start(t)
	e.send("prov-a", "a-1", "100.00")
	e.send("prov-b", "b-1", "200.00")
	e.waitSettled("prov-a", "10.00")
	e.waitSettled("prov-b", "20.00")
	issueStatement(t, e, "prov-a")

	t.Run("operator", func(t *testing.T) {
		ctx, cancel := newTab()
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/"), loginUI("admin")); err != nil {
			t.Fatal(err)
		}
		bal, err := waitText(ctx, "#balances", func(s string) bool { return strings.Contains(s, "prov-b") })
		if err != nil || !strings.Contains(bal, "prov-a") || !strings.Contains(bal, "operator") {
			t.Fatalf("operator's balances %q: %v", bal, err)
		}
		if _, err := waitText(ctx, "#live", func(s string) bool { return s == "live" }); err != nil {
			t.Fatalf("live feed: %v", err)
		}
		before, err := waitText(ctx, "#entries", func(s string) bool { return s != "" })
		if err != nil {
			t.Fatal(err)
		}
		e.send("prov-a", "a-2", "50.00")
		after, err := waitText(ctx, "#entries", func(s string) bool { return s != before })
		if err != nil {
			t.Fatalf("the settled counter never moved from %s: %v", before, err)
		}
		if _, err := waitText(ctx, "#activity", func(s string) bool { return strings.Contains(s, "a-2") }); err != nil {
			t.Fatalf("a-2 never reached the activity table: %v", err)
		}
		t.Logf("settled counter %s → %s", before, after)
		screenshot(t, ctx, "console-operator.png")
	})

	t.Run("partner", func(t *testing.T) {
		ctx, cancel := newTab()
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/"), loginUI("alice")); err != nil {
			t.Fatal(err)
		}
		body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(body, "prov-b") || strings.Contains(body, "b-1") {
			t.Fatalf("alice's portal shows bob's party: %s", body)
		}
		if !strings.Contains(body, "2026-11") {
			t.Fatalf("alice's statement is not listed: %s", body)
		}
		if _, err := waitText(ctx, "#live", func(s string) bool { return s == "live" }); err != nil {
			t.Fatalf("live feed: %v", err)
		}
		bal, _ := waitText(ctx, "#balances", func(s string) bool { return true })
		e.send("prov-a", "a-3", "1000.00")
		if bal, err = waitText(ctx, "#balances", func(s string) bool { return s != bal }); err != nil || !strings.Contains(bal, "prov-a") || strings.Contains(bal, "operator") {
			t.Fatalf("alice's balance after a-3: %q: %v", bal, err)
		}
		screenshot(t, ctx, "console-partner.png")
		// Check my transaction: the entry and its inclusion proof.
		var status string
		for i := 0; i < 100 && !strings.Contains(status, "Included"); i++ {
			if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/check?provider=prov-a&id=a-1")); err != nil {
				t.Fatal(err)
			}
			if status, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("proof-status"))); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(status, "Included") {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if !strings.Contains(status, "Included") {
			t.Fatalf("proof status %q", status)
		}
		screenshot(t, ctx, "console-check.png")
		if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/check?provider=prov-b&id=b-1")); err != nil {
			t.Fatal(err)
		}
		errText, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errText, "No such transaction") {
			t.Fatalf("alice checking bob's transaction: %q", errText)
		}
	})
}
