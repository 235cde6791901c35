package wire

// Answer statuses.
const (
	StatusAccepted  = "accepted"
	StatusDuplicate = "duplicate"
	StatusRejected  = "rejected"
)

// Answer is the reply to one transaction, over NATS or HTTP. A batch request
// gets a JSON array of answers in input order.
type Answer struct {
	Status       string `json:"status"`
	ID           string `json:"id,omitempty"`
	EdgeSeq      uint64 `json:"edge_seq,omitempty"`
	Code         string `json:"code,omitempty"`
	Reason       string `json:"reason,omitempty"`
	RetryAfterMs int64  `json:"retry_after_ms,omitempty"`
}
