package settle

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/tally-mesh/tally/wire"
)

// replayEvery is the least time between two replay requests for the same
// (edge node, provider): a held gap sees every later batch redelivered, and
// each would otherwise ask again.
const replayEvery = 2 * time.Second

// replayer sends throttled replay requests to edge nodes.
type replayer struct {
	mu   sync.Mutex
	last map[[2]string]time.Time
}

// requestReplay asks edge node `node` to republish provider's records
// from..to. It never blocks the partition: the request and its answer run on
// their own goroutine, and the answer is only logged (the gap closes when the
// replayed batch arrives through JetStream like any other).
func (n *Node) requestReplay(node, provider string, from, to uint64) {
	if n.nc == nil || from > to {
		return
	}
	k := [2]string{node, provider}
	n.replay.mu.Lock()
	if n.replay.last == nil {
		n.replay.last = map[[2]string]time.Time{}
	}
	if time.Since(n.replay.last[k]) < replayEvery {
		n.replay.mu.Unlock()
		return
	}
	n.replay.last[k] = time.Now()
	n.replay.mu.Unlock()

	body, err := json.Marshal(wire.ReplayRequest{Provider: provider, From: from, To: to})
	if err != nil {
		return
	}
	subj := n.cfg.Subjects.Replay(node)
	go func() {
		msg, err := n.nc.Request(subj, body, 10*time.Second)
		if err != nil {
			n.log.Warn("replay request", "node", node, "provider", provider, "from", from, "to", to, "error", err)
			return
		}
		var r wire.ReplayReply
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			n.log.Warn("replay answer", "node", node, "error", err)
			return
		}
		if r.Error != "" || r.Missing != 0 {
			n.log.Error("edge cannot replay the gap", "node", node, "provider", provider, "from", from, "to", to, "missing", r.Missing, "error", r.Error)
			n.alert(wire.AlertGap, map[string]any{"node": node, "provider": provider, "from": from, "to": to, "missing": r.Missing, "error": r.Error, "reason": "edge cannot replay"})
			return
		}
		n.log.Info("edge replayed", "node", node, "provider", provider, "from", from, "to", to, "published", r.Published)
	}()
}
