// Package statement computes, signs and stores period statements: for one
// party, one currency and one period (a UTC day, ISO week or month), the
// opening balance, the period's activity by transaction type and game
// category, the party's period fees with the tiers actually applied, the
// adjustments (entries of earlier periods that arrived after those periods'
// statements were issued), and the closing balance.
//
// Statements are computed offline from ledger entries (store.ForEachEntry)
// and the fee contracts of the rule book (rules.Version.Fees), so the
// settlement hot path is untouched. Build is pure: no I/O, no clock; the same
// entries, contracts and prior statement always give the same bytes.
//
// Invariants:
//   - closing = opening + Σ activity + Σ adjustments + Σ fees, exactly;
//   - every ledger entry counts in exactly one statement of each (party,
//     currency) it touches: the statement records the ledger size it covered
//     per partition, and an entry is either covered by the prior statement
//     or counted (in its period's activity, or as an adjustment);
//   - a fee's basis (GGR) is stakes − wins of the selected entries, where a
//     rollback or refund counts under its parent's type (a rolled-back bet
//     reduces stakes, it is not a win);
//   - an issued statement is never rewritten: each is hash-linked to the
//     party's previous one and signed (store.go).
package statement
