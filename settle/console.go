package settle

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"github.com/tally-mesh/tally/store"
)

// Read-only accessors for the console (console/): they read the running
// node's index and ledger through Badger read transactions and the ledger's
// own locks, never writing either.

// RecentExceptions lists the newest recorded exceptions of all
// partitions, newest first, at most max (the console's queue). It reads at
// most max from each partition, walking each from its newest key.
func (x *Index) RecentExceptions(max int) ([]Exception, error) {
	out := []Exception{}
	if max <= 0 {
		return out, nil
	}
	err := x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxException), PrefetchValues: true, Reverse: true})
		defer it.Close()
		n := map[uint32]int{}
		// A reverse iterator seeks to the last key <= its argument: one past
		// the prefix, then, when a partition has given max, to just before
		// that partition's first key.
		for it.Seek([]byte(pfxException + "\xff\xff\xff\xff\xff")); it.Valid(); {
			k := it.Item().Key()
			if len(k) < partitionHead {
				return fmt.Errorf("index: bad exception key %q", k)
			}
			p := binary.BigEndian.Uint32(k[2:partitionHead])
			if n[p] >= max {
				it.Seek(pkey(pfxException, p))
				continue
			}
			var e Exception
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return err
			}
			out = append(out, e)
			n[p]++
			it.Next()
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out[:min(len(out), max)], err
}

// Exceptions lists the node's recorded exceptions, newest first, at most max.
func (n *Node) Exceptions(max int) ([]Exception, error) { return n.idx.RecentExceptions(max) }

// Lookup finds where (provider, id) was settled (Index.Lookup).
func (n *Node) Lookup(provider, id string) (partition uint32, index uint64, held, found bool, err error) {
	return n.idx.Lookup(provider, id)
}

// Ledger is the node's live ledger, for read-only use (proofs, entries).
func (n *Node) Ledger() *store.Ledger { return n.led }
