package settle

import "errors"

// ErrLocalAhead means the local index or ledger holds more of a partition than
// TALLY_LEDGER: the stream was recreated or lost messages, or the files come
// from a build that wrote locally before publishing. The partition stops.
var ErrLocalAhead = errors.New("local ledger ahead of the ledger stream")

// ErrFenced means a fenced publish to TALLY_LEDGER failed because another writer
// appended to the partition: this node must stop writing it.
var ErrFenced = errors.New("ledger partition fenced by another writer")

// alertFenced is the alert kind (tally.alert.fenced) raised when a partition
// steps down.
const alertFenced = "fenced"

// ErrLeaseLost means this node's lease on a partition ran out (not renewed
// in time) or another node holds it: the worker stops before writing.
var ErrLeaseLost = errors.New("partition lease lost")
