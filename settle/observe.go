package settle

import (
	"slices"
	"time"

	"github.com/tally-mesh/tally/store"
)

// PartitionStats is one partition's live view, for metrics.
type PartitionStats struct {
	Partition int
	Counters         // last committed counters of this partition
	Lag       uint64 // forwarded batches (JetStream messages) not yet settled: pending + unacked
	// LagSeconds: how far behind real time the partition's last commit was
	// (its newest input's arrival in TALLY_TX to the commit); 0 when caught up.
	LagSeconds float64
}

// Partitions returns every partition's committed counters and lag, in the
// order of Config.Partitions. Stats is their sum.
func (n *Node) Partitions() []PartitionStats {
	ws := n.workers()
	out := make([]PartitionStats, 0, len(ws))
	for _, w := range ws {
		ps := PartitionStats{Partition: int(w.p), Lag: w.lag.Load(), LagSeconds: time.Duration(w.lagNanos.Load()).Seconds()}
		if c := w.snap.Load(); c != nil {
			ps.Counters = *c
		}
		out = append(out, ps)
	}
	return out
}

// Running reports whether no partition worker stopped on an error and the
// node is not closed.
func (n *Node) Running() bool {
	select {
	case <-n.done:
		return false
	default:
	}
	return n.Err() == nil
}

// observeSync reports a durable write of store ("ledger" or "index") that
// started at t.
func (c Config) observeSync(store string, t time.Time) {
	if c.ObserveSync != nil {
		c.ObserveSync(store, time.Since(t))
	}
}

// observeSettled reports a commit's entries per (provider, currency).
func (c Config) observeSettled(entries []store.Entry) {
	if c.ObserveSettled == nil || len(entries) == 0 {
		return
	}
	type pc struct{ provider, currency string }
	n := map[pc]int{}
	for i := range entries {
		n[pc{entries[i].Provider, entries[i].Tx.Currency.Code}]++
	}
	for k, v := range n {
		c.ObserveSettled(k.provider, k.currency, v)
	}
}

// PartitionStatus is one partition as tally status shows it.
type PartitionStatus struct {
	Partition int     `json:"partition"`
	State     string  `json:"state"` // running, starting, stopped, fenced, lease lost, releasing
	Lag       uint64  `json:"lag"`   // TALLY_TX messages pending + unacked for settle-<p>
	Entries   uint64  `json:"entries"`
	Segments  uint64  `json:"segments"`
	LeaseAge  float64 `json:"lease_age_s,omitzero"`  // seconds since the lease was last renewed (leases only)
	WriteLeft float64 `json:"write_left_s,omitzero"` // seconds this node may still write without a renewal
}

// Ownership is "lease" or "static".
func (n *Node) Ownership() string {
	if n.cfg.Leases != nil {
		return "lease"
	}
	return "static"
}

// Status lists the partitions this node runs, holds a lease on, or
// stepped down from.
func (n *Node) Status() []PartitionStatus {
	byP := map[int]*PartitionStatus{}
	get := func(p int) *PartitionStatus {
		if s := byP[p]; s != nil {
			return s
		}
		s := &PartitionStatus{Partition: p, State: "stopped"}
		byP[p] = s
		return s
	}
	n.mu.Lock()
	for p, pt := range n.parts {
		s := get(p)
		select {
		case <-pt.done:
		default:
			s.State = "starting"
			if pt.w.ready.Load() {
				s.State = "running"
			}
		}
		s.Lag = pt.w.lag.Load()
		if c := pt.w.snap.Load(); c != nil {
			s.Entries, s.Segments = c.Entries, c.Segments
		}
	}
	for p, why := range n.stepped {
		if s := get(p); s.State == "stopped" {
			s.State = why
		}
	}
	n.mu.Unlock()
	if n.leases != nil {
		if hs := n.leases.snap.Load(); hs != nil {
			now := n.leases.now()
			for _, h := range *hs {
				s := get(h.p)
				dl := time.Duration(h.deadline.Load())
				s.LeaseAge = (now - (dl - n.leases.ttl*2/3)).Seconds()
				s.WriteLeft = max(dl-now, 0).Seconds()
				if h.releasing.Load() {
					s.State = "releasing"
				}
			}
		}
	}
	out := make([]PartitionStatus, 0, len(byP))
	for _, s := range byP {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b PartitionStatus) int { return a.Partition - b.Partition })
	return out
}
