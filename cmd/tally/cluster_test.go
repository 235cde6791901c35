package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

// The cluster tests run the production topology of docs/deploy.md as real
// processes on loopback: three `tally node` hubs forming one NATS cluster with
// TALLY_TX and TALLY_LEDGER at R3, a settle node connected to all three, and
// an edge whose embedded leaf server links to the hubs' leafnode ports through
// one TCP proxy per hub (so the test can cut the link). Providers are `tally
// send` processes talking NATS to the edge's local port with their own users.
// The checks after the damage are the fault tests' (mesh.finish): a definite
// answer for every line, the ledger holds exactly the accepted (provider, id)
// pairs once each, `tally verify` passes.

const (
	clusterHubs      = 3
	clusterRoutePass = "route-password-1"
	clusterLeafPass  = "edge-1-leaf-password"
)

type clusterMesh struct {
	*mesh
	hubs        []*child
	clientPorts []int
	leafProxies []*tcpProxy
	nc          *nats.Conn // the test's own client, as settle-1, on every hub
	js          jetstream.JetStream
}

func startCluster(t *testing.T) *clusterMesh {
	t.Helper()
	m := &mesh{t: t, dir: t.TempDir(), hubPort: freePort(t), httpPort: freePort(t)} // hubPort: the edge's local NATS port
	c := &clusterMesh{mesh: m}
	t.Cleanup(func() { // the processes' logs, when something went wrong
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(m.dir, "child.log"))
			t.Logf("child.log (tail):\n%s", tail(b, 6000))
		}
	})
	writeFile(t, filepath.Join(m.dir, "rules.hcl"), crashRules)
	var routePorts, leafPorts []int
	for range clusterHubs {
		c.clientPorts = append(c.clientPorts, freePort(t))
		routePorts = append(routePorts, freePort(t))
		leafPorts = append(leafPorts, freePort(t))
	}
	var routes, clientURLs []string
	for i := range clusterHubs {
		routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[i])))
		clientURLs = append(clientURLs, fmt.Sprintf("nats://127.0.0.1:%d", c.clientPorts[i]))
	}
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
  cluster {
    name     = "tally-test"
    listen   = "127.0.0.1:%d"
    routes   = [%s]
    user     = "route"
    password = %q
  }
  leafnodes {
    listen       = "127.0.0.1:%d"
    no_advertise = true   # the edge must reach hubs only through the test's proxies
    user "edge-1" { password = %q }
  }
}
streams {
  partitions = 4   # replicas defaults to 3 with a cluster block
}
`, i+1, i+1, c.clientPorts[i], faultSettlePass, routePorts[i], strings.Join(routes, ", "), clusterRoutePass, leafPorts[i], clusterLeafPass))
		c.hubs = append(c.hubs, startChild(t, m.dir, "node", "--config", cfg))
	}
	for _, p := range c.clientPorts {
		waitTCP(t, fmt.Sprintf("127.0.0.1:%d", p))
	}
	nc, err := nats.Connect(strings.Join(clientURLs, ","), nats.UserInfo("settle-1", faultSettlePass), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.waitStreams(3)
	t.Logf("3-hub cluster: streams R3 with a leader and current replicas after %v", time.Since(start).Round(time.Millisecond))

	m.settleCfg = writeFile(t, filepath.Join(m.dir, "settle.hcl"), fmt.Sprintf(`
node_id   = "settle-1"
data_dir  = "settle-data"
log_level = "warn"
roles     = ["settle"]
nats {
  url      = %q
  user     = "settle-1"
  password = %q
}
streams {
  partitions = 4
}
%s`, strings.Join(clientURLs, ","), faultSettlePass, faultSettleBlock))
	m.ledgerDir = filepath.Join(m.dir, "settle-data", "ledger")
	m.settle = startChild(t, m.dir, "node", "--config", m.settleCfg)

	var hubs []string
	for _, p := range leafPorts {
		px := newProxy(t, fmt.Sprintf("127.0.0.1:%d", p))
		c.leafProxies = append(c.leafProxies, px)
		hubs = append(hubs, fmt.Sprintf("%q", "nats-leaf://"+px.addr()))
	}
	m.edgeCfg = writeFile(t, filepath.Join(m.dir, "edge.hcl"), fmt.Sprintf(`
node_id   = "edge-1"
data_dir  = "edge-data"
log_level = "warn"
roles     = ["ingest"]
leaf {
  listen   = "127.0.0.1:%d"   # the region's providers connect here
  hubs     = [%s]
  user     = "edge-1"
  password = %q
}
streams {
  partitions = 4
}
ingest {
  forward_batch   = 50
  publish_timeout = "1s"
  http_listen     = "127.0.0.1:%d"
}
%s`, m.hubPort, strings.Join(hubs, ", "), clusterLeafPass, m.httpPort, providerBlocks()))
	m.startEdge()
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", m.hubPort))
	return c
}

// waitStreams polls until both streams have `replicas` replicas, a leader,
// and every follower current.
func (c *clusterMesh) waitStreams(replicas int) {
	c.t.Helper()
	s := wire.NewSubjects(wire.DefaultPrefix)
	natstest.Eventually(c.t, 90*time.Second, func() error {
		for _, name := range []string{s.TxStream(), s.LedgerStream()} {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := c.js.Stream(ctx, name)
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			info := st.CachedInfo()
			if info.Config.Replicas != replicas {
				return fmt.Errorf("%s has %d replicas, want %d", name, info.Config.Replicas, replicas)
			}
			if info.Cluster == nil || info.Cluster.Leader == "" {
				return fmt.Errorf("%s has no leader yet", name)
			}
			if len(info.Cluster.Replicas) != replicas-1 {
				return fmt.Errorf("%s: %d followers, want %d", name, len(info.Cluster.Replicas), replicas-1)
			}
			for _, p := range info.Cluster.Replicas {
				if !p.Current {
					return fmt.Errorf("%s: follower %s not current", name, p.Name)
				}
			}
		}
		return nil
	})
}

// txLeader is the index of the hub leading TALLY_TX.
func (c *clusterMesh) txLeader() int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, wire.NewSubjects(wire.DefaultPrefix).TxStream())
	if err != nil {
		c.t.Fatal(err)
	}
	var i int
	if _, err := fmt.Sscanf(st.CachedInfo().Cluster.Leader, "hub-%d", &i); err != nil || i < 1 || i > clusterHubs {
		c.t.Fatalf("TALLY_TX leader %q is not one of the hubs", st.CachedInfo().Cluster.Leader)
	}
	return i - 1
}

// TestClusterHubKill9: kill -9 the hub leading TALLY_TX while providers send
// through the edge's leaf server. The other two elect a new leader, the
// edge's leaf link moves to a live hub, no acknowledged transaction is lost
// and settlement continues to the end.
func TestClusterHubKill9(t *testing.T) {
	c := startCluster(t)
	c.startSends(false)
	c.waitAnswered(0.3)
	natstest.Eventually(t, 60*time.Second, func() error { // under load: settlement has started
		if n := c.settled(); n < 100 {
			return fmt.Errorf("%d settled", n)
		}
		return nil
	})
	leader := c.txLeader()
	settledAtKill := c.settled()
	c.hubs[leader].kill()
	t.Logf("killed hub-%d (TALLY_TX leader) with %d lines answered, %d settled", leader+1, c.answered(), settledAtKill)
	c.hub = c.hubs[(leader+1)%clusterHubs]                // a survivor; finish stops it
	natstest.Eventually(t, 60*time.Second, func() error { // settlement continues on two hubs
		if n := c.settled(); n <= settledAtKill {
			return fmt.Errorf("%d settled, as many as at the kill", n)
		}
		return nil
	})
	c.finish("hub kill -9")
}

// TestClusterLeafLinkCut: cut the edge's leaf link to every hub for a while
// (TALLY_SOAK=1: 20 s, else 8 s) as providers keep sending to the edge's local
// NATS port. They keep getting answers from the edge's WAL; nothing accepted
// during the cut reaches the ledger until the link returns, then the backlog
// drains.
func TestClusterLeafLinkCut(t *testing.T) {
	cutFor := 8 * time.Second
	if os.Getenv("TALLY_SOAK") == "1" {
		cutFor = 20 * time.Second
	}
	c := startCluster(t)
	c.hub = c.hubs[0]
	c.startSends(false)
	c.waitAnswered(0.2)
	for _, px := range c.leafProxies {
		px.cut()
	}
	cutAt, before := time.Now(), c.answered()
	natstest.Eventually(t, 60*time.Second, func() error { // accepting goes on while cut
		if n := c.answered(); n < before+600 {
			return fmt.Errorf("%d answered during the cut (from %d)", n, before)
		}
		return nil
	})
	if rest := cutFor - time.Since(cutAt); rest > 0 {
		time.Sleep(rest) // hold the cut: the link stays down for cutFor in all
	}
	during, settled := c.answered()-before, c.settled()
	t.Logf("leaf link cut for %v: %d lines answered before, %d during; %d settled when the link returns", time.Since(cutAt).Round(time.Millisecond), before, during, settled)
	if settled > before+4*4*faultProviders {
		t.Errorf("%d settled during the cut, only %d lines were answered before it", settled, before)
	}
	for _, px := range c.leafProxies {
		px.restore()
	}
	c.finish("leaf link cut")
}
