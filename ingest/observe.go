package ingest

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// Observer receives what metrics need from the hot path (Config.Observer; nil
// = none). It is called on the committer and on request goroutines, so an
// implementation must be cheap and safe for concurrent use; it must not block.
type Observer interface {
	// Answered reports one request whose answers are final: its provider
	// (OtherProvider when the provider is not configured on this node or its
	// subject token is invalid, so labels stay bounded), how many of its
	// transactions were answered accepted, duplicate and rejected, and the
	// time from arrival to answer.
	Answered(provider string, accepted, duplicates, rejected int, took time.Duration)
	// WALSynced reports one WAL group commit: a Badger transaction with
	// SyncWrites, which returns after the fsync.
	WALSynced(took time.Duration)
}

// TxObserver, when the Observer also implements it, is told of every
// transaction answered accepted (anomaly detection: amounts and rollbacks).
// Called once per request on the request's goroutine; it must not block.
type TxObserver interface {
	AcceptedTxs(provider string, txs []TxSample)
}

// TxSample is what a TxObserver sees of one accepted transaction.
type TxSample struct {
	Type   txn.Type
	Amount decimal.Decimal
}

// OtherProvider is the provider Observer.Answered reports for requests whose
// provider is not configured on this node (or not a valid subject token).
const OtherProvider = "_other"

// observe reports r to the observer once its answers are set.
func (n *Node) observe(r *request) {
	o := n.cfg.Observer
	if o == nil {
		return
	}
	var acc, dup, rej int
	txo, _ := o.(TxObserver)
	var txs []TxSample
	for i := range r.items {
		switch r.items[i].ans.Status {
		case wire.StatusAccepted:
			acc++
			if txo != nil {
				txs = append(txs, TxSample{Type: r.items[i].typ, Amount: r.items[i].amount})
			}
		case wire.StatusDuplicate:
			dup++
		default:
			rej++
		}
	}
	p := r.provider
	if !wire.ValidToken(p) {
		p = OtherProvider
	} else if len(n.cfg.Providers) > 0 {
		if _, ok := n.cfg.Providers[p]; !ok {
			p = OtherProvider
		}
	}
	var took time.Duration
	if !r.start.IsZero() {
		took = time.Since(r.start)
	}
	o.Answered(p, acc, dup, rej, took)
	if len(txs) > 0 {
		txo.AcceptedTxs(p, txs)
	}
}

// observeSync reports a WAL commit that started at t.
func (c Config) observeSync(t time.Time) {
	if c.Observer != nil {
		c.Observer.WALSynced(time.Since(t))
	}
}

// WALOpen reports whether the node is open: not closed and its WAL database
// not closed.
func (n *Node) WALOpen() bool {
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	return !closed && !n.wal.db.IsClosed()
}
