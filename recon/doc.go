// Package recon reconciles a provider's own report of a period against the
// ledger: which transactions match, which the report has and the ledger does
// not (missing), which the ledger has and the report does not (extra), which
// carry the same id with another amount, currency, type or time (mismatched),
// which ids the report lists more than once (duplicates, identical or
// conflicting), which report rows the strict decoder refused (rejected), and
// the totals per currency and type on both sides with their difference.
//
// Reconcile is pure: no I/O, no clock; the caller reads the report (through
// the ingest adapters, so it is decoded exactly as ingest would decode it)
// and the ledger's entries, and passes them in. Amounts are exact decimals
// (shopspring/decimal); nothing is rounded.
//
// Results are kept by Store as signed notes (golang.org/x/mod/sumdb/note,
// the ledger key), hash-linked per provider like statements (store.go).
//
// It must never: repair a report row (a row the decoder refuses is listed
// with its code and reason and counts nowhere else); match by anything but
// the transaction id; let one report row satisfy two ledger entries.
package recon
