package recon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// Asking the edge to replay: the ids of a result's Missing section (in the
// provider's report, not in the ledger) are sent to the edge that serves the
// provider (wire.ReplayIDsRequest on Subjects.ReplayIDs, ingest/replayids.go),
// which republishes the records it still holds. Each id ends with one
// outcome (ReplayOutcome).
//
// The outcome is kept beside the signed result, not in it: the result states
// what the ledger and the report held when it was run, which a replay does
// not change; a reconciliation run after settlement caught up shows the
// effect. <seq>-<period>.replay.json holds the latest replay of that result
// (JSON, unsigned, overwritten by the next one).

// Outcomes of one id.
const (
	ReplayRepublished = "republished"  // an edge published the record again; settlement applies it unless it had passed it
	ReplayRetention   = "retention"    // an edge accepted it, retention has deleted it: the provider must resend it
	ReplayNotAccepted = "not_accepted" // the edges that answered do not hold it: the provider must resend it
	ReplayNoEdge      = "no_edge"      // no edge answered: no edge holds it, the provider must resend it
	ReplayFailed      = "error"        // the edge could not answer or publish; try again
)

// ReplayOutcome is what became of one missing id.
type ReplayOutcome struct {
	ID      string `json:"id"`
	Outcome string `json:"outcome"`
	Edge    string `json:"edge,omitempty"`     // the edge node that answered (republished: the one that published)
	EdgeSeq uint64 `json:"edge_seq,omitempty"` // its edge sequence (republished)
	Reason  string `json:"reason"`
}

// Replay is one replay request's result for a kept reconciliation.
type Replay struct {
	Provider string          `json:"provider"`
	Seq      int             `json:"seq"` // the reconciliation's
	At       string          `json:"at"`  // RFC 3339, UTC
	Outcomes []ReplayOutcome `json:"outcomes"`
}

// Count is how many outcomes are o.
func (r *Replay) Count(o string) int {
	n := 0
	for _, x := range r.Outcomes {
		if x.Outcome == o {
			n++
		}
	}
	return n
}

// ReplayOptions configure AskReplay.
type ReplayOptions struct {
	Subjects wire.Subjects
	Timeout  time.Duration // wait this long for the first answer to a request (default 2 s)
	Max      int           // ids per request (default wire.DefaultReplayIDsMax); lowered to an edge's bound when it refuses
}

// maxAnswers bounds the answers read for one request (one edge per hub
// serves a provider; a few hubs joined by leaf nodes may each have one).
const maxAnswers = 64

// lateAnswers is how long more answers are awaited after the first one.
const lateAnswers = 200 * time.Millisecond

// AskReplay asks the edges serving provider to republish ids, on nc, and
// returns one outcome per distinct id, in the order given. The error is for
// a connection that cannot send at all.
func AskReplay(ctx context.Context, nc *nats.Conn, o ReplayOptions, provider string, ids []string) ([]ReplayOutcome, error) {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Max <= 0 {
		o.Max = wire.DefaultReplayIDsMax
	}
	var uniq []string
	seen := map[string]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	got := map[string]ReplayOutcome{}
	todo := uniq
	for len(todo) > 0 {
		chunk := todo[:min(o.Max, len(todo))]
		replies, err := askOnce(ctx, nc, o, provider, chunk)
		if err != nil {
			return nil, err
		}
		if m := smallestMax(replies); m > 0 && m < len(chunk) {
			o.Max = m // an edge takes fewer per request: ask again in its size
			continue
		}
		for _, id := range chunk {
			got[id] = merge(id, replies, o.Timeout)
		}
		todo = todo[len(chunk):]
	}
	out := make([]ReplayOutcome, 0, len(uniq))
	for _, id := range uniq {
		out = append(out, got[id])
	}
	return out, nil
}

func smallestMax(replies []wire.ReplayIDsReply) int {
	m := 0
	for _, r := range replies {
		if r.Max > 0 && (m == 0 || r.Max < m) {
			m = r.Max
		}
	}
	return m
}

// askOnce publishes one request and reads the answers: until Timeout
// without any, then lateAnswers after the latest, at most maxAnswers. A
// "no responders" status (nobody subscribes the subject) ends it at once.
func askOnce(ctx context.Context, nc *nats.Conn, o ReplayOptions, provider string, ids []string) ([]wire.ReplayIDsReply, error) {
	body, err := json.Marshal(wire.ReplayIDsRequest{Provider: provider, IDs: ids})
	if err != nil {
		return nil, err
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("replay: subscribe %s: %w", inbox, err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(o.Subjects.ReplayIDs(provider), inbox, body); err != nil {
		return nil, fmt.Errorf("replay: publish request: %w", err)
	}
	if err := nc.FlushTimeout(o.Timeout); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	var out []wire.ReplayIDsReply
	wait := o.Timeout
	for len(out) < maxAnswers {
		c, cancel := context.WithTimeout(ctx, wait)
		m, err := sub.NextMsgWithContext(c)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			break // timed out: no (more) answers
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			break // no responders
		}
		var r wire.ReplayIDsReply
		if json.Unmarshal(m.Data, &r) != nil {
			r = wire.ReplayIDsReply{Error: "unreadable answer: " + strings.ToValidUTF8(string(m.Data[:min(len(m.Data), 200)]), "?")}
		}
		out = append(out, r)
		wait = lateAnswers
	}
	return out, nil
}

// merge is id's outcome from every answer: republished by any edge wins;
// then a failure, retention, not accepted; nobody answering is no_edge.
func merge(id string, replies []wire.ReplayIDsReply, timeout time.Duration) ReplayOutcome {
	if len(replies) == 0 {
		return ReplayOutcome{ID: id, Outcome: ReplayNoEdge, Reason: fmt.Sprintf("no edge answered within %s: no edge holds it, the provider must resend it", timeout)}
	}
	var failed, retention, notAccepted []ReplayOutcome
	for _, r := range replies {
		node := r.Node
		if node == "" {
			node = "(unnamed)"
		}
		for i, f := range r.Found {
			if f != id {
				continue
			}
			var seq uint64
			if i < len(r.Seqs) {
				seq = r.Seqs[i]
			}
			for _, p := range r.Published {
				if p == id {
					return ReplayOutcome{ID: id, Outcome: ReplayRepublished, Edge: node, EdgeSeq: seq,
						Reason: fmt.Sprintf("republished by edge %s (its sequence %d)", node, seq)}
				}
			}
			failed = append(failed, ReplayOutcome{ID: id, Outcome: ReplayFailed, Edge: node, EdgeSeq: seq,
				Reason: fmt.Sprintf("edge %s holds it (sequence %d) but could not republish it: %s", node, seq, r.Error)})
		}
		answered := false
		for _, m := range r.Missing {
			if m.ID != id {
				continue
			}
			answered = true
			oc := ReplayOutcome{ID: id, Edge: node, Reason: m.Reason}
			if m.Code == wire.ReplayRetention {
				oc.Outcome = ReplayRetention
				retention = append(retention, oc)
			} else {
				oc.Outcome = ReplayNotAccepted
				notAccepted = append(notAccepted, oc)
			}
		}
		if !answered && r.Error != "" && !containsID(r.Found, id) {
			failed = append(failed, ReplayOutcome{ID: id, Outcome: ReplayFailed, Edge: node, Reason: fmt.Sprintf("edge %s refused the request: %s", node, r.Error)})
		}
	}
	for _, list := range [][]ReplayOutcome{failed, retention} {
		if len(list) > 0 {
			return list[0]
		}
	}
	if len(notAccepted) > 0 {
		oc := notAccepted[0]
		var edges, reasons []string
		for _, n := range notAccepted {
			edges = append(edges, n.Edge)
			reasons = append(reasons, n.Reason)
		}
		sort.Strings(edges)
		oc.Edge = strings.Join(edges, ",")
		oc.Reason = strings.Join(reasons, "; ") + ": the provider must resend it"
		return oc
	}
	return ReplayOutcome{ID: id, Outcome: ReplayFailed, Reason: "the edges answered without naming it"}
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// ReplayPath is where the replay of the kept result at notePath is stored.
func ReplayPath(notePath string) string {
	return strings.TrimSuffix(notePath, ".note") + ".replay.json"
}

// KeepReplay stores r beside the kept result (replacing an earlier replay of it).
func KeepReplay(k Kept, r Replay) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return store.WriteFileAtomic(ReplayPath(k.Path), append(b, '\n'))
}

// LoadReplay reads the replay stored beside k; nil when there is none.
func LoadReplay(k Kept) (*Replay, error) {
	b, err := store.ReadFileMax(ReplayPath(k.Path), MaxNoteBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Replay
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", ReplayPath(k.Path), err)
	}
	if r.Provider != k.Result.Provider || r.Seq != k.Seq {
		return nil, fmt.Errorf("%s: replay of %s %d beside reconciliation %s %d", ReplayPath(k.Path), r.Provider, r.Seq, k.Result.Provider, k.Seq)
	}
	return &r, nil
}

// MissingIDs are the ids of r's Missing section, in order.
func MissingIDs(r *Result) []string {
	ids := make([]string, 0, len(r.Missing))
	for _, it := range r.Missing {
		ids = append(ids, it.ID)
	}
	return ids
}
