// Package store owns the verifiable ledger (DESIGN.md §7): per partition, an
// append-only chain of segment files holding settled entries, an RFC 6962
// Merkle tree over the entries, and a signed checkpoint of that tree.
// docs/ledger-format.md is the auditor's copy of this format, with a test
// vector the tests check.
//
// Directory layout:
//
//	<ledger dir>/
//	  verifier.key                  note verifier key of the checkpoints (WriteVerifierKey)
//	  p000/                         one directory per partition, p%03d
//	    0000000000000001.seg        segment files, %016d.seg, numbered from 1, no gaps
//	    0000000000000002.seg
//	    checkpoint                  last signed checkpoint (signed note)
//	    hashes                      cache: every tree node, 32 bytes each (rebuilt from segments)
//
// Segment file (all integers big-endian; uvarint = minimal LEB128 varint;
// str = uvarint length ‖ UTF-8 bytes):
//
//	+--------+---------+-----------+--------+-------------+-------+
//	| "TLSG" | ver u8  | partition | number | first index | count |
//	| 4      | 1       | u32       | u64    | u64         | u32   |
//	+--------+---------+-----------+--------+-------------+-------+
//	| prev hash | tree size | root | sealed_at   | totals          |
//	| 32        | u64       | 32   | i64 unix ns | uvarint n, n ×  |
//	|           |           |      |             | (currency str,  |
//	|           |           |      |             |  exponent u8,   |
//	|           |           |      |             |  entries u64,   |
//	|           |           |      |             |  net i64 minor) |
//	+-----------+-----------+------+-------------+-----------------+
//	| count × ( uvarint length ‖ entry )                           |
//	+--------------------------------------------------------------+
//
// The file ends after the last entry. The segment hash is SHA-256 of the
// whole file; the next segment's prev hash is it (zero for segment 1).
// Totals are sorted by currency code, one per currency present.
//
// Entry (the Merkle leaf is SHA-256(0x00 ‖ entry)):
//
//	version u8 (=1) | partition u32 | index u64 | edge node str | edge seq u64
//	provider str | tx id str | tx type str | currency str | exponent u8
//	amount i64 minor units (≥ 0) | occurred_at i64 unix ns | round str
//	parent str | seq u64 | game str | category str | jurisdiction str
//	brand str | affiliate str | player str
//	meta: uvarint n, n × (key str, value str), keys strictly ascending
//	rule set [32] | rule str | net i64 minor units
//	shares: uvarint n, n × (party str, amount i64 minor units)
//	settled_at i64 unix ns
//
// Amounts are integers of the currency's minor unit (10^-exponent); the
// exponent must be the registry's (money.Lookup). Decoders are strict: one
// byte sequence per value, explicit limits on every length (MaxStringLen,
// MaxMetaKeys, MaxShares, MaxEntrySize, MaxSegmentEntries, MaxSegmentBytes,
// MaxTotals), no trailing bytes.
//
// Checkpoint (a C2SP signed note whose body is a C2SP tlog-checkpoint with
// one extension line):
//
//	<origin stem>/p<partition>
//	<tree size, decimal>
//	<root, base64>
//	tally-segment <segment number> <segment hash, base64>
//
//	— <key name> <base64 signature>
//
// Invariants: a segment, once its number is committed by the caller, is
// never rewritten; the hash cache is durable before a segment file appears;
// a checkpoint is persisted before it is returned, and no checkpoint is
// signed that does not extend the last one. This package must never decide
// what to settle: it records and proves what it is given.
package store
