// Package settle owns settlement: one writer per partition consumes forwarded
// batches from TALLY_TX, skips what it has already applied, splits each new
// transaction under the rule version in force, seals ledger segments, and only
// then acknowledges its inputs.
//
// Loop per partition (the raft Ready/Advance shape):
//
//	fetch a batch → per record: high-water mark, gap, (provider, id) dedup and
//	conflict check, orphan hold/release, rules → entries
//	→ seal segment (store.Ledger, fsynced file)
//	→ commit index (Badger: segment count, marks, dedup, orphans, balances) in ONE txn
//	→ sign checkpoint → publish segment to TALLY_LEDGER (fenced) → ack inputs
//
// The per-record decisions (dedup, conflict, orphan hold/release, rules,
// reversals) are the pure Engine of engine.go behind the State interface:
// the worker runs it over its batch (batchState: overlay + Badger index),
// `tally rules eval` over MemState. The worker keeps the marks, gaps, seal,
// commit, sign, publish and ack.
//
// A crash anywhere leads to redelivery; the persisted high-water marks and the
// permanent (provider, id) index make redelivery a no-op. A segment file
// written but not committed to the index is dropped on restart
// (store.Ledger.Recover) before anything was signed or published for it.
//
// Invariants: every entry's shares sum exactly to its net amount; nothing is
// acknowledged to JetStream before the index commit returns; a record above
// its high-water mark + 1 (a gap) is never applied out of order.
package settle
