package fx

import (
	"bytes"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// lineLimits decode a rate line: an operator payload (Limits.Operator),
// small.
var lineLimits = txn.Limits{PayloadBytes: 4 << 10, IDLen: 256, FieldLen: 256, MetaKeys: 8, MetaBytes: 2 << 10,
	AmountMax: decimal.New(1, 15), Operator: true}

// ParseLine reads one rate in the fx_rate payload shape of the operator log
// (the bytes `tally fx post` would post), for tools that evaluate contracts
// offline (tally rules eval --rates):
//
//	{"id":"fx-ecb-EURUSD-1793491200","type":"fx_rate","amount":"0","currency":"EUR",
//	 "occurred_at":"2026-11-01T00:00:00Z","meta":{"source":"ecb","pair":"EUR/USD","rate":"1.08","posted_by":"treasury@op"}}
//
// Strictly, as the settle engine decodes a transaction (txn.Decode: I-JSON,
// no duplicate or unknown key, amount a decimal string; txn.ParseFXRate for
// the rate): nothing is repaired. The result is the entry the engine would
// record for it.
func ParseLine(b []byte) (store.Entry, error) {
	bad := func(format string, a ...any) (store.Entry, error) {
		return store.Entry{}, fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), ErrBadRate)
	}
	b = bytes.TrimSpace(b)
	tx, rej := txn.Decode(b, lineLimits)
	if rej != nil {
		return bad("%v", rej)
	}
	if tx.Type != txn.FXRate {
		return bad("type %q is not %s", tx.Type, txn.FXRate)
	}
	e := store.Entry{EdgeNode: txn.OpsID, Provider: txn.OpsID, Tx: tx, Rule: EntryType, Net: decimal.Zero, SettledAt: tx.OccurredAt}
	if _, err := ParseRate(e); err != nil {
		return store.Entry{}, err
	}
	return e, nil
}
