package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// TestCrashKill9Pipelined kills a real node process with SIGKILL while its
// edge WAL has group commits in flight (batch requests from many concurrent
// senders keep the commit pipeline full: one group fsyncing while the next is
// staged). After a restart every transaction answered accepted (or
// duplicate) before the kill must be in the WAL with the same edge sequence
// (a resend answers duplicate with that sequence: nothing was answered before
// its fsync), and the ledger must hold every transaction exactly once.
func TestCrashKill9Pipelined(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := writeNodeConfig(t, dir, port)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	node := startChild(t, dir, "node", "--config", cfgPath)

	const providers, batchesPer, perBatch = 4, 30, 50
	type batch struct {
		provider string
		ids      []string
		body     []byte
	}
	var batches []batch
	for p := range providers {
		for b := range batchesPer {
			bt := batch{provider: fmt.Sprintf("prov-%d", p)}
			var txs []map[string]any
			for i := range perBatch {
				id := fmt.Sprintf("b%d-%d", b, i)
				bt.ids = append(bt.ids, id)
				txs = append(txs, map[string]any{"id": id, "type": "bet", "amount": fmt.Sprintf("%d.%02d", 1+i%90, b%100),
					"currency": "EUR", "occurred_at": "2026-11-01T10:00:00Z"})
			}
			bt.body, _ = json.Marshal(txs)
			batches = append(batches, bt)
		}
	}
	total := providers * batchesPer * perBatch
	type answer struct {
		status string
		seq    uint64
	}
	var mu sync.Mutex
	answers := map[string]answer{} // provider/id → first definite answer of this round
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(answers) }
	send := func(stop <-chan struct{}, deadline time.Time) {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		s := wire.NewSubjects("")
		var wg sync.WaitGroup
		sem := make(chan struct{}, 24) // many requests outstanding: groups queue behind the one fsyncing
		for _, bt := range batches {
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
					m, err := nc.Request(s.In(bt.provider), bt.body, 5*time.Second)
					if err != nil {
						time.Sleep(50 * time.Millisecond)
						continue
					}
					var as []wire.Answer
					if json.Unmarshal(m.Data, &as) != nil || len(as) != len(bt.ids) {
						t.Errorf("batch answer %s", m.Data)
						return
					}
					done := true
					mu.Lock()
					for i, a := range as {
						if a.ID != bt.ids[i] {
							t.Errorf("answer %d of a batch has id %q, want %q", i, a.ID, bt.ids[i])
						}
						k := bt.provider + "/" + bt.ids[i]
						if a.Status == wire.StatusAccepted || a.Status == wire.StatusDuplicate {
							if _, ok := answers[k]; !ok {
								answers[k] = answer{a.Status, a.EdgeSeq}
							}
						} else {
							done = false // e.g. buffer_full or unavailable: resend the batch (same ids)
						}
					}
					mu.Unlock()
					if done {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
	}

	// Kill once a quarter is answered: answers are flowing, groups in flight.
	stopFirst := make(chan struct{})
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		defer close(stopFirst)
		natstest.Eventually(t, 60*time.Second, func() error {
			if n := count(); n < total/4 {
				return fmt.Errorf("%d of %d answered", n, total)
			}
			return nil
		})
		node.kill()
	}()
	send(stopFirst, time.Now().Add(60*time.Second))
	<-killed
	mu.Lock()
	before := answers
	answers = map[string]answer{}
	mu.Unlock()
	t.Logf("answered before the kill: %d of %d", len(before), total)
	if len(before) == total {
		t.Fatalf("everything was answered before the kill: the test did not kill during the commits")
	}

	node = startChild(t, dir, "node", "--config", cfgPath)
	t0 := time.Now()
	send(nil, time.Now().Add(90*time.Second))
	if n := count(); n != total {
		t.Fatalf("only %d of %d answered after the restart", n, total)
	}
	for k, a := range before {
		after := answers[k]
		if after.status != wire.StatusDuplicate || after.seq != a.seq {
			t.Errorf("%s was answered %s as edge_seq %d before the kill, after it %s %d: want duplicate %d", k, a.status, a.seq, after.status, after.seq, a.seq)
		}
	}
	ledgerDir := filepath.Join(dir, "data", "ledger")
	waitLedger(t, ledgerDir, total, 90*time.Second)
	t.Logf("all in the ledger %v after the restart", time.Since(t0))
	node.stop(t)
	ids, err := ledgerIDs(ledgerDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, bt := range batches {
		for _, id := range bt.ids {
			if n := ids[bt.provider+"/"+id]; n != 1 {
				t.Errorf("%s/%s in the ledger %d times, want 1", bt.provider, id, n)
			}
		}
	}
	rep, err := store.Verify(ledgerDir, "", nil)
	if err != nil {
		t.Fatalf("verify after crash: %v", err)
	}
	if rep.Entries != uint64(total) || len(ids) != total {
		t.Errorf("ledger has %d entries, %d distinct ids, want %d", rep.Entries, len(ids), total)
	}
}
