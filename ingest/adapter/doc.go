// Package adapter turns each provider's wire format (its dialect) into
// canonical transactions (txn.Tx). A dialect is one file that implements
// Adapter and registers itself in init; docs/adapters.md says how to add one.
//
// An adapter has two steps, both pure (no I/O, no clock, no state):
//
//	Split(body, contentType, max) → one payload per transaction, or one
//	                                rejection for the whole request
//	Decode(payload, limits)       → a validated txn.Tx, or a rejection with a
//	                                stable code (txn/errors.go)
//
// Invariants:
//   - neither step panics, on any input; every input gets either a result or
//     a *txn.Error with a code and a reason (fuzzed per dialect);
//   - each payload returned by Split is self-contained: Decode needs nothing
//     else, and the payload is what the dead-letter store keeps when it is
//     rejected;
//   - Decode validates through txn.Decode, so every dialect obeys the same
//     limits and yields the same canonical form: the same transaction sent in
//     two dialects has the same hash.
//
// It must never: take the provider from the payload (identity comes from the
// credentials); accept a float for money; guess a currency's decimals.
package adapter
