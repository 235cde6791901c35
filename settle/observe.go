package settle

import "time"

// PartitionStats is one partition's live view, for metrics.
type PartitionStats struct {
	Partition int
	Counters         // last committed counters of this partition
	Lag       uint64 // forwarded batches (JetStream messages) not yet settled: pending + unacked
}

// Partitions returns every partition's committed counters and lag, in the
// order of Config.Partitions. Stats is their sum.
func (n *Node) Partitions() []PartitionStats {
	ws := n.workers()
	out := make([]PartitionStats, 0, len(ws))
	for _, w := range ws {
		ps := PartitionStats{Partition: int(w.p), Lag: w.lag.Load()}
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
