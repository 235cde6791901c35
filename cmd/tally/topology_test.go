package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

// The full-topology test (issue 11, first test) runs every part of the
// production topology of docs/deploy.md at once as real processes on
// loopback: three `tally node` hubs forming one NATS cluster (TALLY_TX,
// TALLY_LEDGER and TALLY_OWNERS at R3), two edges whose embedded NATS servers
// are leaf nodes of that cluster (edge-1 serving p1 and p2, edge-2 serving
// p3), and two settle nodes sharing the four partitions by lease (TTL 2 s,
// one shared signing key), each connected to all three hubs. Providers are
// `tally send` processes talking NATS to the local port of the edge that
// serves them. The lease mesh's helpers (lease_test.go) read TALLY_OWNERS;
// the fault tests' checks (mesh.finish) run on the surviving settle node's
// ledger directory once it owns every partition (it caught up the others'
// segments from TALLY_LEDGER).

const (
	topoEdges    = 2
	topoEdgePass = "-leaf-password" // edge-N's leaf password: "edge-N" + this
)

// topoEdgeProviders: which edge serves which provider (all faultProviders).
// TALLY_TX's transform puts <edge>.<provider> on partition 2 (edge-1.p1),
// 3 (edge-1.p2) and 0 (edge-2.p3); partition 1 stays empty. So the owner of
// partition 0 (the victim) settles p3, and whichever other partition it
// holds, the survivor holds one of 2 and 3: both nodes settle before the
// kill, and p3's lines sent after it reach the ledger only through the
// survivor's takeover of partition 0.
var topoEdgeProviders = [topoEdges][]string{{"p1", "p2"}, {"p3"}}

type topoMesh struct {
	*leaseMesh
	hubs       []*child
	edges      [topoEdges]*child
	edgePorts  [topoEdges]int // the edges' local NATS ports (leaf.listen)
	clientURLs string         // every hub's client URL, comma separated
}

func topoEdgeName(i int) string { return fmt.Sprintf("edge-%d", i+1) }

// startTopology starts the hubs, waits for the R3 streams, starts settle-1
// then settle-2 (the first creates the shared key), then both edges, and
// waits until every provider is claimed by its edge.
func startTopology(t *testing.T) *topoMesh {
	t.Helper()
	m := &mesh{t: t, dir: t.TempDir()}
	lm := &leaseMesh{mesh: m}
	tm := &topoMesh{leaseMesh: lm}
	t.Cleanup(func() { // the processes' logs, when something went wrong
		if t.Failed() || os.Getenv("TALLY_TEST_LOGS") == "1" {
			for i := range 2 {
				if lm.logs[i] != "" {
					b, _ := os.ReadFile(lm.logs[i])
					t.Logf("%s log (tail):\n%s", settleName(i), tail(b, 5000))
				}
			}
			b, _ := os.ReadFile(filepath.Join(m.dir, "child.log"))
			t.Logf("child.log (tail):\n%s", tail(b, 5000))
		}
	})
	writeFile(t, filepath.Join(m.dir, "rules.hcl"), crashRules)

	var clientPorts, routePorts, leafPorts []int
	for range clusterHubs {
		clientPorts = append(clientPorts, freePort(t))
		routePorts = append(routePorts, freePort(t))
		leafPorts = append(leafPorts, freePort(t))
	}
	var routes, clientURLs, leafURLs, leafUsers []string
	for i := range clusterHubs {
		routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[i])))
		clientURLs = append(clientURLs, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
		leafURLs = append(leafURLs, fmt.Sprintf("%q", fmt.Sprintf("nats-leaf://127.0.0.1:%d", leafPorts[i])))
	}
	for e := range topoEdges {
		leafUsers = append(leafUsers, fmt.Sprintf("    user %q { password = %q }", topoEdgeName(e), topoEdgeName(e)+topoEdgePass))
	}
	tm.clientURLs = strings.Join(clientURLs, ",")
	m.hubPort = clientPorts[0] // mesh.hubURL: hub-1, for `tally status --nats`
	for i := range clusterHubs {
		cfg := writeFile(t, filepath.Join(m.dir, fmt.Sprintf("hub-%d.hcl", i+1)), fmt.Sprintf(`
node_id   = "hub-%d"
data_dir  = "hub-%d-data"
log_level = "warn"
roles     = ["hub"]
hub {
  listen        = "127.0.0.1:%d"
  sync_interval = "always"
  node_user "settle-1" { password = %q }
  node_user "settle-2" { password = %q }
  cluster {
    name     = "tally-topo"
    listen   = "127.0.0.1:%d"
    routes   = [%s]
    user     = "route"
    password = %q
  }
  leafnodes {
    listen = "127.0.0.1:%d"
%s
  }
}
streams {
  partitions = %d
  replicas   = 3
}
`, i+1, i+1, clientPorts[i], faultSettlePass, leaseSettle2PW, routePorts[i], strings.Join(routes, ", "), clusterRoutePass, leafPorts[i], strings.Join(leafUsers, "\n"), leaseParts))
		tm.hubs = append(tm.hubs, startChild(t, m.dir, "node", "--config", cfg))
	}
	m.hub = tm.hubs[0] // finish stops it; the others are killed at cleanup
	for _, p := range clientPorts {
		waitTCP(t, fmt.Sprintf("127.0.0.1:%d", p))
	}
	nc, err := nats.Connect(tm.clientURLs, nats.UserInfo("settle-1", faultSettlePass), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	lm.nc = nc
	if lm.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	(&clusterMesh{mesh: m, nc: nc, js: lm.js}).waitStreams(3)
	t.Logf("3-hub cluster: streams R3 with a leader and current replicas after %v", time.Since(start).Round(time.Millisecond))

	for i, pw := range []string{faultSettlePass, leaseSettle2PW} {
		lm.metrics[i] = freePort(t)
		lm.cfgs[i] = writeFile(t, filepath.Join(m.dir, settleName(i)+".hcl"), fmt.Sprintf(`
node_id   = %q
data_dir  = "%s-data"
log_level = "info"
roles     = ["settle"]
metrics_listen = "127.0.0.1:%d"
streams {
  partitions = %d
  replicas   = 3
}
nats {
  url      = %q
  user     = %q
  password = %q
}
settle {
  rules               = "rules.hcl"
  segment_max_age     = "50ms"
  segment_max_entries = 200
  signing_key         = "ledger.key"
  leases              = true
  lease_ttl           = %q
}
`, settleName(i), settleName(i), lm.metrics[i], leaseParts, tm.clientURLs, settleName(i), pw, leaseTTL.String()))
		lm.settles[i], lm.logs[i] = startLogged(t, m.dir, settleName(i)+".log", "node", "--config", lm.cfgs[i])
		lm.waitLog(i, "settling by lease", 60*time.Second) // the first creates the shared key before the second starts
	}
	natstest.Eventually(t, 30*time.Second, func() error {
		kv, err := lm.js.KeyValue(context.Background(), wire.NewSubjects(wire.DefaultPrefix).OwnersBucket())
		lm.kv = kv
		return err
	})

	for e := range topoEdges {
		tm.edgePorts[e] = freePort(t)
		var pb strings.Builder
		for _, p := range topoEdgeProviders[e] {
			fmt.Fprintf(&pb, "provider %q {\n  nats_password = %q\n  http_token = %q\n}\n", p, faultPassword(p), faultToken(p))
		}
		cfg := writeFile(t, filepath.Join(m.dir, topoEdgeName(e)+".hcl"), fmt.Sprintf(`
node_id   = %q
data_dir  = "%s-data"
log_level = "warn"
roles     = ["ingest"]
leaf {
  listen   = "127.0.0.1:%d"   # the region's providers connect here
  hubs     = [%s]
  user     = %q
  password = %q
}
streams {
  partitions = %d
  replicas   = 3
}
ingest {
  forward_batch   = 50
  publish_timeout = "1s"
}
%s`, topoEdgeName(e), topoEdgeName(e), tm.edgePorts[e], strings.Join(leafURLs, ", "), topoEdgeName(e), topoEdgeName(e)+topoEdgePass, leaseParts, pb.String()))
		tm.edges[e] = startChild(t, m.dir, "node", "--config", cfg)
	}
	for e := range topoEdges {
		waitTCP(t, fmt.Sprintf("127.0.0.1:%d", tm.edgePorts[e]))
	}
	m.edge = tm.edges[0] // finish stops it; edge-2 is stopped after finish
	claims := map[string]string{}
	for e, ps := range topoEdgeProviders {
		for _, p := range ps {
			claims[p] = topoEdgeName(e)
		}
	}
	waitClaims(t, tm.clientURLs, "settle-1", faultSettlePass, claims)
	return tm
}

// edgeOf is the index of the edge serving provider p.
func edgeOf(p string) int {
	for e, ps := range topoEdgeProviders {
		for _, q := range ps {
			if q == p {
				return e
			}
		}
	}
	panic("no edge serves " + p)
}

// startEdgeSends is mesh.startSends over NATS, each provider to the local
// port of the edge that serves it, fed through stdin in len(gates)+1 chunks:
// the first at once, chunk k+1 once gates[k] is closed, a line every 5 ms
// (tally send reads its input as it comes). So the providers are still
// sending when the test kills: the lines after a gate are sent after the
// kill (or rejoin) that opens it.
func (tm *topoMesh) startEdgeSends(gates []chan struct{}) {
	m := tm.mesh
	stop := make(chan struct{})
	m.t.Cleanup(func() { close(stop) })
	for i := range faultProviders {
		p := faultProvider(i)
		sp := &sendProc{provider: p, lines: faultInput(p), outPath: filepath.Join(m.dir, p+".answers"), done: make(chan error, 1)}
		url := fmt.Sprintf("nats://127.0.0.1:%d", tm.edgePorts[edgeOf(p)])
		args := []string{"send", "--provider", p, "--timeout", faultSendTimeout, "--give-up", "90s", "--concurrency", "4",
			"--nats", url, "--user", p, "--password", faultPassword(p), "-"}
		out, err := os.Create(sp.outPath)
		if err != nil {
			m.t.Fatal(err)
		}
		log, _ := os.OpenFile(filepath.Join(m.dir, "child.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		sp.cmd = exec.Command(os.Args[0], args...)
		sp.cmd.Env = append(os.Environ(), "TALLY_TEST_CHILD=1")
		sp.cmd.Stdout, sp.cmd.Stderr = out, log
		stdin, err := sp.cmd.StdinPipe()
		if err != nil {
			m.t.Fatal(err)
		}
		if err := sp.cmd.Start(); err != nil {
			m.t.Fatal(err)
		}
		go feedChunks(stdin, sp.lines, gates, stop)
		go func() { sp.done <- sp.cmd.Wait(); out.Close(); log.Close() }()
		m.t.Cleanup(func() {
			if sp.cmd.ProcessState == nil {
				sp.cmd.Process.Signal(syscall.SIGKILL)
			}
		})
		m.sends = append(m.sends, sp)
	}
}

// feedChunks writes lines to w in len(gates)+1 equal chunks, chunk k+1 only
// after gates[k] is closed, then closes w. It gives up when stop is closed.
func feedChunks(w io.WriteCloser, lines [][]byte, gates []chan struct{}, stop chan struct{}) {
	defer w.Close()
	per := (len(lines) + len(gates)) / (len(gates) + 1)
	for k := 0; k <= len(gates); k++ {
		if k > 0 {
			select {
			case <-gates[k-1]:
			case <-stop:
				return
			}
		}
		for _, l := range lines[min(k*per, len(lines)):min((k+1)*per, len(lines))] {
			if _, err := w.Write(append(append([]byte(nil), l...), '\n')); err != nil {
				return
			}
			select {
			case <-time.After(5 * time.Millisecond):
			case <-stop:
				return
			}
		}
	}
}

// settledBy is the number of distinct ids in settle node i's ledger now.
func (tm *topoMesh) settledBy(i int) int {
	ids, _ := ledgerIDs(filepath.Join(tm.dir, settleName(i)+"-data", "ledger"))
	return len(ids)
}

// answeredBy counts the answers printed so far to each edge's providers.
func (tm *topoMesh) answeredBy() [topoEdges]int {
	var n [topoEdges]int
	for _, sp := range tm.sends {
		b, _ := os.ReadFile(sp.outPath)
		n[edgeOf(sp.provider)] += bytes.Count(b, []byte("\n"))
	}
	return n
}

// killOwnerOfPartition0 kills -9 the settle node owning partition 0 and
// waits (≤ 10 s) until the other owns every partition. It returns the
// survivor.
func (tm *topoMesh) killOwnerOfPartition0() (survivor int) {
	t := tm.t
	t.Helper()
	victim, survivor := victimOf(tm.owners())
	tm.settles[victim].kill()
	killed := time.Now()
	tm.waitOwners(10*time.Second, settleName(survivor)+" owns every partition", func(o map[int]string) bool {
		return countOwned(o, settleName(survivor)) == leaseParts
	})
	t.Logf("kill -9 of %s (owner of partition 0) with %v lines answered per edge: %s owns all %d partitions %s later (lease TTL %s)",
		settleName(victim), tm.answeredBy(), settleName(survivor), leaseParts, time.Since(killed).Round(time.Millisecond), leaseTTL)
	return survivor
}

// TestClusterFullTopology: 3 hubs (R3) + 2 leaf edges + 2 lease settle
// nodes, providers sending through both edges. kill -9 the owner of
// partition 0 mid-load: the other owns every partition within 10 s (TTL 2 s),
// the ledger continues, every line has a definite answer, the survivor's
// ledger holds exactly the accepted (provider, id) pairs once each, and
// `tally verify` passes. TALLY_SOAK=1: the killed node is restarted and the
// owner of partition 0 killed again, three kills in all.
func TestClusterFullTopology(t *testing.T) {
	kills := 1
	if soak() {
		kills = 3
	}
	tm := startTopology(t)
	tm.spread()
	// The providers' input in chunks: one at once, one after each kill, and
	// (soak) one after each rejoin, so every kill is mid-load.
	gates := make([]chan struct{}, 2*kills-1)
	for k := range gates {
		gates[k] = make(chan struct{})
	}
	opened := 0
	next := func() { close(gates[opened]); opened++ }
	tm.startEdgeSends(gates)
	total := faultProviders * faultLines
	var survivor int
	for k := range kills {
		if k > 0 { // soak: bring the killed node back, let it rejoin, kill again
			victim := 1 - survivor
			tm.settles[victim], tm.logs[victim] = startLogged(t, tm.dir, fmt.Sprintf("%s.%d.log", settleName(victim), k), "node", "--config", tm.cfgs[victim])
			tm.waitLog(victim, "settling by lease", 60*time.Second)
			tm.spread()
			next()
		}
		// Under load, with both settle nodes settling their partitions.
		base := [2]int{tm.settledBy(0), tm.settledBy(1)}
		natstest.Eventually(t, 60*time.Second, func() error {
			a := tm.answeredBy()
			s := [2]int{tm.settledBy(0) - base[0], tm.settledBy(1) - base[1]}
			if a[0] < 100 || a[1] < 50 || s[0] < 20 || s[1] < 20 {
				return fmt.Errorf("answered per edge %v; settled since the spread by settle-1 %d, settle-2 %d", a, s[0], s[1])
			}
			return nil
		})
		if n := tm.answered(); n >= total {
			t.Fatalf("all %d lines answered before kill %d: not mid-load", total, k+1)
		}
		survivor = tm.killOwnerOfPartition0()
		next() // the providers send the next chunk
	}
	// Ownership as `tally status --nats` reports it.
	for _, p := range tm.statusJSON().Partitions {
		if p.Owner.Owner != settleName(survivor) {
			t.Errorf("tally status: partition %d owner %q, want %s", p.Partition, p.Owner.Owner, settleName(survivor))
		}
	}
	tm.settle = tm.settles[survivor]
	tm.ledgerDir = filepath.Join(tm.dir, settleName(survivor)+"-data", "ledger")
	tm.finish(fmt.Sprintf("%d kill -9 of a lease owner in the full topology", kills))
	tm.edges[1].stop(t)
}
