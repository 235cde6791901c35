package settle

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

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
	refs, err := x.RecentExceptionRefs(max)
	out := make([]Exception, len(refs))
	for i, r := range refs {
		out[i] = r.Exception
	}
	return out, err
}

// ExceptionRef is an exception with its stable id: "x-<partition>-<unix
// nanoseconds>-<i>", the parts of its index key, so the same exception has
// the same id on every settle node that holds the partition's index.
type ExceptionRef struct {
	ID string `json:"id"`
	Exception
}

// exceptionID names the exception stored under key k.
func exceptionID(k []byte) (string, error) {
	if len(k) != partitionHead+16 {
		return "", fmt.Errorf("index: bad exception key %q", k)
	}
	return fmt.Sprintf("x-%d-%d-%d", binary.BigEndian.Uint32(k[2:partitionHead]),
		int64(binary.BigEndian.Uint64(k[partitionHead:partitionHead+8])), binary.BigEndian.Uint64(k[partitionHead+8:])), nil
}

// ExceptionByID reads the exception named id (ExceptionRef); found is
// false for an id that names none, malformed ids included.
func (x *Index) ExceptionByID(id string) (e Exception, found bool, err error) {
	var p uint32
	var at int64
	var i uint64
	if n, err := fmt.Sscanf(id, "x-%d-%d-%d", &p, &at, &i); err != nil || n != 3 {
		return e, false, nil
	}
	k := keyException(p, time.Unix(0, at), int(i))
	if got, _ := exceptionID(k); got != id { // only the canonical spelling
		return e, false, nil
	}
	err = x.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return it.Value(func(v []byte) error { return json.Unmarshal(v, &e) })
	})
	return e, found, err
}

// RecentExceptionRefs is RecentExceptions with each exception's id.
func (x *Index) RecentExceptionRefs(max int) ([]ExceptionRef, error) {
	out := []ExceptionRef{}
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
			var e ExceptionRef
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e.Exception) }); err != nil {
				return err
			}
			id, err := exceptionID(k)
			if err != nil {
				return err
			}
			e.ID = id
			out = append(out, e)
			n[p]++
			it.Next()
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out[:min(len(out), max)], err
}

// ExceptionRefs lists the node's recorded exceptions with their ids, newest
// first, at most max (the console's exception queue).
func (n *Node) ExceptionRefs(max int) ([]ExceptionRef, error) { return n.idx.RecentExceptionRefs(max) }

// ExceptionByID reads one recorded exception by its id (ExceptionRef).
func (n *Node) ExceptionByID(id string) (Exception, bool, error) { return n.idx.ExceptionByID(id) }

// Exceptions lists the node's recorded exceptions, newest first, at most max.
func (n *Node) Exceptions(max int) ([]Exception, error) { return n.idx.RecentExceptions(max) }

// Lookup finds where (provider, id) was settled (Index.Lookup).
func (n *Node) Lookup(provider, id string) (partition uint32, index uint64, held, found bool, err error) {
	return n.idx.Lookup(provider, id)
}

// Ledger is the node's live ledger, for read-only use (proofs, entries).
func (n *Node) Ledger() *store.Ledger { return n.led }
