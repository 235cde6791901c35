package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/oplog"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// TestOplogKill9 kills a real node process with SIGKILL while operator
// entries (FX rates) are being posted to its operator log and forwarded
// into settlement, restarts it, and posts every rate again with the same
// action id: each rate posted before or after the kill is in the ledger
// exactly once, and the ledger verifies. It covers the oplog's crash points:
// posted but not forwarded, forwarded but not acked (the redelivery is
// forwarded again and skipped by the high-water mark), and a post whose
// answer was lost (the repeat is deduplicated by its msg id or the engine).
func TestOplogKill9(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := writeNodeConfig(t, dir, port)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	node := startChild(t, dir, "node", "--config", cfgPath)

	const n = 150
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	type rate struct {
		id      string
		payload []byte
	}
	rates := make([]rate, n)
	for i := range rates {
		r := oplog.FXRate{Source: "ECB", Base: "EUR", Quote: "USD", Rate: decimal.RequireFromString(fmt.Sprintf("1.%04d", 500+i)),
			AsOf: base.Add(time.Duration(i) * time.Hour), PostedBy: "treasury"}
		p, err := r.Payload()
		if err != nil {
			t.Fatal(err)
		}
		rates[i] = rate{r.ID(), p}
	}
	js := reconnectingJS(t, url)
	subj := wire.NewSubjects("")
	var mu sync.Mutex
	posted := make([]bool, n)
	// postAll posts every rate not yet posted in this round, retrying each
	// until it is stored or the round stops.
	postAll := func(stop <-chan struct{}, deadline time.Time) int {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i := range rates {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				for time.Now().Before(deadline) {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					_, err := oplog.Post(ctx, js, subj, rates[i].payload, rates[i].id)
					cancel()
					if err == nil {
						mu.Lock()
						posted[i] = true
						mu.Unlock()
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		c := 0
		for _, p := range posted {
			if p {
				c++
			}
		}
		return c
	}

	stopFirst := make(chan struct{})
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		defer close(stopFirst)
		natstest.Eventually(t, 60*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			c := 0
			for _, p := range posted {
				if p {
					c++
				}
			}
			if c < n/3 {
				return fmt.Errorf("%d posted", c)
			}
			return nil
		})
		node.kill()
	}()
	first := postAll(stopFirst, time.Now().Add(60*time.Second))
	<-killed
	t.Logf("posted before and around the kill: %d of %d", first, n)

	node = startChild(t, dir, "node", "--config", cfgPath)
	mu.Lock()
	clear(posted) // post everything again: what was stored before the kill must not settle twice
	mu.Unlock()
	if got := postAll(nil, time.Now().Add(60*time.Second)); got != n {
		t.Fatalf("only %d of %d rates posted after the restart", got, n)
	}
	ledgerDir := filepath.Join(dir, "data", "ledger")
	waitLedger(t, ledgerDir, n, 60*time.Second)
	node.stop(t)

	ids, err := ledgerIDs(ledgerDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rates {
		if c := ids[txn.OpsID+"/"+r.id]; c != 1 {
			t.Errorf("%s in the ledger %d times, want 1", r.id, c)
		}
	}
	for id := range ids {
		if !strings.HasPrefix(id, txn.OpsID+"/fx-") {
			t.Errorf("unexpected ledger entry %s", id)
		}
	}
	rep, err := store.Verify(ledgerDir, "", nil)
	if err != nil {
		t.Fatalf("verify after the kill: %v", err)
	}
	if rep.Entries != n {
		t.Errorf("ledger has %d entries, want %d", rep.Entries, n)
	}
}

// TestOplogPaidTwiceAfterPubAckCrash: the node commits payout run 1 to
// TALLY_LEDGER and exits before writing anything locally (the test hook
// TALLY_TEST_EXIT_AFTER_PUBACK): its paid statements exist only in the
// stream. Restarted, it catches up, and a run 2 paying one of run 1's
// statements (posted straight to the operator log, no CLI check) is
// refused whole as paid_twice, while a run 3 of a new statement settles;
// `tally verify` passes.
func TestOplogPaidTwiceAfterPubAckCrash(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := infoConfig(t, writeNodeConfig(t, dir, port))
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	t.Setenv("TALLY_TEST_EXIT_AFTER_PUBACK", "1")
	node, logPath := startLogged(t, dir, "first.log", "node", "--config", cfgPath)
	os.Unsetenv("TALLY_TEST_EXIT_AFTER_PUBACK")

	st := func(d string) string { return strings.Repeat(d, 64) }
	runOf := func(seq int, statements ...string) oplog.PayoutRun {
		return oplog.PayoutRun{Run: fmt.Sprintf("RUN-%06d", seq), RunHash: fmt.Sprintf("%064x", seq), Statements: statements,
			CreatedBy: "alice", ApprovedBy: "bob", CreatedAt: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC),
			Totals: []oplog.PayoutTotal{{Currency: "EUR", Sum: decimal.RequireFromString("10.00")}}}
	}
	js := reconnectingJS(t, url)
	post := func(p oplog.PayoutRun) {
		t.Helper()
		b, err := p.Payload()
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := oplog.Post(ctx, js, wire.NewSubjects(""), b, p.MsgID())
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("post %s: %v", p.Run, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	post(runOf(1, st("a"), st("b")))
	if code := waitExit(t, node, 90*time.Second); code != 3 {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("exit code %d, want 3 (the hook)\n%s", code, tail(b, 3000))
	}
	ledgerDir := filepath.Join(dir, "data", "ledger")
	if ids, err := ledgerIDs(ledgerDir); err != nil || len(ids) != 0 {
		t.Fatalf("before restart the local ledger holds %d entries (%v)", len(ids), err)
	}

	node, logPath = startLogged(t, dir, "second.log", "node", "--config", cfgPath)
	waitReady(t, node, logPath)
	post(runOf(2, st("c"), st("b"))) // B is paid by run 1, known only from the stream
	post(runOf(3, st("c")))          // after run 2 in the one partition: C is still payable
	waitLedger(t, ledgerDir, 2, 60*time.Second)
	node.stop(t)
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "caught up from the ledger stream") {
		t.Errorf("the restarted node did not catch up from the stream:\n%s", tail(b, 3000))
	}
	ids, err := ledgerIDs(ledgerDir)
	if err != nil {
		t.Fatal(err)
	}
	if ids[txn.OpsID+"/payout-RUN-000001"] != 1 || ids[txn.OpsID+"/payout-RUN-000003"] != 1 || len(ids) != 2 {
		t.Fatalf("ledger ids %v; want runs 1 and 3 once each", ids)
	}
	idx, err := settle.OpenIndex(filepath.Join(dir, "data", "settle", "index"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	exc, err := idx.Exceptions(10)
	idx.Close()
	if err != nil || len(exc) != 1 || exc[0].Kind != settle.ExcPaidTwice || exc[0].ID != "payout-RUN-000002" || !strings.Contains(exc[0].Reason, st("b")) {
		t.Fatalf("exceptions %+v, %v; want one paid_twice for RUN-000002", exc, err)
	}
	if out, err := runCLI(t, "verify", filepath.Join(dir, "data")); err != nil || !strings.Contains(out, "payout runs: 2 (maker-checker checked), paying 3 statements, none paid twice") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}

// reconnectingJS is JetStream on a client of url that keeps reconnecting
// across kills of the node (closed when the test ends).
func reconnectingJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
