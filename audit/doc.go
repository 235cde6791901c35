// Package audit is what an auditor runs against tally's ledger, offline or
// over HTTP: the full audit (Verify), inclusion and consistency proofs
// (Prove, Consistency) and the settle node's read-only audit API (Handler).
//
// Verify runs store's structural verification (every byte, leaf, root, chain
// link and signature) and, on every entry in ledger order, the checks that
// need the settlement rules:
//
//   - exactly once: no (provider, id) appears twice in the ledger;
//   - every split is recomputed from the recorded rule set
//     (<ledger>/rules/<sha256>.json, rules.ParseCanonical) with
//     rules.Version.Split and must give the recorded rule and shares exactly;
//     the recorded version must be the one in force at the transaction's
//     occurred_at among the recorded versions;
//   - every reversal is recomputed with rules.Reverse from its parent's
//     recorded shares, less what earlier reversals of the same parent took,
//     exactly as the settle worker applies them;
//   - operator entries are recomputed from their meta (store Entry.Validate),
//     and no statement is paid by two payout_run entries (ErrPaidTwice): a
//     balance never pays twice, checked from the ledger alone;
//   - balances: Σ shares per party and currency over the segments the settle
//     index committed equal the index's balances (from the node's data
//     directory, or balances.json in an export).
//
// Problems are *store.CorruptError naming partition, segment and entry.
//
// The package only reads. It MUST NOT write to a ledger or an index, and
// its HTTP handler serves nothing a partner could use to change state.
package audit
