// Package txn owns the canonical transaction: the one shape every adapter
// produces and every later stage consumes (DESIGN.md §6).
//
// Decode is the only way bytes become a Tx. It is strict (unknown fields,
// JSON numbers as amounts, trailing data and oversize input are rejected),
// bounded by Limits, and answers every input with either a valid Tx or an
// *Error carrying a stable code. Canonical renders a Tx as deterministic JSON;
// its SHA-256 (Hash) is what "same payload" means for duplicates and conflicts.
//
// This package must never consult a clock, the network or storage.
package txn
