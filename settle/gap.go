package settle

import (
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/wire"
)

// A gap is a batch whose first record is above its (edge node, provider)'s
// high-water mark + 1: an earlier batch is missing (a publish the hub lost,
// or a redelivery that comes later than a newer message). Nothing is ever
// applied out of order, so the batch waits, and the edge is asked to replay
// the missing records.
//
// The batch waits in memory, unacked, in the worker's gap holds, not by NAK.
// An earlier build NAKed it with a 500 ms delay; under load that never
// converged (issue 16, item 3): JetStream serves redeliveries before any new
// message (consumer.getNextMsg), and the missing batch, whether resent by the
// edge's forwarder or replayed on request, is always a *new* message at the
// tail of the stream. Every later batch of the provider became another NAKed
// gap that came back every 500 ms, until the worker spent each fetch on
// redeliveries: the stream tail, with the replay on it, was never delivered
// again, the gap warning was logged for every redelivery (hundreds a second)
// and a replay was requested every 2 s, each landing behind the last.
// Holding the batch costs no delivery; the fetches keep reading the stream in
// order, reach the replayed batch, and the held batches apply right after it.
//
// A held message stays unacked: if it is held longer than AckWait, JetStream
// delivers it again and the newer delivery replaces the older (same stream
// sequence). At most maxHeld messages are held per partition; beyond that a
// gapped batch is NAKed with gapOverflowDelay (and applies after the gap
// closes, when it comes back).
const (
	maxHeld          = 2000
	gapOverflowDelay = 5 * time.Second
	gapWarnEvery     = 5 * time.Second // at most one gap warning per (node, provider) this often
)

// gapHold is one (edge node, provider)'s batches held behind a gap.
type gapHold struct {
	node, provider string
	msgs           []heldMsg // by first edge sequence
	since          time.Time // gap opened
	warned         time.Time // last warning
	minFirst       uint64    // lowest first sequence of a gapped batch: the gap is hwm+1..minFirst-1
	hits           int       // gapped deliveries since the last warning
	total          int       // gapped deliveries since the gap opened
}

type heldMsg struct {
	m     jetstream.Msg
	first uint64 // first edge sequence in the batch
	sseq  uint64 // stream sequence (0 if unknown)
}

// hold keeps m (first record first, above mark hwm + 1) until the gap before
// it closes, and asks the edge to replay the missing records.
func (w *worker) hold(b *batch, hkey, node, provider string, m jetstream.Msg, first, hwm uint64) error {
	b.cnt.Gaps++
	b.dirty = true
	if w.gaps == nil {
		w.gaps = map[string]*gapHold{}
	}
	g := w.gaps[hkey]
	now := time.Now()
	if g == nil {
		g = &gapHold{node: node, provider: provider, since: now, warned: now, minFirst: first}
		w.gaps[hkey] = g
		w.log.Warn("sequence gap: holding later batches until the missing records arrive",
			"node", node, "provider", provider, "have", hwm, "got", first)
		b.alerts = append(b.alerts, alert{wire.AlertGap, map[string]any{"partition": w.p, "node": node, "provider": provider, "have": hwm, "next": first}})
	}
	g.minFirst = min(g.minFirst, first)
	g.hits++
	g.total++
	if now.Sub(g.warned) >= gapWarnEvery {
		w.log.Warn("sequence gap still open", "node", node, "provider", provider, "have", hwm,
			"held", len(g.msgs), "gapped_deliveries", g.hits, "open_for", now.Sub(g.since).Round(time.Millisecond))
		g.warned, g.hits = now, 0
	}
	var sseq uint64
	if md, err := m.Metadata(); err == nil {
		sseq = md.Sequence.Stream
	}
	i, found := slices.BinarySearchFunc(g.msgs, heldMsg{first: first, sseq: sseq}, cmpHeld)
	switch {
	case found && sseq != 0:
		g.msgs[i].m = m // a newer delivery of the same message
	case w.nheld >= maxHeld:
		if err := m.NakWithDelay(gapOverflowDelay); err != nil {
			w.log.Debug("nak", "error", err)
		}
	default:
		g.msgs = slices.Insert(g.msgs, i, heldMsg{m: m, first: first, sseq: sseq})
		w.nheld++
	}
	w.n.requestReplay(node, provider, hwm+1, g.minFirst-1)
	return nil
}

func cmpHeld(a, b heldMsg) int {
	switch {
	case a.first != b.first:
		return cmpU64(a.first, b.first)
	default:
		return cmpU64(a.sseq, b.sseq)
	}
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// release processes the held batches whose gap has closed (in edge sequence
// order, while the open segment has room), and asks again for the records
// of gaps still open (requestReplay throttles).
func (w *worker) release(b *batch) error {
	for hkey, g := range w.gaps {
		hwm, err := b.getHWM(w.n.idx.db, []byte(hkey))
		if err != nil {
			return err
		}
		for len(g.msgs) > 0 && g.msgs[0].first <= hwm+1 && len(b.entries) < w.n.cfg.SegmentMaxEntries {
			hm := g.msgs[0]
			g.msgs[0] = heldMsg{}
			g.msgs = g.msgs[1:]
			w.nheld--
			if err := w.process(b, hm.m); err != nil {
				return err
			}
			if hwm, err = b.getHWM(w.n.idx.db, []byte(hkey)); err != nil {
				return err
			}
		}
		if len(g.msgs) > 0 && hwm+1 >= g.minFirst {
			g.minFirst = g.msgs[0].first // closed up to the next held batch: any gap left is before it
		}
		if len(g.msgs) == 0 && hwm+1 >= g.minFirst {
			w.log.Info("sequence gap closed", "node", g.node, "provider", g.provider, "have", hwm,
				"gapped_deliveries", g.total, "open_for", time.Since(g.since).Round(time.Millisecond))
			delete(w.gaps, hkey)
			continue
		}
		if hwm+1 < g.minFirst {
			w.n.requestReplay(g.node, g.provider, hwm+1, g.minFirst-1)
		}
	}
	return nil
}
