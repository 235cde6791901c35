package nodes

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/wire"
)

// Status is one node's own view for `tally status`: served as JSON on the
// metrics server (GET /v1/status on metrics_listen) and answered on the NATS
// subject <prefix>.status, so `tally status --nats` gathers every reachable
// node (edges answer through their leaf link; an edge whose link is down
// does not answer, which is what it shows).
type Status struct {
	Node   string        `json:"node"`
	Roles  []string      `json:"roles"`
	At     time.Time     `json:"at"`
	Link   LinkStatus    `json:"link"`
	Ingest *IngestStatus `json:"ingest,omitempty"`
	Settle *SettleStatus `json:"settle,omitempty"`
}

// LinkStatus is the node's connection to the hub cluster.
type LinkStatus struct {
	Up     bool   `json:"up"`
	Detail string `json:"detail"`
}

// IngestStatus is an edge's WAL.
type IngestStatus struct {
	WALBytes    int64  `json:"wal_bytes"`
	BudgetBytes int64  `json:"budget_bytes"`
	ForwardLag  uint64 `json:"forward_lag"` // records accepted, not yet in TALLY_TX
	Accepted    uint64 `json:"accepted"`
}

// SettleStatus is a settle node's partitions.
type SettleStatus struct {
	Ownership  string                   `json:"ownership"` // "lease" or "static"
	Partitions []settle.PartitionStatus `json:"partitions"`
	Error      string                   `json:"error,omitempty"`
}

// StatusSubject is the NATS subject every node answers its Status on.
func StatusSubject(s wire.Subjects) string { return s.Prefix + ".status" }

func (p *probe) status() Status {
	st := Status{Node: p.cfg.NodeID, Roles: p.cfg.Roles, At: time.Now().UTC()}
	st.Link.Up, st.Link.Detail = p.hubReachable()
	if p.ing != nil {
		is := p.ing.Stats()
		st.Ingest = &IngestStatus{WALBytes: is.BufferedBytes, BudgetBytes: is.BudgetBytes, ForwardLag: is.ForwardLag, Accepted: is.Accepted}
	}
	if p.st != nil {
		ss := &SettleStatus{Ownership: p.st.Ownership(), Partitions: p.st.Status()}
		if err := p.st.Err(); err != nil {
			ss.Error = err.Error()
		}
		st.Settle = ss
	}
	return st
}

func statusHandler(p *probe) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b, _ := json.Marshal(p.status())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(append(b, '\n'))
	})
}

// serveStatus answers <prefix>.status requests with this node's Status.
func (n *Node) serveStatus(subjects wire.Subjects) error {
	if n.nc == nil || n.probe == nil {
		return nil
	}
	p := n.probe
	_, err := n.nc.Subscribe(StatusSubject(subjects), func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		b, _ := json.Marshal(p.status())
		m.Respond(b)
	})
	if err != nil {
		return fmt.Errorf("status subscription: %w", err)
	}
	return nil
}
