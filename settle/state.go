package settle

import (
	"sort"

	"github.com/tally-mesh/tally/settle/engine"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// The pure decision code and the record types live in settle/engine; these
// names keep settle's API (rules eval, statements, the node's Stats) as it was.
type (
	Engine   = engine.Engine
	Input    = engine.Input
	State    = engine.State
	Sink     = engine.Sink
	Held     = engine.Held
	MemState = engine.MemState
	// Counters are per-partition outcome counts, persisted with every commit.
	Counters = engine.Counters
	// Exception is a transaction accepted upstream that could not be settled as is.
	Exception = engine.Exception

	dedupRec  = engine.DedupRec
	orphanRec = engine.OrphanRec
)

// NewMemState returns an empty in-memory State.
func NewMemState() *MemState { return engine.NewMemState() }

// Exception kinds (see settle/engine).
const (
	ExcConflict     = engine.ExcConflict
	ExcNoRule       = engine.ExcNoRule
	ExcUndecodable  = engine.ExcUndecodable
	ExcOverReversal = engine.ExcOverReversal
	ExcCurrency     = engine.ExcCurrency
	ExcOrphanTimout = engine.ExcOrphanTimout
	ExcPaidTwice    = engine.ExcPaidTwice
)

func entryDedup(e *store.Entry) dedupRec { return engine.EntryRecord(e) }

// batchState is State over a worker's batch: the overlay first, then the
// Badger index.
type batchState struct {
	w *worker
	b *batch
}

func (s batchState) Dedup(provider, id string) (*dedupRec, error) {
	s.b.key = appendKeyDedup(s.b.key[:0], provider, id)
	return s.b.getDedup(s.w.n.idx, s.b.key)
}

func (s batchState) PutDedup(provider, id string, r *dedupRec) {
	s.b.key = appendKeyDedup(s.b.key[:0], provider, id)
	s.b.dedup[string(s.b.key)] = r
	s.b.dirty = true
}

func (s batchState) Held(provider, parent string) ([]Held, error) {
	var prefix []byte
	if provider != "" {
		s.b.key = appendKeyOrphanParent(s.b.key[:0], s.w.p, provider, parent) // orphansFor keeps no reference to it
		prefix = s.b.key
	} else {
		prefix = keyOrphans(s.w.p)
	}
	m, err := s.b.orphansFor(s.w.n.idx.db, prefix)
	if err != nil || len(m) == 0 {
		return nil, err
	}
	out := make([]Held, 0, len(m))
	for k, o := range m {
		out = append(out, Held{Key: k, Provider: orphanProvider(k), OrphanRec: o})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s batchState) Hold(provider, parent, id string, o orphanRec) {
	s.b.addOrphan(keyOrphan(s.w.p, provider, parent, id), o)
	s.b.sideBytes += len(o.Payload)
}

func (s batchState) Release(h Held) { s.b.delOrphan(h.Key) }

func (s batchState) Paid(statement string) (string, error) {
	return s.b.getPaid(s.w.n.idx.db, statement)
}

func (s batchState) PutPaid(statement, by string) {
	s.b.paid[statement] = by
	s.b.dirty = true
}

// orphanProvider reads the provider out of an o/<p><provider>\x00... key.
func orphanProvider(k string) string {
	rest := relKey(k)
	for i := 0; i < len(rest); i++ {
		if rest[i] == 0 {
			return rest[:i]
		}
	}
	return rest
}

// batchSink is Sink over a worker's batch: entries to seal, balance deltas,
// exceptions to record, alerts to raise after the commit.
type batchSink struct {
	w *worker
	b *batch
}

func (s batchSink) Entry(e store.Entry) {
	b := s.b
	b.entries = append(b.entries, e)
	b.dirty = true
}

func (s batchSink) Exception(e Exception) {
	s.b.exceptions = append(s.b.exceptions, e)
	s.b.sideBytes += len(e.Payload)
	s.b.dirty = true
	s.w.log.Warn("exception", "kind", e.Kind, "provider", e.Provider, "id", e.ID, "reason", e.Reason)
	s.b.alerts = append(s.b.alerts, alert{wire.AlertException, e})
}
