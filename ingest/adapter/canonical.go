package adapter

import "github.com/tally-mesh/tally/txn"

// canonical is tally's own JSON form (DESIGN.md §6, txn.Decode): decimal
// strings for amounts, RFC 3339 times, canonical field names.
type canonical struct{}

func init() { register(canonical{}) }

func (canonical) Name() string { return "canonical" }

func (canonical) Split(body []byte, contentType string, max int) ([][]byte, bool, *txn.Error) {
	return SplitJSON(body, contentType, max)
}

func (canonical) Decode(p []byte, lim txn.Limits) (txn.Tx, *txn.Error) { return txn.Decode(p, lim) }
