package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

// TestFaultEdgeRestartDuringHubOutage (issue 16, item 2): store-and-forward
// holds across an edge restart. The hub (with settlement) stops; the edge is
// restarted while it is down and must start, take the providers' lines over
// HTTP into its WAL (answered accepted) and forward them once the hub is
// back on the same data directory and port. The ledger then holds exactly
// the accepted (provider, id) pairs, each once, and verify passes.
func TestFaultEdgeRestartDuringHubOutage(t *testing.T) {
	m := startMesh(t, false) // the edge claims its providers while the hub is up
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(m.dir, "child.log"))
			t.Logf("child.log:\n%s", tail(b, 6000))
		}
	})
	waitClaims(t, m.hubURL(), "edge-1", faultEdgePass, map[string]string{"p1": "edge-1", "p2": "edge-1", "p3": "edge-1"})
	m.hub.stop(t)
	m.edge.stop(t)
	m.startEdge() // during the outage: must start and listen on HTTP
	m.startSends(true)
	total := faultProviders * faultLines
	natstest.Eventually(t, 90*time.Second, func() error {
		if n := m.answered(); n < total {
			return fmt.Errorf("%d of %d lines answered with the hub down", n, total)
		}
		return nil
	})
	accepted := 0
	for _, sp := range m.sends {
		b, _ := os.ReadFile(sp.outPath)
		accepted += bytes.Count(b, []byte(`"status":"accepted"`))
	}
	if accepted == 0 {
		t.Fatal("no line accepted while the hub was down")
	}
	if n := m.settled(); n != 0 {
		t.Fatalf("%d transactions settled while the hub was down", n)
	}
	t.Logf("hub down: %d of %d lines answered accepted by the restarted edge", accepted, total)
	m.hub = startChild(t, m.dir, "node", "--config", m.hubCfg) // same data dir and port
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", m.hubPort))
	m.finish("edge restart during hub outage")
}

// waitClaims waits until the hub's claim bucket holds want (provider → edge)
// and the hub's settlement has its four partition consumers.
func waitClaims(t *testing.T, url, user, password string, want map[string]string) {
	t.Helper()
	natstest.Eventually(t, 60*time.Second, func() error { // connecting is retried too: the machine may be busy
		nc, err := nats.Connect(url, nats.UserInfo(user, password), nats.MaxReconnects(0))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		kv, err := js.KeyValue(ctx, wire.NewSubjects("").ClaimBucket())
		if err != nil {
			return err
		}
		if st, err := js.Stream(ctx, wire.NewSubjects("").TxStream()); err != nil {
			return err
		} else if n := st.CachedInfo().State.Consumers; n < 4 { // the hub's settlement is up
			return fmt.Errorf("%d settle consumers", n)
		}
		for p, edge := range want {
			e, err := kv.Get(ctx, p)
			if err != nil {
				return fmt.Errorf("claim %s: %w", p, err)
			}
			if string(e.Value()) != edge {
				return fmt.Errorf("claim %s held by %s, want %s", p, e.Value(), edge)
			}
		}
		return nil
	})
}

// twoEdgeLines is a provider's file: n ids, then the same n ids again.
func twoEdgeLines(provider string, n int) [][]byte {
	var lines [][]byte
	for i := range n {
		lines = append(lines, fmt.Appendf(nil, `{"id":"%s-r-%d","type":"bet","amount":"%d.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, provider, i, 1+i%50))
	}
	return append(lines, lines...)
}

// TestTwoEdgesRouteByProvider (issue 16, item 6): two edge processes on one
// hub, edge-a serving p1 and p2, edge-b serving p3. Each provider's requests
// reach the edge that serves it: every id is answered accepted once and
// duplicate on its resend, never accepted twice and never unknown_provider.
// A third edge claiming p1 fails at start, naming edge-a. The ledger holds
// each id once and verify passes.
func TestTwoEdgesRouteByProvider(t *testing.T) {
	dir := t.TempDir()
	hubPort := freePort(t)
	writeFile(t, filepath.Join(dir, "rules.hcl"), crashRules)
	hubCfg := writeFile(t, filepath.Join(dir, "hub.hcl"), fmt.Sprintf(`
node_id   = "hub-1"
data_dir  = "hub-data"
log_level = "warn"
roles     = ["hub", "settle"]
hub {
  listen        = "127.0.0.1:%d"
  sync_interval = "always"
  node_user "edge-1" { password = %q }
}
%s
%s`, hubPort, faultEdgePass, faultSettleBlock, providerBlocks()))
	hub := startChild(t, dir, "node", "--config", hubCfg)
	hubAddr := fmt.Sprintf("127.0.0.1:%d", hubPort)
	waitTCP(t, hubAddr)
	edgeCfg := func(id string, providers ...string) string {
		var b strings.Builder
		for _, p := range providers {
			fmt.Fprintf(&b, "provider %q {}\n", p)
		}
		return writeFile(t, filepath.Join(dir, id+".hcl"), fmt.Sprintf(`
node_id   = %q
data_dir  = %q
log_level = "info"
roles     = ["ingest"]
nats {
  url      = "nats://%s"
  user     = "edge-1"
  password = %q
}
ingest {
  forward_batch = 50
}
%s`, id, id+"-data", hubAddr, faultEdgePass, b.String()))
	}
	edgeA := startChild(t, dir, "node", "--config", edgeCfg("edge-a", "p1", "p2"))
	edgeB := startChild(t, dir, "node", "--config", edgeCfg("edge-b", "p3"))
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "child.log"))
			t.Logf("child.log:\n%s", tail(b, 6000))
		}
	})
	waitClaims(t, "nats://"+hubAddr, "edge-1", faultEdgePass, map[string]string{"p1": "edge-a", "p2": "edge-a", "p3": "edge-b"})

	const ids = 40
	send := func(p string) []sendLine {
		t.Helper()
		lines := twoEdgeLines(p, ids)
		in := writeFile(t, filepath.Join(dir, p+".jsonl"), string(bytes.Join(lines, []byte("\n")))+"\n")
		var out, errb bytes.Buffer
		cmd := exec.Command(os.Args[0], "send", "--provider", p, "--nats", "nats://"+hubAddr, "--user", p, "--password", faultPassword(p),
			"--timeout", "2s", "--give-up", "60s", "--concurrency", "1", in)
		cmd.Env = append(os.Environ(), "TALLY_TEST_CHILD=1")
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("tally send %s: %v\n%s", p, err, errb.String())
		}
		var got []sendLine
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			var a sendLine
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				t.Fatalf("%s: bad answer line %q", p, sc.Bytes())
			}
			got = append(got, a)
		}
		if len(got) != len(lines) {
			t.Fatalf("%s: %d answers for %d lines", p, len(got), len(lines))
		}
		return got
	}
	// Both edges subscribe once they have claimed their providers: the
	// first request of each provider may find no responder and is retried
	// by tally send with the same id.
	for _, p := range []string{"p1", "p2", "p3"} {
		as := send(p)
		for _, a := range as {
			want := wire.StatusAccepted
			if a.Line > ids {
				want = wire.StatusDuplicate
			}
			if a.Status != want {
				t.Errorf("%s line %d: %s %s %q, want %s", p, a.Line, a.Status, a.Code, a.Reason, want)
			}
		}
	}

	// A third edge claiming p1 (served by edge-a) must refuse to start.
	c := startChild(t, dir, "node", "--config", edgeCfg("edge-c", "p1"))
	if err, exited := c.waitFor(30 * time.Second); !exited {
		t.Fatal("edge-c claiming p1 did not exit")
	} else if err == nil {
		t.Fatal("edge-c claiming p1 started")
	}
	logb, _ := os.ReadFile(filepath.Join(dir, "child.log"))
	if want := `provider p1 is already served by edge node "edge-a"`; !bytes.Contains(logb, []byte(want)) {
		t.Errorf("edge-c's error does not say %q:\n%s", want, tail(logb, 3000))
	}

	ledgerDir := filepath.Join(dir, "hub-data", "ledger")
	natstest.Eventually(t, 60*time.Second, func() error {
		got, err := ledgerIDs(ledgerDir)
		if err != nil {
			return err
		}
		if len(got) < 3*ids {
			return fmt.Errorf("%d of %d in the ledger", len(got), 3*ids)
		}
		return nil
	})
	edgeA.stop(t)
	edgeB.stop(t)
	hub.stop(t)
	got, err := ledgerIDs(ledgerDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3*ids {
		t.Errorf("ledger holds %d distinct ids, want %d", len(got), 3*ids)
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("%s in the ledger %d times, want 1", k, n)
		}
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"verify", ledgerDir}, &out, &errb); err != nil {
		t.Fatalf("tally verify: %v\n%s%s", err, out.String(), errb.String())
	}
}
