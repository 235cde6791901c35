package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserPath finds a Chromium; without one the browser tests skip, unless
// TALLY_BROWSER_REQUIRED=1 (set by .ci/run) makes that a failure.
func browserPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("TALLY_BROWSER_REQUIRED") == "1" {
		t.Fatal("no chromium binary found and TALLY_BROWSER_REQUIRED=1")
	}
	t.Skip("no chromium binary found (chromium, chromium-browser, google-chrome, headless-shell): install one (apt-get install chromium) to run the browser tests")
	return ""
}

// browser starts a headless Chromium; each call of the returned function is
// a fresh browser context (its own cookies).
func browser(t *testing.T) func() (context.Context, context.CancelFunc) {
	path := browserPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	return func() (context.Context, context.CancelFunc) {
		ctx, c1 := chromedp.NewContext(actx)
		ctx, c2 := context.WithTimeout(ctx, 60*time.Second)
		return ctx, func() { c2(); c1() }
	}
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv("TALLY_SCREENSHOTS"); d != "" { // e.g. docs/images
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name), buf, 0o644); err != nil {
			t.Error(err)
		}
	}
}

func loginUI(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("balances")),
	)
}

// waitText polls sel's text until ok holds (bounded by ctx).
func waitText(ctx context.Context, sel string, ok func(string) bool) (string, error) {
	var s string
	var last error
	for i := 0; i < 400; i++ {
		// A read that races a form's navigation fails with "No node with
		// given id found" (the element belonged to the page being left):
		// read again on the next page instead of failing.
		t, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err == nil {
			s = t
			if ok(s) {
				return s, nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if last != nil {
		return s, fmt.Errorf("%s: %w", sel, last)
	}
	return s, fmt.Errorf("%s is still %q", sel, s)
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
