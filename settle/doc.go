// Package settle owns settlement: one writer per partition consumes forwarded
// batches from TALLY_TX, skips what it has already applied, splits each new
// transaction under the rule version in force, seals ledger segments, and only
// then acknowledges its inputs.
//
// Loop per partition (the raft Ready/Advance shape):
//
//	fetch a batch → per record: high-water mark, gap, (provider, id) dedup and
//	conflict check, orphan hold/release, rules → entries
//	→ build segment + state record (store.Ledger.Prepare; nothing written)
//	→ publish to TALLY_LEDGER (fenced; a fence failure writes nothing and
//	  stops the partition: ErrFenced)
//	→ on the PubAck: segment file (store.Ledger.Commit), index (Index.applyLedger,
//	  ONE Badger txn), checkpoint → ack inputs
//
// The per-record decisions (dedup, conflict, orphan hold/release, rules,
// reversals) are the pure Engine of settle/engine behind the State interface:
// the worker runs it over its batch (batchState: overlay + Badger index),
// `tally rules eval` over MemState. The worker keeps the marks, gaps, seal,
// commit, sign, publish and ack.
//
// TALLY_LEDGER is the source of truth: at start each partition drops segment
// files its index does not cover and applies every ledger message past its
// index (worker.catchUp, segments checked by store.Ledger.Append as verify
// checks them) through the same Index.applyLedger as a live commit, before
// consuming TALLY_TX. A crash anywhere leads to redelivery; the high-water
// marks and the permanent (provider, id) index, both rebuilt from the
// stream, make redelivery a no-op. keys.go owns every index key.
//
// Invariants: every entry's shares sum exactly to its net amount; nothing is
// acknowledged to JetStream before the index commit returns; a record above
// its high-water mark + 1 (a gap) is never applied out of order.
package settle
