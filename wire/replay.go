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
