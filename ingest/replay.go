package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/wire"
)

// The replay service answers <prefix>.edge.<node>.replay (settle → ingest,
// core NATS request/reply, wire.ReplayRequest): it publishes the records of
// one provider with edge sequences From..To again to TALLY_TX, from the WAL,
// and answers wire.ReplayReply. Settlement asks when it sees a gap (a batch
// lost between this node and the stream, e.g. a hub that lost acknowledged
// data); the replayed batches close it, and anything already settled is
// skipped by settlement's high-water mark, so replaying too much is harmless.
//
//   - Replayed batches carry fresh Nats-Msg-Ids (<usual id>.r<unix ns>):
//     the original ids may still be in the stream's duplicate window, which
//     would drop the copy the stream lost.
//   - Records below the retention floor are gone: the reply names the first
//     sequence it no longer holds (Missing) and settlement raises an alert
//     an operator must act on. What it still holds is published anyway.
//   - At most ReplayMax records per request; settlement asks again for the
//     rest when the gap persists.
//   - Publishes are synchronous (one PubAck each) on the forwarder's
//     JetStream context, after at most PublishTimeout each.

// replayBodyMax bounds a replay request body.
const replayBodyMax = 4 << 10

// startReplay subscribes the replay service on the hub connection.
func (n *Node) startReplay(hub *nats.Conn) error {
	subj := n.cfg.Subjects.Replay(n.cfg.NodeID)
	sub, err := hub.Subscribe(subj, n.handleReplay)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subj, err)
	}
	n.replaySub = sub
	return nil
}

// stopReplay unsubscribes and waits for a replay in flight.
func (n *Node) stopReplay() {
	if n.replaySub == nil {
		return
	}
	if err := n.replaySub.Unsubscribe(); err != nil {
		n.log.Debug("unsubscribe replay", "error", err)
	}
	n.replayMu.Lock()
	n.replayClosed = true
	n.replayMu.Unlock()
}

func (n *Node) handleReplay(m *nats.Msg) {
	rep := n.replay(m.Data)
	if m.Reply == "" {
		return
	}
	b, _ := json.Marshal(rep)
	if err := m.Respond(b); err != nil {
		n.log.Debug("replay reply not sent", "error", err)
	}
}

// replay serves one request body.
func (n *Node) replay(body []byte) wire.ReplayReply {
	var req wire.ReplayRequest
	if len(body) > replayBodyMax || json.Unmarshal(body, &req) != nil {
		return wire.ReplayReply{Error: "bad replay request: want JSON {provider, from, to}"}
	}
	if !wire.ValidToken(req.Provider) || req.From == 0 || req.To < req.From {
		return wire.ReplayReply{Error: fmt.Sprintf("bad replay request: provider %q, from %d, to %d", req.Provider, req.From, req.To)}
	}
	n.mu.Lock()
	ps, ok := n.provs[req.Provider]
	n.mu.Unlock()
	log := n.log.Named("replay").With("provider", req.Provider, "from", req.From, "to", req.To)
	if !ok {
		log.Warn("replay of an unknown provider")
		return wire.ReplayReply{Missing: req.From, Error: "this node holds no records of provider " + req.Provider}
	}
	n.replayMu.Lock() // retention never deletes under a replay
	defer n.replayMu.Unlock()
	if n.replayClosed {
		return wire.ReplayReply{Error: ErrClosed.Error()}
	}
	n.replays.Add(1)
	var rep wire.ReplayReply
	first, committed := ps.first(), ps.committed.Load()
	from, to := max(req.From, first), min(req.To, committed)
	if req.From < first {
		rep.Missing = req.From
	} else if req.To > committed {
		rep.Missing = committed + 1
	}
	if to-from+1 > uint64(n.cfg.ReplayMax) && from <= to {
		to = from + uint64(n.cfg.ReplayMax) - 1
	}
	for next := from; next <= to; {
		last, err := n.replayBatch(ps.name, next, min(to, next+uint64(n.cfg.ForwardBatch)-1))
		if err != nil {
			rep.Error = err.Error()
			log.Error("replay stopped", "at", next, "published", rep.Published, "error", err)
			return rep
		}
		rep.Published += last - next + 1
		n.replayed.Add(last - next + 1)
		next = last + 1
	}
	if rep.Missing != 0 {
		log.Error("replay asked for records this node does not hold", "first_held", first, "committed", committed, "published", rep.Published)
	} else {
		log.Info("replayed", "published", rep.Published)
	}
	return rep
}

// replayBatch publishes records first..end (fewer if they pass the message
// size) as one batch and returns the last sequence published.
func (n *Node) replayBatch(p string, first, end uint64) (uint64, error) {
	js := n.fwd.js
	maxBody := int(js.Conn().MaxPayload()) - headerRoom
	if maxBody <= 0 {
		maxBody = defaultMaxBody - headerRoom
	}
	recs, _, _, err := n.fwd.read(p, first, end, maxBody)
	if err != nil {
		return 0, err
	}
	last := recs[len(recs)-1].Seq
	body := wire.AppendBatch(make([]byte, 0, bodySize(recs)), recs)
	sum := sha256.Sum256(body)
	node := n.cfg.NodeID
	m := nats.NewMsg(n.cfg.Subjects.Tx(node, p))
	m.Data = body
	m.Header.Set(wire.HdrMsgID, fmt.Sprintf("%s.%s.%d-%d.r%d", node, p, first, last, time.Now().UnixNano()))
	m.Header.Set(wire.HdrNode, node)
	m.Header.Set(wire.HdrProvider, p)
	m.Header.Set(wire.HdrFirstSeq, strconv.FormatUint(first, 10))
	m.Header.Set(wire.HdrLastSeq, strconv.FormatUint(last, 10))
	m.Header.Set(wire.HdrHash, hex.EncodeToString(sum[:]))
	m.Header.Set(wire.HdrReplay, "1")
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.PublishTimeout)
	defer cancel()
	if _, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(n.cfg.Subjects.TxStream())); err != nil {
		return 0, fmt.Errorf("publish replay %d-%d: %w", first, last, err)
	}
	return last, nil
}
