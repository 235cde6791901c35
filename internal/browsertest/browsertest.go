// Package browsertest drives a real headless Chromium (chromedp) for the
// console's browser tests and the demo walkthrough: one skip rule (no
// browser: skip, unless TALLY_BROWSER_REQUIRED=1, set by .ci/run, makes it a
// failure), fresh browser contexts, bounded polling that survives a form's
// navigation, screenshots.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path finds a Chromium; without one the test skips, saying why, unless
// TALLY_BROWSER_REQUIRED=1 makes that a failure.
func Path(t testing.TB) string {
	t.Helper()
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

// Start starts one headless Chromium (1280×900) for the test; each call of
// the returned function is a fresh browser context (its own cookies),
// bounded by within.
func Start(t testing.TB) func(within time.Duration) (context.Context, context.CancelFunc) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(Path(t)), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	return func(within time.Duration) (context.Context, context.CancelFunc) {
		ctx, c1 := chromedp.NewContext(actx)
		ctx, c2 := context.WithTimeout(ctx, within)
		return ctx, func() { c2(); c1() }
	}
}

// Login fills the console's login form and waits for the home page.
func Login(name, password string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("balances")),
	)
}

// WaitText reads sel's text until ok holds: at most 600 reads 100 ms apart,
// bounded by ctx. A read that races a form's navigation fails with "No node
// with given id found" (the element belonged to the page being left) and is
// read again on the next page instead of failing.
func WaitText(ctx context.Context, sel string, ok func(string) bool) (string, error) {
	var s string
	var last error
	for range 600 {
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err == nil {
			s = v
			if ok(s) {
				return s, nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("%s is %q: %w", sel, s, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if last != nil {
		return s, fmt.Errorf("%s: %w", sel, last)
	}
	return s, fmt.Errorf("%s is still %q", sel, s)
}

// Shot saves a full-page screenshot as dir/name, and the visible part of
// the page (1280×900) in $TALLY_SCREENSHOTS when set: docs/images is made
// that way, where a whole page of live activity would weigh half a megabyte.
func Shot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
		t.Error(err)
	}
	if d := os.Getenv("TALLY_SCREENSHOTS"); d != "" {
		if buf, err = chromedp.Run(ctx, chromedp.CaptureScreenshot()); err != nil {
			t.Logf("screenshot %s: %v", name, err)
		} else if err := os.WriteFile(filepath.Join(d, name), buf, 0o644); err != nil {
			t.Error(err)
		}
	}
}
