package ingest

import "errors"

// ErrBufferFull means the WAL holds at least Config.BudgetBytes: the node stops
// taking new transactions (answer buffer_full with a retry hint) instead of
// growing until the disk fills, which Badger does not survive (it crashes on
// ENOSPC). Duplicates of stored transactions are still answered.
var ErrBufferFull = errors.New("ingest buffer full")

// ErrClosed means the node is closing or closed: new requests are answered
// unavailable, and Start after Close returns it.
var ErrClosed = errors.New("ingest node closed")

// ErrCorrupt marks WAL contents that break an invariant of the key layout
// (a missing record below a provider's counter, a malformed counter value).
// The forwarder stops forwarding that provider and logs it; nothing is skipped.
var ErrCorrupt = errors.New("ingest wal corrupt")
