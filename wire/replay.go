package wire

// ReplayRequest asks an edge node to publish again the records of one
// provider with edge sequences From..To inclusive (settle → ingest, core NATS
// request on Subjects.Replay(node)). The edge republishes them to the
// provider's tx subject under fresh message ids (the originals may still be in
// JetStream's duplicate window) and answers with a ReplayReply. Settlement
// skips anything at or below its high-water mark, so replaying too much is
// harmless.
type ReplayRequest struct {
	Provider string `json:"provider"`
	From     uint64 `json:"from"`
	To       uint64 `json:"to"`
}

// ReplayReply is the edge's answer: how many records it published again, and
// the first sequence it no longer holds (0 when it had them all). A non-zero
// Missing means the gap cannot close by replay: an operator must act.
type ReplayReply struct {
	Published uint64 `json:"published"`
	Missing   uint64 `json:"missing,omitempty"`
	Error     string `json:"error,omitempty"`
}

// DefaultReplayIDsMax is the default of ingest.replay_ids_max: the most ids
// one ReplayIDsRequest may name. A client splits longer lists into requests
// of this size; an edge configured lower answers Error with its Max and the
// client asks again in smaller requests.
const DefaultReplayIDsMax = 1000

// ReplayIDsRequest asks the edge that serves Provider to publish again the
// records it accepted under these ids (console or `tally reconcile --replay`
// → ingest, core NATS request on Subjects.ReplayIDs(provider)). It is how a
// reconciliation break "in the report, not in the ledger" is repaired when
// the edge still holds the record. An edge republishes only what it
// accepted and still holds in its WAL, through the same path as a
// ReplayRequest (fresh message ids, settlement skips what it has).
type ReplayIDsRequest struct {
	Provider string   `json:"provider"`
	IDs      []string `json:"ids"`
}

// Replay-by-id outcome codes of one id an edge did not republish.
const (
	ReplayNotAccepted = "not_accepted" // the edge's WAL has no such id: never accepted here, or dropped by retention with its dedup key
	ReplayRetention   = "retention"    // the edge accepted it but retention has deleted the record
)

// ReplayIDMiss is one id the edge did not republish, with a stable code
// (ReplayNotAccepted, ReplayRetention) and a reason for a person.
type ReplayIDMiss struct {
	ID     string `json:"id"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// ReplayIDsReply is one edge's answer. Found lists the ids it holds (with
// their edge sequences in Seqs, same order); Published the ones it
// republished (all of Found unless Error); Missing the others. Error is set
// when the request was refused or a publish failed (Published then holds
// what went out before it); Max is the edge's ingest.replay_ids_max when it
// refused a request naming more ids.
type ReplayIDsReply struct {
	Node      string         `json:"node"`
	Found     []string       `json:"found,omitempty"`
	Seqs      []uint64       `json:"seqs,omitempty"`
	Published []string       `json:"published,omitempty"`
	Missing   []ReplayIDMiss `json:"missing,omitempty"`
	Max       int            `json:"max,omitempty"`
	Error     string         `json:"error,omitempty"`
}
