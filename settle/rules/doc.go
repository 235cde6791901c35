// Package rules owns split rules: versioned rule sets written in HCL, and the
// pure function that turns one transaction into every party's share under the
// version in force at the transaction's time.
//
// A Book holds every version, ordered by its effective time. Book.Split picks
// the version in force at tx.OccurredAt, the first rule of that version whose
// conditions match, and allocates the signed amount with the named rounding
// and allocation of the money package. Reverse mirrors a parent's recorded
// shares for a rollback or refund; rules are never re-run for a reversal.
//
// A Version also holds its period fee contracts (Fees, fees.go): tiers,
// minimum and maximum, negative carry, conditions selecting the basis. They
// are part of the canonical encoding and hash.
//
// Each Version has a canonical JSON encoding (Canonical) and its SHA-256
// (Hash). The settle worker records the hash with every entry; an auditor
// decodes the recorded canonical bytes with ParseCanonical and recomputes the
// split with Version.Split, bit for bit.
//
// Invariants:
//   - the shares of every split sum exactly to tx.Signed(); a reversal's shares
//     sum exactly to the negated reversed part of the parent, and no party's
//     reversal exceeds what it got. A violation is a bug and panics;
//   - every rule names its rounding and allocation: nothing is defaulted;
//   - decimals are exact (shopspring/decimal, math/big); no floats;
//   - parse errors name file:line:column, the key, the bad value and a fix,
//     and a file reports all its problems at once.
//
// The package is pure: it MUST NOT touch NATS, Badger, the network, the clock
// or any global state. Inputs are bounded (MaxSourceBytes, MaxRules, ...).
// The rule language is documented for operators in docs/rules.md.
package rules
