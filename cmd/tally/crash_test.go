package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// TestMain lets the test binary act as the tally command in a child process:
// crash tests kill real processes, not goroutines.
func TestMain(m *testing.M) {
	if os.Getenv("TALLY_TEST_CHILD") == "1" {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			sig := make(chan os.Signal, 1)
			signalNotify(sig)
			<-sig
			cancel()
		}()
		if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "tally:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// child is a tally node running in its own process.
type child struct {
	cmd *exec.Cmd
	out *os.File

	once sync.Once
	done chan struct{} // closed when the process has been waited for
	err  error         // cmd.Wait's result, valid once done is closed
}

// exitCh waits for the process exactly once (cmd.Wait must not run twice:
// a test's own wait and the cleanup's kill would race) and is closed when
// it has exited; c.err is then Wait's result.
func (c *child) exitCh() <-chan struct{} {
	c.once.Do(func() {
		c.done = make(chan struct{})
		go func() { c.err = c.cmd.Wait(); close(c.done) }()
	})
	return c.done
}

// waitFor waits up to within for the process to exit by itself.
func (c *child) waitFor(within time.Duration) (err error, exited bool) {
	select {
	case <-c.exitCh():
		return c.err, true
	case <-time.After(within):
		return nil, false
	}
}

// waitLedger waits until the ledger in dir holds at least want distinct ids.
func waitLedger(t *testing.T, dir string, want int, within time.Duration) {
	t.Helper()
	natstest.Eventually(t, within, func() error {
		ids, err := ledgerIDs(dir)
		if err != nil {
			return err
		}
		if len(ids) < want {
			return fmt.Errorf("%d of %d in the ledger", len(ids), want)
		}
		return nil
	})
}

// startChild starts tally as a child process logging to dir/child.log,
// which every child of a test shares.
func startChild(t *testing.T, dir string, args ...string) *child {
	t.Helper()
	return startChildLog(t, filepath.Join(dir, "child.log"), os.O_APPEND, args...)
}

// startChildLog starts tally as a child process logging to path, opened
// with the extra flag (os.O_APPEND to share it, os.O_TRUNC for its own).
func startChildLog(t *testing.T, path string, flag int, args ...string) *child {
	t.Helper()
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|flag, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TALLY_TEST_CHILD=1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: out}
	t.Cleanup(func() { c.kill(); out.Close() })
	return c
}

func (c *child) kill() {
	select {
	case <-c.exitCh():
	default:
		c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.exitCh()
	}
}

// stop sends SIGTERM (drain) and waits for a clean exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	err, exited := c.waitFor(60 * time.Second)
	if !exited {
		t.Fatal("node did not drain within 60s")
	}
	if err != nil {
		t.Fatalf("node exited with %v", err)
	}
}

const crashRules = `
ruleset "test" {
  effective  = "2020-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "all" {
    share "studio" {
      party   = "${provider}"
      percent = "10"
    }
    remainder = "operator"
  }
}
`

func writeNodeConfig(t *testing.T, dir string, port int) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "rules.hcl"), []byte(crashRules), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
node_id   = "crash-1"
data_dir  = "data"
log_level = "warn"
hub {
  listen        = "127.0.0.1:%d"
  sync_interval = "always"
}
ingest {
  forward_batch = 50
}
settle {
  rules               = "rules.hcl"
  segment_max_age     = "50ms"
  segment_max_entries = 200
}
`, port)
	path := filepath.Join(dir, "node.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ledgerIDs reads every entry of the ledger and counts each (provider, id).
func ledgerIDs(dir string) (map[string]int, error) {
	ids := map[string]int{}
	err := store.ForEachEntry(dir, func(e store.Entry) error {
		ids[e.Provider+"/"+e.Tx.ID]++
		return nil
	})
	return ids, err
}

// TestCrashKill9 kills a real node process with SIGKILL while providers are
// sending, restarts it, lets providers retry what went unanswered with the
// same ids, and checks that the ledger holds every transaction exactly once
// and verifies.
func TestCrashKill9(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := writeNodeConfig(t, dir, port)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	node := startChild(t, dir, "node", "--config", cfgPath)

	const providers, perProvider = 3, 400
	type pending struct {
		provider string
		payload  []byte
	}
	var all []pending
	for p := range providers {
		for i := range perProvider {
			tx := map[string]any{"id": fmt.Sprintf("tx-%d", i), "type": "bet", "amount": fmt.Sprintf("%d.%02d", 1+i%90, i%100),
				"currency": "EUR", "occurred_at": "2026-11-01T10:00:00Z"}
			b, _ := json.Marshal(tx)
			all = append(all, pending{fmt.Sprintf("prov-%d", p), b})
		}
	}
	// Providers send until every transaction has a definite answer, retrying
	// on timeouts and lost connections with the same payload.
	answered := make([]string, len(all))
	var mu sync.Mutex
	sendAll := func(stop <-chan struct{}, deadline time.Time) int {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		s := wire.NewSubjects("")
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for i := range all {
			mu.Lock()
			done := answered[i] != ""
			mu.Unlock()
			if done {
				continue
			}
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
					msg, err := nc.Request(s.In(all[i].provider), all[i].payload, 2*time.Second)
					if err != nil {
						time.Sleep(50 * time.Millisecond)
						continue
					}
					var a wire.Answer
					if json.Unmarshal(msg.Data, &a) == nil && (a.Status == wire.StatusAccepted || a.Status == wire.StatusDuplicate) {
						mu.Lock()
						answered[i] = a.Status
						mu.Unlock()
						return
					}
					time.Sleep(50 * time.Millisecond) // e.g. unavailable while shutting down
				}
			}()
		}
		wg.Wait()
		n := 0
		for _, a := range answered {
			if a != "" {
				n++
			}
		}
		return n
	}

	// Kill the node hard once some answers are in.
	killed := make(chan struct{})
	stopFirst := make(chan struct{})
	go func() {
		defer close(killed)
		defer close(stopFirst)
		natstest.Eventually(t, 60*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, a := range answered {
				if a != "" {
					n++
				}
			}
			if n < len(all)/3 {
				return fmt.Errorf("%d answered", n)
			}
			return nil
		})
		node.kill()
		time.Sleep(200 * time.Millisecond) // let in-flight requests fail against the dead node
	}()
	first := sendAll(stopFirst, time.Now().Add(60*time.Second))
	<-killed
	t.Logf("answered before and around the kill: %d of %d", first, len(all))

	// Resend everything, answered or not: what was acknowledged before the
	// kill must survive it and come back as a duplicate.
	before := make([]string, len(all))
	mu.Lock()
	copy(before, answered)
	clear(answered)
	mu.Unlock()
	node = startChild(t, dir, "node", "--config", cfgPath)
	t0 := time.Now()
	if n := sendAll(nil, time.Now().Add(60*time.Second)); n != len(all) {
		t.Fatalf("only %d of %d transactions answered after restart", n, len(all))
	}
	t.Logf("all answered after restart in %v", time.Since(t0))
	ledgerDir := filepath.Join(dir, "data", "ledger")
	waitLedger(t, ledgerDir, len(all), 60*time.Second)
	t.Logf("all in the ledger after %v", time.Since(t0))
	node.stop(t)
	t.Logf("drained after %v", time.Since(t0))
	if os.Getenv("TALLY_CHILD_LOG") != "" {
		b, _ := os.ReadFile(filepath.Join(dir, "child.log"))
		t.Logf("child log:\n%s", b)
	}

	ids, err := ledgerIDs(ledgerDir)
	if err != nil {
		t.Fatal(err)
	}
	dup := 0
	for _, p := range all {
		var tx struct{ ID string }
		json.Unmarshal(p.payload, &tx)
		if n := ids[p.provider+"/"+tx.ID]; n != 1 {
			t.Errorf("%s/%s in the ledger %d times, want 1", p.provider, tx.ID, n)
		}
	}
	for i, a := range answered {
		if a == wire.StatusDuplicate {
			dup++
		}
		if before[i] != "" && a != wire.StatusDuplicate {
			t.Errorf("%s %s was acknowledged before the kill but answered %q after it, want duplicate", all[i].provider, all[i].payload, a)
		}
	}
	if len(ids) != len(all) {
		t.Errorf("ledger has %d distinct ids, sent %d", len(ids), len(all))
	}
	rep, err := store.Verify(ledgerDir, "", nil)
	if err != nil {
		t.Fatalf("verify after crash: %v", err)
	}
	t.Logf("compared: %d sent, %d acknowledged before the kill, %d answered duplicate on resend, %d ledger entries, %d distinct ids", len(all), first, dup, rep.Entries, len(ids))
	if rep.Entries != uint64(len(all)) {
		t.Errorf("ledger has %d entries, want %d", rep.Entries, len(all))
	}
}
