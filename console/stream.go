package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/tally-mesh/tally/settle"
)

// Live feed (GET /v1/stream): Server-Sent Events. Every streamTick, and
// whenever the feed polled new entries, the connection gets
//
//	event: stats     the node's counters, lag and settled tx/s (operators only)
//	event: balances  the balances in scope that changed since the last event (all of them first)
//	event: entries   the new feed entries in scope, each narrowed to the shares in scope
//
// A partner's stream carries nothing of another partner's parties.
const (
	streamTick      = time.Second
	streamWriteWait = 30 * time.Second
	streamEntries   = 200 // entries per event at most
)

func (c *Console) stream(w http.ResponseWriter, r *http.Request, id Identity) {
	party, ok := scopeParty(w, r, id)
	if !ok {
		return
	}
	select {
	case c.streams <- struct{}{}:
		defer func() { <-c.streams }()
	default:
		fail(w, http.StatusServiceUnavailable, CodeUnavailable, "too many live feeds open; try again later")
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteWait))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	// Entries from before the stream opened are /v1/activity's.
	_, seq := c.feed.since(^uint64(0), id, 0)
	last := map[[2]string]string{}
	var prevEntries uint64
	var prevAt time.Time
	tick := time.NewTicker(streamTick)
	defer tick.Stop()
	for {
		wake := c.feed.changed()
		if !id.Partner() {
			st := c.o.Node.Stats()
			now := time.Now()
			ev := Stats{At: now.UTC().Format(time.RFC3339Nano), Settle: st.Counters, Lag: st.Lag}
			if !prevAt.IsZero() && now.After(prevAt) && st.Entries >= prevEntries {
				ev.TxPerSec = float64(st.Entries-prevEntries) / now.Sub(prevAt).Seconds()
			}
			prevEntries, prevAt = st.Entries, now
			if err := send("stats", ev); err != nil {
				return
			}
		}
		bs, err := c.feedBalances(id, party)
		if err != nil {
			c.log.Warn("live feed balances", "error", err)
		} else if ch := changedBalances(last, bs); len(ch) > 0 {
			if err := send("balances", ch); err != nil {
				return
			}
		}
		var es []FeedEntry
		es, seq = c.feed.since(seq, id, streamEntries)
		if party != "" {
			out := es[:0]
			for _, e := range es {
				if hasParty(e, party) {
					out = append(out, e)
				}
			}
			es = out
		}
		if len(es) > 0 {
			if err := send("entries", es); err != nil {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.quit:
			return
		case <-tick.C:
		case <-wake:
		}
	}
}

// changedBalances returns the balances that differ from last and records them.
func changedBalances(last map[[2]string]string, bs []settle.Balance) []settle.Balance {
	out := []settle.Balance{}
	for _, b := range bs {
		k, v := [2]string{b.Party, b.Currency}, b.Formatted()
		if last[k] != v {
			last[k] = v
			out = append(out, b)
		}
	}
	return out
}

// feedBalances is visibleBalances for the live feeds: one read of the index
// per streamTick/4 serves all of them, however many are open.
func (c *Console) feedBalances(id Identity, party string) ([]settle.Balance, error) {
	c.balMu.Lock()
	if time.Since(c.balAt) > streamTick/4 {
		all, err := c.o.Node.Balances()
		if err != nil {
			c.balMu.Unlock()
			return nil, err
		}
		c.bal, c.balAt = all, time.Now()
	}
	all := c.bal
	c.balMu.Unlock()
	out := []settle.Balance{}
	for _, b := range all {
		if id.Sees(b.Party) && (party == "" || b.Party == party) {
			out = append(out, b)
		}
	}
	return out, nil
}
