package settle

import "errors"

// ErrLedgerAhead means TALLY_LEDGER holds segments of a partition that the local
// index does not: another writer owned the partition, or local state was lost.
// Catching up from the stream is not implemented yet; the partition stops.
var ErrLedgerAhead = errors.New("ledger stream ahead of local index")

// ErrFenced means a fenced publish to TALLY_LEDGER failed because another writer
// appended to the partition: this node must stop writing it.
var ErrFenced = errors.New("ledger partition fenced by another writer")

// Exception kinds recorded in the index and raised on tally.alert.exception.
const (
	ExcConflict     = "conflict"      // same (provider, id) as an applied tx, different payload
	ExcNoRule       = "no_rule"       // no rule version or rule matched
	ExcUndecodable  = "undecodable"   // a forwarded record failed canonical decoding
	ExcOverReversal = "over_reversal" // reversal larger than what is left of its parent
	ExcCurrency     = "currency"      // reversal currency differs from its parent
	ExcOrphanTimout = "orphan_timeout"
)
