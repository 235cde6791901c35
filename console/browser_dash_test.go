package console_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// TestBrowserDash drives the dashboard, the portal's revenue by hour, the
// reconciliation upload and a statement download in a real headless
// Chromium (skips without one, like TestBrowser).
func TestBrowserDash(t *testing.T) {
	newTab := browser(t)
	e := start(t)
	gamingTraffic(e)
	issueStatement(t, e, "prov-a")
	issueStatement(t, e, "prov-b")

	t.Run("operator GGR per game and the counter", func(t *testing.T) {
		ctx, cancel := newTab()
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/"), loginUI("admin"), chromedp.Navigate(e.base+"/?period=2026-11-01"),
			chromedp.WaitVisible(chromedp.ID("ggr-games"))); err != nil {
			t.Fatal(err)
		}
		games, err := waitText(ctx, "#ggr-games", func(s string) bool { return strings.Contains(s, "g9") })
		if err != nil || !strings.Contains(games, "g1") || !strings.Contains(games, "70.00") || !strings.Contains(games, "200.00") {
			t.Fatalf("GGR per game %q: %v", games, err)
		}
		bars, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("svg.chart rect"), chromedp.AtLeast(0)))
		if err != nil || len(bars) != 24 {
			t.Fatalf("GGR chart: %d bars, want 24 (the day's hours): %v", len(bars), err)
		}
		tall, err := chromedp.Run(ctx, chromedp.AttributesAll(chromedp.CSSAll(`svg.chart rect:not([height="0.0"])`)))
		if err != nil || len(tall) != 2 || tall[0]["data-amount"] != "70.00" || tall[1]["data-amount"] != "200.00" {
			t.Fatalf("GGR chart's bars with a value: %v: %v", tall, err)
		}
		if _, err := waitText(ctx, "#live", func(s string) bool { return s == "live" }); err != nil {
			t.Fatalf("live feed: %v", err)
		}
		before, err := waitText(ctx, "#entries", func(s string) bool { return s != "" })
		if err != nil {
			t.Fatal(err)
		}
		e.sendTx("prov-a", `{"id":"a-5","type":"bet","amount":"10.00","currency":"EUR","game":"g1","occurred_at":"2026-11-01T10:30:00Z"}`)
		if _, err := waitText(ctx, "#entries", func(s string) bool { return s != before }); err != nil {
			t.Fatalf("the settled counter never moved from %s: %v", before, err)
		}
		screenshot(t, ctx, "console-operator.png")
	})

	t.Run("partner revenue by hour and a statement download", func(t *testing.T) {
		ctx, cancel := newTab()
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/"), loginUI("alice"), chromedp.Navigate(e.base+"/?period=2026-11-01"),
			chromedp.WaitVisible(chromedp.ID("revenue"))); err != nil {
			t.Fatal(err)
		}
		rev, err := waitText(ctx, "#revenue", func(s string) bool { return strings.Contains(s, "EUR") })
		if err != nil || !strings.Contains(rev, "prov-a") || !strings.Contains(rev, "2026-11-01T10:00:00Z") {
			t.Fatalf("revenue by hour %q: %v", rev, err)
		}
		body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil || strings.Contains(body, "prov-b") || strings.Contains(body, "g9") || strings.Contains(body, "Reconcile") {
			t.Fatalf("alice's portal shows another party or an operator page: %v %s", err, body)
		}
		screenshot(t, ctx, "console-partner.png")

		// Download the statement's CSV as a browser does: a click, a file.
		dir := t.TempDir()
		progress := chromedp.Events(ctx, cdpbrowser.DownloadProgress)
		if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: ptr(true)})
			return err
		}), chromedp.Click(chromedp.CSS(`#statements a[href$="/csv"]`))); err != nil {
			t.Fatal(err)
		}
		var got string
		for ev, err := range progress { // bounded by the tab's 60 s context
			if err != nil {
				t.Fatalf("download: %v", err)
			}
			if ev.State == cdpbrowser.DownloadProgressStateCompleted {
				got = filepath.Join(dir, ev.GUID)
				break
			}
			if ev.State == cdpbrowser.DownloadProgressStateCanceled {
				t.Fatal("download canceled")
			}
		}
		b, err := os.ReadFile(got)
		if err != nil || !strings.HasPrefix(string(b), "party,") || !strings.Contains(string(b), "prov-a") || strings.Contains(string(b), "prov-b") {
			t.Fatalf("downloaded statement %q: %v", b, err)
		}
	})

	t.Run("operator uploads a report with planted breaks", func(t *testing.T) {
		ctx, cancel := newTab()
		defer cancel()
		report := filepath.Join(t.TempDir(), "prov-a-2026-11.jsonl")
		if err := os.WriteFile(report, []byte(plantedReport), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/"), loginUI("admin"), chromedp.Click(chromedp.ID("nav-reconcile")),
			chromedp.WaitVisible(chromedp.ID("recon-form")),
			chromedp.SendKeys(chromedp.ID("recon-provider"), "prov-a"),
			chromedp.SendKeys(chromedp.ID("recon-period"), "2026-11"),
			chromedp.SetUploadFiles(chromedp.ID("recon-file"), []string{report}),
			chromedp.Click(chromedp.ID("recon-submit")),
			chromedp.WaitVisible(chromedp.ID("recon-breaks-list"))); err != nil {
			t.Fatal(err)
		}
		list, err := waitText(ctx, "#recon-breaks-list", func(s string) bool { return s != "" })
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"missing\ta-9", "mismatched\ta-2", "duplicate\ta-3", "extra\ta-4", "extra\ta-5", "rejected"} {
			if !strings.Contains(list, want) {
				t.Errorf("the breaks list lacks %q:\n%s", want, list)
			}
		}
		if n, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("recon-breaks"))); err != nil || n != "6" { // a-5, sent by the first subtest, is a sixth (extra)
			t.Errorf("breaks %q: %v", n, err)
		}
		screenshot(t, ctx, "console-reconcile.png")
	})
}

func ptr[T any](v T) *T { return &v }
