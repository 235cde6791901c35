package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/internal/natstest"
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
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
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
