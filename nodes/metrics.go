package nodes

import (
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/ingest"
	"github.com/tally-mesh/tally/metrics"
	"github.com/tally-mesh/tally/settle"
)

// probe is what /metrics and /readyz read. It holds its own references to the
// roles, taken once they are started, so scrapes never race Close clearing
// the Node's fields; the roles' Stats stay readable after they close.
type probe struct {
	cfg     config.Config
	ing     *ingest.Node
	st      *settle.Node
	nc      *nats.Conn
	leaf    *server.Server // an edge's own leaf server; nil otherwise
	local   bool           // nc is an in-process connection to this node's hub
	closing atomic.Bool
}

func (p *probe) IngestStats() (ingest.Stats, bool) {
	if p.ing == nil {
		return ingest.Stats{}, false
	}
	return p.ing.Stats(), true
}

func (p *probe) SettlePartitions() ([]settle.PartitionStats, bool) {
	if p.st == nil {
		return nil, false
	}
	return p.st.Partitions(), true
}

// checks are the readiness conditions of the roles this node runs.
func (p *probe) checks() []metrics.Check {
	var cs []metrics.Check
	if p.closing.Load() {
		cs = append(cs, metrics.Check{Name: "node", OK: false, Detail: "draining: the node is shutting down"})
	}
	hub, hubDetail := p.hubReachable()
	if p.ing != nil {
		c := metrics.Check{Name: "wal", OK: p.ing.WALOpen()}
		st := p.ing.Stats()
		switch {
		case !c.OK:
			c.Detail = "the WAL is closed"
		case st.BufferedBytes >= st.BudgetBytes:
			c.OK, c.Detail = false, fmt.Sprintf("the WAL is full: %d of %d budget bytes; new transactions are answered buffer_full", st.BufferedBytes, st.BudgetBytes)
		default:
			c.Detail = fmt.Sprintf("%d of %d budget bytes; %d records to forward", st.BufferedBytes, st.BudgetBytes, st.ForwardLag)
		}
		cs = append(cs, c)
	}
	hc := metrics.Check{Name: "hub", OK: hub, Detail: hubDetail}
	if !hub && p.ing != nil && p.st == nil {
		// An edge keeps accepting into its WAL while the hub is away: that is
		// its offline budget (the wal check fails when it is spent).
		hc.OK, hc.Detail = true, hubDetail+"; buffering in the WAL within its budget"
	}
	cs = append(cs, hc)
	if p.st != nil {
		c := metrics.Check{Name: "partitions", OK: p.st.Running()}
		parts := p.st.Partitions()
		var lag uint64
		for _, ps := range parts {
			lag += ps.Lag
		}
		if c.OK {
			c.Detail = fmt.Sprintf("%d partitions running; %d batches to settle", len(parts), lag)
		} else if err := p.st.Err(); err != nil {
			c.Detail = "a partition stopped: " + err.Error()
		} else {
			c.Detail = "the partitions are stopped"
		}
		cs = append(cs, c)
	}
	return cs
}

// hubReachable: an edge with its own leaf server needs a leaf connection to
// the hub cluster; otherwise the node's NATS connection must be up (an
// embedded hub is reached in process).
func (p *probe) hubReachable() (bool, string) {
	if p.nc == nil {
		return false, "no NATS connection"
	}
	if st := p.nc.Status(); st != nats.CONNECTED {
		return false, fmt.Sprintf("NATS connection %s (%s)", st, p.cfg.NATS.URL)
	}
	if p.leaf != nil {
		if n := p.leaf.NumLeafNodes(); n == 0 {
			return false, "no leaf connection to the hub cluster"
		}
		return true, "leaf connected to the hub cluster"
	}
	if p.local {
		return true, "embedded hub (in process)"
	}
	return true, "connected to " + p.nc.ConnectedUrlRedacted()
}

// startMetrics serves metrics_listen once the roles are up.
func (n *Node) startMetrics() error {
	n.probe = &probe{cfg: n.cfg, ing: n.ingest, st: n.settle, nc: n.nc, local: n.hub != nil} // also tally status (status.go)
	if n.cfg.Leaf != nil {
		n.probe.leaf = n.hub
	}
	if n.metrics == nil {
		return nil
	}
	if err := n.metrics.Watch(n.probe); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if n.ingest != nil {
		names := make([]string, 0, len(n.cfg.Providers))
		for _, p := range n.cfg.Providers {
			names = append(names, p.Name)
		}
		n.metrics.InitProviders(names)
	}
	srv, err := metrics.Listen(n.cfg.MetricsListen, n.metrics, n.probe.checks, n.log.Named("metrics"),
		metrics.Route{Pattern: "GET /v1/status", Handler: statusHandler(n.probe)})
	if err != nil {
		return err
	}
	n.metricsSrv = srv
	n.log.Info("metrics listening", "url", "http://"+srv.Addr()+"/metrics", "readyz", "http://"+srv.Addr()+"/readyz")
	return nil
}

// MetricsAddr is the metrics server's address ("" when it is off).
func (n *Node) MetricsAddr() string {
	if n.metricsSrv == nil {
		return ""
	}
	return n.metricsSrv.Addr()
}

// draining turns /readyz to 503 for the rest of Close.
func (n *Node) draining() {
	if n.probe != nil {
		n.probe.closing.Store(true)
	}
}

// stopMetrics stops the metrics server (last in Close).
func (n *Node) stopMetrics() error {
	if n.metricsSrv == nil {
		return nil
	}
	err := n.metricsSrv.Close()
	n.metricsSrv = nil
	return err
}
