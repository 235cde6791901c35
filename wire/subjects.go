package wire

import (
	"fmt"
	"strings"

	"github.com/tally-mesh/tally/txn"
)

// DefaultPrefix is the first token of every tally subject and the stem of stream names.
const DefaultPrefix = "tally"

// Header keys on forwarded batches and ledger segments.
const (
	HdrMsgID     = "Nats-Msg-Id"                         // JetStream dedup within the window; never relied on for exactly-once
	HdrExpectSub = "Nats-Expected-Last-Subject-Sequence" // fences a partition's ledger chain
	HdrNode      = "Tally-Node"                          // edge node id
	HdrProvider  = "Tally-Provider"                      // provider id (from credentials)
	HdrFirstSeq  = "Tally-First-Seq"                     // first edge sequence in the batch
	HdrLastSeq   = "Tally-Last-Seq"                      // last edge sequence in the batch
	HdrHash      = "Tally-Hash"                          // hex SHA-256 of the batch body
	HdrReplay    = "Tally-Replay"                        // "1" on batches the edge published again for a replay request
	HdrPartition = "Tally-Partition"                     // ledger partition of a segment
	HdrSegment   = "Tally-Segment"                       // segment number within the partition
)

// OpsNode and OpsProvider are the reserved edge node and provider of the
// system's own entries (approved adjustments, FX rates): the settle node's
// operator log forwards them as records of (_tally, _tally). config refuses
// any configured node or provider id starting with "_".
const (
	OpsNode     = txn.OpsID
	OpsProvider = txn.OpsID
)

// Subjects derives every subject and stream name from one prefix.
type Subjects struct{ Prefix string }

// NewSubjects returns the subject scheme for prefix ("" means DefaultPrefix).
func NewSubjects(prefix string) Subjects {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Subjects{Prefix: prefix}
}

// In is where a provider sends transactions: request/reply, provider → ingest.
func (s Subjects) In(provider string) string { return s.Prefix + ".in." + provider }

// InAll is the subscription of an ingest node that takes any provider (no
// provider list configured: development only, one such edge per hub).
func (s Subjects) InAll() string { return s.Prefix + ".in.*" }

// ProviderFromIn extracts the provider token from an In subject.
func (s Subjects) ProviderFromIn(subject string) (string, bool) {
	p, ok := strings.CutPrefix(subject, s.Prefix+".in.")
	if !ok || p == "" || strings.ContainsAny(p, ".*> ") {
		return "", false
	}
	return p, true
}

// Tx is the subject the forwarder publishes a provider's batches on.
func (s Subjects) Tx(node, provider string) string { return s.Prefix + ".tx." + node + "." + provider }

// TxSource is the stream subject filter before the partition transform.
func (s Subjects) TxSource() string { return s.Prefix + ".tx.*.*" }

// TxDest is the transform destination: the partition token is inserted after "tx".
func (s Subjects) TxDest(partitions int) string {
	return fmt.Sprintf("%s.tx.{{partition(%d,2)}}.{{wildcard(1)}}.{{wildcard(2)}}", s.Prefix, partitions)
}

// TxPartition is the filter for one partition's stored transactions.
func (s Subjects) TxPartition(p int) string { return fmt.Sprintf("%s.tx.%d.>", s.Prefix, p) }

// Ledger is the subject of partition p's sealed segments.
func (s Subjects) Ledger(p int) string { return fmt.Sprintf("%s.ledger.%d", s.Prefix, p) }

// LedgerAll is the ledger stream's subject filter.
func (s Subjects) LedgerAll() string { return s.Prefix + ".ledger.*" }

// Replay is the edge node's replay service (settle → ingest).
func (s Subjects) Replay(node string) string { return s.Prefix + ".edge." + node + ".replay" }

// ReplayIDs is the replay-by-id service of the edge serving provider
// (console / `tally reconcile --replay` → ingest, wire.ReplayIDsRequest).
// Only the edge holding the provider's claim subscribes it (an edge
// without a provider list subscribes ReplayIDsAll).
func (s Subjects) ReplayIDs(provider string) string {
	return s.Prefix + ".edges.replay-ids." + provider
}

// ReplayIDsAll is the replay-by-id subscription of an edge that takes any
// provider (no provider list: development only).
func (s Subjects) ReplayIDsAll() string { return s.Prefix + ".edges.replay-ids.*" }

// ProviderFromReplayIDs extracts the provider token from a ReplayIDs subject.
func (s Subjects) ProviderFromReplayIDs(subject string) (string, bool) {
	p, ok := strings.CutPrefix(subject, s.Prefix+".edges.replay-ids.")
	if !ok || !ValidToken(p) {
		return "", false
	}
	return p, true
}

// Alert is where alerts of a kind are published.
func (s Subjects) Alert(kind string) string { return s.Prefix + ".alert." + kind }

// Oplog is the subject of the operator log: canonical operator
// transactions posted by the console or the CLI (settle/oplog).
func (s Subjects) Oplog() string { return s.Prefix + ".oplog" }

// OplogStream is the JetStream stream of the operator log. Its stream
// sequence is the edge sequence of the (_tally, _tally) records.
func (s Subjects) OplogStream() string { return strings.ToUpper(s.Prefix) + "_OPLOG" }

// OplogConsumer is the durable pull consumer, shared by every settle node,
// that forwards the operator log to Tx(OpsNode, OpsProvider).
func (s Subjects) OplogConsumer() string { return "oplog-fwd" }

// TxStream is the JetStream stream holding forwarded transaction batches.
func (s Subjects) TxStream() string { return strings.ToUpper(s.Prefix) + "_TX" }

// LedgerStream is the JetStream stream holding sealed ledger segments.
func (s Subjects) LedgerStream() string { return strings.ToUpper(s.Prefix) + "_LEDGER" }

// ClaimBucket is the JetStream key-value bucket of provider claims: key =
// provider, value = the id of the edge node that serves it. One provider is
// served by one edge (docs/ingest.md, "Topologies").
func (s Subjects) ClaimBucket() string { return strings.ToUpper(s.Prefix) + "_PROVIDERS" }

// OwnersBucket is the JetStream KV bucket of partition leases and settle
// node heartbeats (settle/lease.go).
func (s Subjects) OwnersBucket() string { return strings.ToUpper(s.Prefix) + "_OWNERS" }

// SettleConsumer is the durable consumer name of partition p.
func (s Subjects) SettleConsumer(p int) string { return fmt.Sprintf("settle-%d", p) }

// Alert kinds.
const (
	AlertGap       = "gap"
	AlertConflict  = "conflict"
	AlertBuffer    = "buffer"
	AlertException = "exception"
)

// ValidToken reports whether s can be used as one subject token (node or provider id).
func ValidToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}
