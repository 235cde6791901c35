package settle

import (
	"encoding/json"

	"github.com/dgraph-io/badger/v4"

	"github.com/tally-mesh/tally/store"
)

// Read-only accessors for the console (console/): they read the running
// node's index and ledger through Badger read transactions and the ledger's
// own locks, never writing either.

// RecentExceptions lists recorded exceptions newest first (by partition,
// then time within it), at most max: the console's queue.
func (x *Index) RecentExceptions(max int) ([]Exception, error) {
	out := []Exception{}
	err := x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxException), PrefetchValues: true, Reverse: true})
		defer it.Close()
		// A reverse iterator seeks to the last key <= its start: one past the prefix.
		for it.Seek([]byte(pfxException + "\xff\xff\xff\xff\xff")); it.Valid() && len(out) < max; it.Next() {
			var e Exception
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Exceptions lists the node's recorded exceptions, newest first, at most max.
func (n *Node) Exceptions(max int) ([]Exception, error) { return n.idx.RecentExceptions(max) }

// Lookup finds where (provider, id) was settled (Index.Lookup).
func (n *Node) Lookup(provider, id string) (partition uint32, index uint64, held, found bool, err error) {
	return n.idx.Lookup(provider, id)
}

// Ledger is the node's live ledger, for read-only use (proofs, entries).
func (n *Node) Ledger() *store.Ledger { return n.led }
