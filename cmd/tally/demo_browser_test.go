package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tally-mesh/tally/internal/browsertest"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/txn"
)

// demoOutput is what `tally demo` prints for a newcomer to act on.
type demoOutput struct {
	url, opsPw, checkerPw, partnerPw string
	natsURL, studioPw                string // tally send --nats … --provider studio-1 --user studio-1 --password …
	overReversal, conflictBet        string // the planted over-reversal, and the bet resent with another amount
}

var (
	reConsole  = regexp.MustCompile(`console at (http://127\.0\.0\.1:\d+)/ `)
	reOps      = regexp.MustCompile(`  operator: ops / (\S+) `)
	reChecker  = regexp.MustCompile(`  approver: checker / (\S+) `)
	rePartner  = regexp.MustCompile(`  partner:  studio-1 / (\S+) `)
	reSendNATS = regexp.MustCompile(`tally send --nats (\S+) --provider studio-1 --user studio-1 --password (\S+) FILE`)
	rePlanted  = regexp.MustCompile(`over-reversal (studio-1-r1-rb-\d+), .* conflicting resend of (studio-1-r1-\d+) `)
)

// readDemoOutput waits (up to within) until the demo printed its console
// URL, logins, send line and planted exceptions, and parses them.
func readDemoOutput(t *testing.T, log string, within time.Duration) demoOutput {
	t.Helper()
	var d demoOutput
	natstest.Eventually(t, within, func() error {
		b, err := os.ReadFile(log)
		if err != nil {
			return err
		}
		s := string(b)
		m := []([]string){reConsole.FindStringSubmatch(s), reOps.FindStringSubmatch(s), reChecker.FindStringSubmatch(s),
			rePartner.FindStringSubmatch(s), reSendNATS.FindStringSubmatch(s), rePlanted.FindStringSubmatch(s)}
		for i, x := range m {
			if x == nil {
				return fmt.Errorf("the demo has not printed part %d yet:\n%s", i, s)
			}
		}
		d = demoOutput{url: m[0][1], opsPw: m[1][1], checkerPw: m[2][1], partnerPw: m[3][1], natsURL: m[4][1], studioPw: m[4][2],
			overReversal: m[5][1], conflictBet: m[5][2]}
		return nil
	})
	return d
}

// TestDemoBrowserWalk is the "Done when", done by a browser instead
// of a newcomer: it runs the real `tally demo` as a child process, reads the
// URL and the three logins it prints, and walks the console in headless
// Chromium: the operator (ops) watches the settled counter move and finds
// the planted over-reversal, proposes an adjustment; the approver (checker),
// in another browser context, approves it; the case is posted through the
// operator log and shows in the ledger; the partner (studio-1) sees only its
// party, its revenue by hour, checks its transaction; a statement (of
// transactions sent with the printed `tally send` line, dated yesterday, and
// signed with `tally statements`) goes draft → approved → issued in
// /reviews and the partner then sees it; a provider report made of the same
// transactions with planted breaks lists each break. After the demo exits,
// `tally verify` passes and counts the one correction.
func TestDemoBrowserWalk(t *testing.T) {
	newTab := browsertest.Start(t)
	dir := t.TempDir()
	shots := filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "demo")
	log := filepath.Join(dir, "demo.log")
	demo := startChildLog(t, log, os.O_TRUNC, "demo", "--duration", "10m", "--data", data, "--providers", "2", "--rate", "40", "--seed", "11")
	d := readDemoOutput(t, log, 60*time.Second)
	t.Logf("demo console at %s", d.url)

	// Transactions of studio-1 dated yesterday, sent the way the demo
	// prints: they make a closed period for a statement and a report to
	// reconcile, apart from the simulated traffic (dated now).
	yesterday := time.Now().UTC().AddDate(0, 0, -1)
	day := yesterday.Format("2006-01-02")
	at := func(h int) string { return yesterday.Format("2006-01-02") + fmt.Sprintf("T%02d:00:00Z", h) }
	txs := []string{
		`{"id":"walk-1","type":"bet","amount":"10.00","currency":"EUR","game":"book-of-x","occurred_at":"` + at(9) + `"}`,
		`{"id":"walk-2","type":"bet","amount":"20.00","currency":"EUR","game":"book-of-x","occurred_at":"` + at(10) + `"}`,
		`{"id":"walk-3","type":"win","amount":"5.00","currency":"EUR","game":"book-of-x","occurred_at":"` + at(11) + `"}`,
		`{"id":"walk-4","type":"bet","amount":"7.50","currency":"EUR","game":"star-reels","occurred_at":"` + at(12) + `"}`,
	}
	sendFile := filepath.Join(dir, "walk.jsonl")
	if err := os.WriteFile(sendFile, []byte(strings.Join(txs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "send", "--nats", d.natsURL, "--provider", "studio-1", "--user", "studio-1", "--password", d.studioPw, sendFile); err != nil || strings.Count(out, "accepted") != len(txs) {
		t.Fatalf("tally send: %v\n%s", err, out)
	}
	natstest.Eventually(t, 30*time.Second, func() error {
		ids, err := ledgerIDs(filepath.Join(data, "ledger"))
		if err != nil {
			return err
		}
		for i := 1; i <= len(txs); i++ {
			if ids[fmt.Sprintf("studio-1/walk-%d", i)] != 1 {
				return fmt.Errorf("walk-%d not in the ledger yet", i)
			}
		}
		return nil
	})

	var caseID string
	t.Run("operator: live counter, the over-reversal, a proposal", func(t *testing.T) {
		ctx, cancel := newTab(60 * time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(d.url+"/"), browsertest.Login("ops", d.opsPw)); err != nil {
			t.Fatal(err)
		}
		if _, err := browsertest.WaitText(ctx, "#live", func(s string) bool { return s == "live" }); err != nil {
			t.Fatalf("live feed: %v", err)
		}
		before, err := browsertest.WaitText(ctx, "#entries", func(s string) bool { return s != "" })
		if err != nil {
			t.Fatal(err)
		}
		after, err := browsertest.WaitText(ctx, "#entries", func(s string) bool { return s != before })
		if err != nil {
			t.Fatalf("the settled counter never moved from %s while the demo's providers send: %v", before, err)
		}
		t.Logf("settled counter %s → %s", before, after)
		if q, err := browsertest.WaitText(ctx, "#exception-queue", func(s string) bool { return strings.Contains(s, "over_reversal") }); err != nil {
			t.Fatalf("the dashboard's exception queue %q: %v", q, err)
		}
		browsertest.Shot(t, ctx, shots, "console-operator.png")

		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("nav-cases")), chromedp.WaitVisible(chromedp.ID("cases"))); err != nil {
			t.Fatal(err)
		}
		if _, err := browsertest.WaitText(ctx, "#cases", func(s string) bool { return strings.Contains(s, d.overReversal) }); err != nil {
			t.Fatalf("the queue lacks the planted over-reversal %s: %v", d.overReversal, err)
		}
		attrs, err := chromedp.Run(ctx, chromedp.AttributesAll(chromedp.CSSAll("#cases tr[data-case]")))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range attrs {
			txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#cases tr[data-case="`+a["data-case"]+`"] td:nth-child(6)`)))
			if err == nil && strings.TrimSpace(txt) == d.overReversal {
				caseID = a["data-case"]
			}
		}
		if caseID == "" {
			t.Fatalf("no case row for %s", d.overReversal)
		}
		browsertest.Shot(t, ctx, shots, "console-cases.png")
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#cases a[href="/cases/`+caseID+`"]`)), chromedp.WaitVisible(chromedp.ID("propose-form")),
			chromedp.SetValue(chromedp.ID("currency"), "EUR"),
			chromedp.SendKeys(chromedp.ID("lines"), "studio-1=1.00\noperator=-1.00"),
			chromedp.SendKeys(chromedp.ID("propose-reason"), "goodwill for the refused second rollback"),
			chromedp.Click(chromedp.ID("propose"))); err != nil {
			t.Fatal(err)
		}
		if st, err := browsertest.WaitText(ctx, "#state", func(s string) bool { return s == "proposed" }); err != nil {
			t.Fatalf("after proposing: %q: %v", st, err)
		}
		if w, err := browsertest.WaitText(ctx, "#wait", func(s string) bool { return strings.Contains(s, "another approver must check it") }); err != nil {
			t.Fatalf("the maker's notice %q: %v", w, err)
		}
		if n, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.ID("approve"), chromedp.AtLeast(0))); err != nil || len(n) != 0 {
			t.Fatalf("the maker is offered to approve its own proposal (%d buttons, %v)", len(n), err)
		}
		browsertest.Shot(t, ctx, shots, "console-proposed.png")
	})
	if caseID == "" {
		t.FailNow()
	}

	t.Run("approver: approves, the correction is posted and in the ledger", func(t *testing.T) {
		ctx, cancel := newTab(60 * time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(d.url+"/"), browsertest.Login("checker", d.checkerPw), chromedp.Navigate(d.url+"/cases/"+caseID),
			chromedp.WaitVisible(chromedp.ID("approve"))); err != nil {
			t.Fatal(err)
		}
		if p, err := browsertest.WaitText(ctx, "#proposal", func(s string) bool {
			return strings.Contains(s, "studio-1=1.00;operator=-1.00") && strings.Contains(s, "proposed by ops")
		}); err != nil {
			t.Fatalf("the proposal shown to the checker: %q: %v", p, err)
		}
		browsertest.Shot(t, ctx, shots, "console-approve.png")
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("approve"))); err != nil {
			t.Fatal(err)
		}
		if st, err := browsertest.WaitText(ctx, "#state", func(s string) bool { return s == "posted" }); err != nil {
			t.Fatalf("after approving: %q: %v", st, err)
		}
		// The page is rendered on the server: reload until the settle
		// index has the correction (bounded: 40 reloads).
		var posted string
		for range 40 {
			p, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("posted")))
			if err == nil && strings.Contains(p, "in the ledger at partition") {
				posted = p
				break
			}
			time.Sleep(500 * time.Millisecond)
			if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("posted"))); err != nil {
				t.Fatal(err)
			}
		}
		if !strings.Contains(posted, "adj-"+caseID+"-1") {
			t.Fatalf("the case's posted row %q never showed the correction in the ledger", posted)
		}
		browsertest.Shot(t, ctx, shots, "console-posted.png")
	})

	t.Run("partner: only studio-1, revenue by hour, check a transaction", func(t *testing.T) {
		ctx, cancel := newTab(60 * time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(d.url+"/"), browsertest.Login("studio-1", d.partnerPw), chromedp.WaitVisible(chromedp.ID("revenue"))); err != nil {
			t.Fatal(err)
		}
		if _, err := browsertest.WaitText(ctx, "#live", func(s string) bool { return s == "live" }); err != nil {
			t.Fatalf("live feed: %v", err)
		}
		bal, err := browsertest.WaitText(ctx, "#balances", func(s string) bool { return strings.Contains(s, "studio-1") })
		if err != nil {
			t.Fatal(err)
		}
		rev, err := browsertest.WaitText(ctx, "#revenue", func(s string) bool { return strings.Contains(s, "EUR") })
		if err != nil || !strings.Contains(rev, "studio-1") {
			t.Fatalf("revenue by hour %q: %v", rev, err)
		}
		body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatal(err)
		}
		for _, other := range []string{"studio-2", "operator", "uploads", "Reconcile", "Exceptions"} {
			if strings.Contains(bal+body, other) {
				t.Errorf("the partner's portal shows %q:\n%s", other, body)
			}
		}
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS(`form[action="/check"] input[name="provider"]`), "studio-1"),
			chromedp.SendKeys(chromedp.CSS(`form[action="/check"] input[name="id"]`), d.conflictBet),
			chromedp.Click(chromedp.CSS(`form[action="/check"] button`)),
			chromedp.WaitVisible(chromedp.ID("entry"))); err != nil {
			t.Fatal(err)
		}
		if e, err := browsertest.WaitText(ctx, "#entry", func(s string) bool { return strings.Contains(s, d.conflictBet) }); err != nil {
			t.Fatalf("the checked entry %q: %v", e, err)
		}
		// The proof needs a signed checkpoint covering the entry: the demo
		// signs one per segment, so reload until it says ok (bounded).
		var status string
		for range 30 {
			s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("proof-status")))
			if err == nil && strings.HasPrefix(s, "Included in the signed tree") {
				status = s
				break
			}
			time.Sleep(500 * time.Millisecond)
			if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("entry"))); err != nil {
				t.Fatal(err)
			}
		}
		if status == "" {
			t.Error("the partner's transaction never got an inclusion proof against a signed checkpoint")
		} else if r, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("receipt"))); err != nil || !strings.Contains(r, "c2sp.org/tlog-proof") {
			t.Errorf("receipt %q: %v", r, err)
		}
		browsertest.Shot(t, ctx, shots, "console-check.png")
		// Another provider's transaction is answered as if it did not exist.
		if err := chromedp.Do(ctx, chromedp.Navigate(d.url+"/check?provider=studio-2&id=studio-2-r1-1")); err != nil {
			t.Fatal(err)
		}
		if n, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.ID("entry"), chromedp.AtLeast(0))); err != nil || len(n) != 0 {
			t.Fatalf("the partner was shown a studio-2 transaction (%v)", err)
		}
		if msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error"))); err != nil || msg == "" {
			t.Fatalf("a studio-2 transaction for the partner: no error shown: %q %v", msg, err)
		}
	})

	t.Run("statement review: draft, approved, issued, then the partner sees it", func(t *testing.T) {
		if out, err := runCLI(t, "statements", "--data", data, "--period", day, "--party", "studio-1"); err != nil || !strings.Contains(out, `"issued"`) {
			t.Fatalf("tally statements: %v\n%s", err, out)
		}
		row := `tr[data-statement="studio-1/1"]`
		ops, cancel := newTab(60 * time.Second)
		defer cancel()
		checker, cancel2 := newTab(60 * time.Second)
		defer cancel2()
		partner, cancel3 := newTab(60 * time.Second)
		defer cancel3()
		if err := chromedp.Do(partner, chromedp.Navigate(d.url+"/"), browsertest.Login("studio-1", d.partnerPw)); err != nil {
			t.Fatal(err)
		}
		if s, err := chromedp.Run(partner, chromedp.Text(chromedp.ID("statements"))); err != nil || strings.Contains(s, day) {
			t.Fatalf("the partner sees the statement before its review: %v\n%s", err, s)
		}
		state := func(ctx context.Context, want string) {
			t.Helper()
			if s, err := browsertest.WaitText(ctx, row+" td.state", func(s string) bool { return s == want }); err != nil {
				t.Fatalf("statement state %q, want %s: %v", s, want, err)
			}
		}
		if err := chromedp.Do(ops, chromedp.Navigate(d.url+"/"), browsertest.Login("ops", d.opsPw), chromedp.Navigate(d.url+"/reviews"),
			chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
			t.Fatal(err)
		}
		state(ops, "unsubmitted")
		if err := chromedp.Do(ops, chromedp.Click(chromedp.CSS(row+` form[action$="/submit"] button`))); err != nil {
			t.Fatal(err)
		}
		state(ops, "draft")
		if n, err := chromedp.Run(ops, chromedp.Nodes(chromedp.CSS(row+` form[action$="/approve"]`), chromedp.AtLeast(0))); err != nil || len(n) != 0 {
			t.Fatalf("the submitter is offered to approve (%d forms, %v)", len(n), err)
		}
		if err := chromedp.Do(checker, chromedp.Navigate(d.url+"/"), browsertest.Login("checker", d.checkerPw), chromedp.Navigate(d.url+"/reviews"),
			chromedp.WaitVisible(chromedp.CSS(row+` form[action$="/approve"]`))); err != nil {
			t.Fatal(err)
		}
		browsertest.Shot(t, checker, shots, "console-reviews.png")
		if err := chromedp.Do(checker, chromedp.Click(chromedp.CSS(row+` form[action$="/approve"] button`))); err != nil {
			t.Fatal(err)
		}
		state(checker, "approved")
		if err := chromedp.Do(ops, chromedp.Reload(), chromedp.Click(chromedp.CSS(row+` form[action$="/issue"] button`))); err != nil {
			t.Fatal(err)
		}
		state(ops, "issued")
		if by, err := chromedp.Run(ops, chromedp.Text(chromedp.CSS(row+" td:nth-child(7)"))); err != nil || by != "ops / checker / ops" {
			t.Errorf("submitted / approved / issued by %q: %v", by, err)
		}
		if err := chromedp.Do(partner, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		if s, err := browsertest.WaitText(partner, "#statements", func(s string) bool { return strings.Contains(s, day) }); err != nil || !strings.Contains(s, "studio-1") {
			t.Fatalf("the partner's statements after issue: %q: %v", s, err)
		}
		// Tall enough that the picture shows the issued statement too.
		if err := chromedp.Do(partner, chromedp.EmulateViewport(1280, 1000)); err != nil {
			t.Fatal(err)
		}
		browsertest.Shot(t, partner, shots, "console-partner.png")
	})

	t.Run("reconciliation: the report's planted breaks are listed", func(t *testing.T) {
		// The provider's report for yesterday: walk-1 as sent, walk-2 with
		// another amount, walk-3 twice, walk-4 left out, walk-9 never sent.
		report := strings.Join([]string{txs[0], strings.Replace(txs[1], `"20.00"`, `"21.00"`, 1), txs[2], txs[2],
			`{"id":"walk-9","type":"bet","amount":"3.00","currency":"EUR","occurred_at":"` + at(13) + `"}`}, "\n") + "\n"
		file := filepath.Join(dir, "studio-1-"+day+".jsonl")
		if err := os.WriteFile(file, []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := newTab(60 * time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(d.url+"/"), browsertest.Login("ops", d.opsPw), chromedp.Click(chromedp.ID("nav-reconcile")),
			chromedp.WaitVisible(chromedp.ID("recon-form")),
			chromedp.SendKeys(chromedp.ID("recon-provider"), "studio-1"),
			chromedp.SendKeys(chromedp.ID("recon-period"), day),
			chromedp.SetUploadFiles(chromedp.ID("recon-file"), []string{file}),
			chromedp.Click(chromedp.ID("recon-submit")),
			chromedp.WaitVisible(chromedp.ID("recon-breaks-list"))); err != nil {
			t.Fatal(err)
		}
		list, err := browsertest.WaitText(ctx, "#recon-breaks-list", func(s string) bool { return s != "" })
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"missing\twalk-9", "extra\twalk-4", "mismatched\twalk-2", "duplicate\twalk-3"} {
			if !strings.Contains(list, want) {
				t.Errorf("the breaks list lacks %q:\n%s", want, list)
			}
		}
		if n, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("recon-breaks"))); err != nil || n != "4" {
			t.Errorf("breaks %q, want 4: %v\n%s", n, err, list)
		}
		if m, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("recon-matched"))); err != nil || m != "2" {
			t.Errorf("matched %q, want 2 (walk-1, and walk-3 besides its duplicate row): %v", m, err)
		}
		browsertest.Shot(t, ctx, shots, "console-reconcile.png")
	})

	// The demo drains on SIGTERM and exits 0; then its data verifies, with
	// the approved adjustment as one correction entry.
	demo.stop(t)
	ids, err := ledgerIDs(filepath.Join(data, "ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if n := ids[txn.OpsID+"/adj-"+caseID+"-1"]; n != 1 {
		t.Fatalf("correction adj-%s-1 in the ledger %d times, want 1", caseID, n)
	}
	out, err := runCLI(t, "verify", data)
	if err != nil || !strings.Contains(out, "1 correction") {
		t.Fatalf("tally verify: %v\n%s", err, out)
	}
	t.Logf("screenshots in %s", shots)
}
