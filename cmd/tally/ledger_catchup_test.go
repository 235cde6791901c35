package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// sendUntilAnswered sends every payload of provider with a request until it
// is accepted or a duplicate, and returns the answers (bounded by deadline).
func sendUntilAnswered(t *testing.T, url, provider string, payloads [][]byte, deadline time.Time) []string {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s := wire.NewSubjects("")
	out := make([]string, len(payloads))
	for i, p := range payloads {
		for out[i] == "" && time.Now().Before(deadline) {
			msg, err := nc.Request(s.In(provider), p, 2*time.Second)
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			var a wire.Answer
			if json.Unmarshal(msg.Data, &a) == nil && (a.Status == wire.StatusAccepted || a.Status == wire.StatusDuplicate) {
				out[i] = a.Status
			}
		}
		if out[i] == "" {
			t.Fatalf("%s %s not answered", provider, p)
		}
	}
	return out
}

func betPayloads(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf(`{"id":"tx-%d","type":"bet","amount":"%d.%02d","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, i, 1+i%90, i%100))
	}
	return out
}

// waitExit waits for c to exit by itself and returns its exit code.
func waitExit(t *testing.T, c *child, within time.Duration) int {
	t.Helper()
	if _, exited := c.waitFor(within); !exited {
		t.Fatalf("process did not exit within %v", within)
	}
	return c.cmd.ProcessState.ExitCode()
}

// TestCrashAfterPubAck kills the settle node between the ledger stream's
// PubAck and the local apply (the test hook TALLY_TEST_EXIT_AFTER_PUBACK
// makes the process exit right after the first PubAck): the segment is in
// TALLY_LEDGER, nothing of it on disk. Restarted, the node catches up from
// the stream, and the ledger holds every accepted transaction exactly once
// and verifies.
func TestCrashAfterPubAck(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := writeNodeConfig(t, dir, port)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	t.Setenv("TALLY_TEST_EXIT_AFTER_PUBACK", "1")
	node, logPath := startLogged(t, dir, "first.log", "node", "--config", infoConfig(t, cfgPath))
	os.Unsetenv("TALLY_TEST_EXIT_AFTER_PUBACK")
	payloads := betPayloads(60)
	// Answers come from the edge's WAL; settlement publishes the first
	// commit and the process exits on its PubAck.
	// Send (the same ids again, harmlessly) until the process exits: a node
	// slow to start on a loaded machine would otherwise miss one pass.
	stopSend := make(chan struct{})
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			return
		}
		defer nc.Close()
		for round := 0; round < 1000; round++ {
			for _, p := range payloads {
				select {
				case <-stopSend:
					return
				default:
				}
				if _, err := nc.Request(wire.NewSubjects("").In("prov-0"), p, time.Second); err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
	}()
	code := waitExit(t, node, 90*time.Second)
	close(stopSend)
	<-sendDone
	if code != 3 {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("exit code %d, want 3 (the hook)\n%s", code, tail(b, 3000))
	}
	ledgerDir := filepath.Join(dir, "data", "ledger")
	if ids, err := ledgerIDs(ledgerDir); err != nil || len(ids) != 0 {
		t.Fatalf("before restart the local ledger holds %d entries (%v); the hook exits before any local write", len(ids), err)
	}

	node, logPath = startLogged(t, dir, "second.log", "node", "--config", infoConfig(t, cfgPath))
	waitReady(t, node, logPath)
	sendUntilAnswered(t, url, "prov-0", payloads, time.Now().Add(60*time.Second))
	waitLedger(t, ledgerDir, len(payloads), 60*time.Second)
	node.stop(t)
	b, _ := os.ReadFile(logPath)
	if !strings.Contains(string(b), "caught up from the ledger stream") {
		t.Errorf("the restarted node did not catch up from the stream:\n%s", tail(b, 3000))
	}
	ids, err := ledgerIDs(ledgerDir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range payloads {
		if n := ids[fmt.Sprintf("prov-0/tx-%d", i)]; n != 1 {
			t.Errorf("tx-%d in the ledger %d times, want 1", i, n)
		}
	}
	if len(ids) != len(payloads) {
		t.Errorf("ledger has %d ids, sent %d", len(ids), len(payloads))
	}
	if _, err := store.Verify(ledgerDir, "", nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// TestSettleWipeRebuild runs a node, settles, stops it, wipes its settle
// index and ledger directories and starts it again: it rebuilds every
// partition from TALLY_LEDGER with the same roots, verify passes, and a
// resend of everything is answered and settles nothing twice.
func TestSettleWipeRebuild(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := infoConfig(t, writeNodeConfig(t, dir, port))
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	node, logPath := startLogged(t, dir, "first.log", "node", "--config", cfgPath)
	waitReady(t, node, logPath)
	payloads := betPayloads(120)
	for _, prov := range []string{"prov-0", "prov-1", "prov-2"} {
		sendUntilAnswered(t, url, prov, payloads, time.Now().Add(60*time.Second))
	}
	ledgerDir := filepath.Join(dir, "data", "ledger")
	want := 3 * len(payloads)
	waitLedger(t, ledgerDir, want, 60*time.Second)
	node.stop(t)
	before, err := store.Verify(ledgerDir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{ledgerDir, filepath.Join(dir, "data", "settle", "index")} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	node, logPath = startLogged(t, dir, "second.log", "node", "--config", cfgPath)
	waitReady(t, node, logPath)
	sendUntilAnswered(t, url, "prov-1", payloads, time.Now().Add(60*time.Second))
	node.stop(t)
	after, err := store.Verify(ledgerDir, "", nil)
	if err != nil {
		t.Fatalf("verify after the rebuild: %v", err)
	}
	if after.Entries != before.Entries || after.Segments != before.Segments || len(after.Partitions) != len(before.Partitions) {
		t.Fatalf("rebuilt %d entries in %d segments (%d partitions), before %d in %d (%d)", after.Entries, after.Segments, len(after.Partitions), before.Entries, before.Segments, len(before.Partitions))
	}
	for i := range before.Partitions {
		if a, b := after.Partitions[i], before.Partitions[i]; a.Root != b.Root || a.Entries != b.Entries {
			t.Errorf("partition %d: rebuilt root %x entries %d, before %x entries %d", b.Partition, a.Root, a.Entries, b.Root, b.Entries)
		}
	}
	ids, err := ledgerIDs(ledgerDir)
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s in the ledger %d times", id, n)
		}
	}
	if len(ids) != want {
		t.Errorf("%d ids in the ledger, want %d", len(ids), want)
	}
}
