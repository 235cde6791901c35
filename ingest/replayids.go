package ingest

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// The replay-by-id service answers <prefix>.edges.replay-ids.<provider>
// (console or `tally reconcile --replay` → ingest, core NATS request/reply,
// wire.ReplayIDsRequest → wire.ReplayIDsReply). A reconciliation found ids
// in the provider's report that the ledger lacks; this edge looks each one
// up in its WAL dedup index (d/<provider>/<id> → seq ‖ hash) and publishes
// the records it still holds again, exactly as the seq-range replay does
// (replayBatch: fresh Nats-Msg-Ids, Tally-Replay: 1; settlement skips what
// it already has by its high-water mark).
//
//   - Only the edge holding the provider's claim subscribes (claims.go):
//     one edge per hub answers for a provider. An edge without a provider
//     list subscribes <prefix>.edges.replay-ids.*.
//   - It republishes only records it accepted: the dedup entry names the
//     sequence, and the record read there must hash to the dedup entry's
//     SHA-256, or nothing is published and the reply carries the error.
//   - An id without a dedup entry is missing (wire.ReplayNotAccepted): never
//     accepted here, or its record and dedup key were dropped together by
//     retention; the reason says whether retention has deleted anything of
//     the provider. An entry below the retention floor is missing
//     (wire.ReplayRetention).
//   - At most Config.ReplayIDsMax ids per request; a longer request is
//     refused whole with Max set, and the client asks again in smaller ones.
//   - Retention never deletes under it (replayMu, as the seq-range replay).

// startReplayIDs subscribes the replay-by-id service for the providers this
// node claimed (or all, without a provider list), on the hub connection.
func (n *Node) startReplayIDs(hub *nats.Conn) error {
	subjects := []string{n.cfg.Subjects.ReplayIDsAll()}
	if len(n.cfg.Providers) > 0 {
		subjects = subjects[:0]
		for _, p := range n.confirmed() {
			subjects = append(subjects, n.cfg.Subjects.ReplayIDs(p))
		}
		slices.Sort(subjects)
	}
	for _, subj := range subjects {
		sub, err := hub.Subscribe(subj, n.handleReplayIDs)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		n.replayIDSubs = append(n.replayIDSubs, sub)
	}
	return nil
}

// stopReplayIDs unsubscribes; stopReplay then waits for a replay in flight.
func (n *Node) stopReplayIDs() {
	for _, sub := range n.replayIDSubs {
		if err := sub.Unsubscribe(); err != nil {
			n.log.Debug("unsubscribe replay-ids", "error", err)
		}
	}
}

func (n *Node) handleReplayIDs(m *nats.Msg) {
	p, _ := n.cfg.Subjects.ProviderFromReplayIDs(m.Subject)
	rep := n.replayIDs(p, m.Data)
	rep.Node = n.cfg.NodeID
	if m.Reply == "" {
		return
	}
	b, _ := json.Marshal(rep)
	if err := m.Respond(b); err != nil {
		n.log.Debug("replay-ids reply not sent", "error", err)
	}
}

// replayIDsBody bounds a request body: ids of at most the longest id the
// decoder takes, quoted, comma-separated, plus the envelope.
func (n *Node) replayIDsBody() int {
	idLen := n.cfg.Limits.IDLen
	if idLen <= 0 {
		idLen = txn.DefaultLimits().IDLen
	}
	return n.cfg.ReplayIDsMax*(idLen*6+3) + 1024 // \u00XX escapes: 6 bytes per byte at worst
}

// replayIDs serves one request for provider subj (from the subject) with body.
func (n *Node) replayIDs(subj string, body []byte) wire.ReplayIDsReply {
	var req wire.ReplayIDsRequest
	if len(body) > n.replayIDsBody() {
		return wire.ReplayIDsReply{Max: n.cfg.ReplayIDsMax, Error: fmt.Sprintf("replay-ids request of %d bytes is too large: at most %d ids per request", len(body), n.cfg.ReplayIDsMax)}
	}
	if json.Unmarshal(body, &req) != nil {
		return wire.ReplayIDsReply{Error: "bad replay-ids request: want JSON {provider, ids}"}
	}
	if !wire.ValidToken(req.Provider) || req.Provider != subj {
		return wire.ReplayIDsReply{Error: fmt.Sprintf("bad replay-ids request: provider %q on the subject of %q", req.Provider, subj)}
	}
	if len(req.IDs) > n.cfg.ReplayIDsMax {
		return wire.ReplayIDsReply{Max: n.cfg.ReplayIDsMax, Error: fmt.Sprintf("replay-ids request names %d ids: at most %d per request (ingest.replay_ids_max)", len(req.IDs), n.cfg.ReplayIDsMax)}
	}
	log := n.log.Named("replay-ids").With("provider", req.Provider, "ids", len(req.IDs))
	n.mu.Lock()
	ps, ok := n.provs[req.Provider]
	n.mu.Unlock()
	var rep wire.ReplayIDsReply
	if !ok {
		for _, id := range req.IDs {
			rep.Missing = append(rep.Missing, wire.ReplayIDMiss{ID: id, Code: wire.ReplayNotAccepted,
				Reason: "edge " + n.cfg.NodeID + " has never accepted a record of provider " + req.Provider})
		}
		return rep
	}
	n.replayMu.Lock() // retention never deletes under a replay
	defer n.replayMu.Unlock()
	if n.replayClosed {
		return wire.ReplayIDsReply{Error: ErrClosed.Error()}
	}
	first, committed := ps.first(), ps.committed.Load()
	type hit struct {
		id   string
		seq  uint64
		hash [32]byte
	}
	var hits []hit
	seen := make(map[string]bool, len(req.IDs))
	err := n.wal.db.View(func(tx *badger.Txn) error {
		for _, id := range req.IDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			v, found, err := get(tx, dedupKey(req.Provider, id))
			if err != nil {
				return err
			}
			seq, hash, good := splitDedup(v)
			switch {
			case found && !good:
				return fmt.Errorf("%w: dedup key of %s/%s holds %d bytes", ErrCorrupt, req.Provider, id, len(v))
			case !found && first > 1:
				rep.Missing = append(rep.Missing, wire.ReplayIDMiss{ID: id, Code: wire.ReplayNotAccepted, Reason: fmt.Sprintf(
					"not in edge %s's WAL: never accepted there, or dropped by retention with records 1-%d of %s", n.cfg.NodeID, first-1, req.Provider)})
			case !found:
				rep.Missing = append(rep.Missing, wire.ReplayIDMiss{ID: id, Code: wire.ReplayNotAccepted, Reason: fmt.Sprintf(
					"never accepted by edge %s (it still holds every record of %s it accepted, from sequence 1)", n.cfg.NodeID, req.Provider)})
			case seq < first:
				rep.Missing = append(rep.Missing, wire.ReplayIDMiss{ID: id, Code: wire.ReplayRetention, Reason: fmt.Sprintf(
					"accepted by edge %s as sequence %d, deleted by retention (it holds %s from sequence %d)", n.cfg.NodeID, seq, req.Provider, first)})
			case seq > committed:
				return fmt.Errorf("%w: dedup key of %s/%s names sequence %d past the committed %d", ErrCorrupt, req.Provider, id, seq, committed)
			default:
				hits = append(hits, hit{id, seq, hash})
			}
		}
		return nil
	})
	if err != nil {
		log.Error("replay-ids lookup failed", "error", err)
		return wire.ReplayIDsReply{Error: err.Error()}
	}
	slices.SortFunc(hits, func(a, b hit) int { return cmp.Compare(a.seq, b.seq) })
	// Check each record against its dedup hash before anything goes out.
	maxBody := n.replayMaxBody()
	for _, h := range hits {
		recs, _, _, err := n.fwd.read(req.Provider, h.seq, h.seq, maxBody)
		if err == nil && sha256.Sum256(recs[0].Payload) != h.hash {
			err = fmt.Errorf("%w: record %d of %s does not hash to the dedup entry of id %s", ErrCorrupt, h.seq, req.Provider, h.id)
		}
		if err != nil {
			log.Error("replay-ids refused", "error", err)
			return wire.ReplayIDsReply{Error: err.Error()}
		}
		rep.Found = append(rep.Found, h.id)
		rep.Seqs = append(rep.Seqs, h.seq)
	}
	n.replays.Add(1)
	// Publish runs of consecutive sequences, each as replayBatch allows.
	for i := 0; i < len(hits); {
		j := i + 1
		for j < len(hits) && hits[j].seq == hits[j-1].seq+1 {
			j++
		}
		for next, end := hits[i].seq, hits[j-1].seq; next <= end; {
			last, err := n.replayBatch(req.Provider, next, min(end, next+uint64(n.cfg.ForwardBatch)-1))
			if err != nil {
				rep.Error = err.Error()
				log.Error("replay-ids stopped", "at", next, "published", len(rep.Published), "error", err)
				return rep
			}
			for k := i; k < j && hits[k].seq <= last; k++ {
				if hits[k].seq >= next {
					rep.Published = append(rep.Published, hits[k].id)
				}
			}
			n.replayed.Add(last - next + 1)
			next = last + 1
		}
		i = j
	}
	log.Info("replayed by id", "published", len(rep.Published), "missing", len(rep.Missing))
	return rep
}

// replayMaxBody is the largest batch body replayBatch sends.
func (n *Node) replayMaxBody() int {
	maxBody := int(n.fwd.js.Conn().MaxPayload()) - headerRoom
	if maxBody <= 0 {
		maxBody = defaultMaxBody - headerRoom
	}
	return maxBody
}
