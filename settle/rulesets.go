package settle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// ruleSets interns the rule-set hashes of the index's dedup records: nearly
// every record names the same 32-byte hash, so a version-2 record stores a
// small number n and the index keeps r/<n> → hash once (keys.go).
//
// Crash safety: a number is handed out in memory (under mu, so two hashes
// never share one), and r/<n> is written in the same Badger transaction as
// every record that uses n until a transaction that wrote it has committed
// (durable). So no record on disk ever names an n whose r/<n> is not on disk
// with it. A number handed out whose transaction never committed is simply
// forgotten by a crash and may go to another hash after the restart: no
// record names it. Concurrent partition commits may both write the same
// r/<n> with the same value; they are blind writes (never read in the
// writing transaction), so they do not conflict.
type ruleSets struct {
	mu      sync.Mutex
	byHash  map[string]uint64
	byN     map[uint64][]byte
	durable map[uint64]bool
	next    uint64
}

// loadRuleSets reads the index's table (at open).
func loadRuleSets(db *badger.DB) (*ruleSets, error) {
	t := &ruleSets{byHash: map[string]uint64{}, byN: map[uint64][]byte{}, durable: map[uint64]bool{}, next: 1}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxRuleSet), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != len(pfxRuleSet)+8 {
				return fmt.Errorf("rule-set key %q: bad length", k)
			}
			n := binary.BigEndian.Uint64(k[len(pfxRuleSet):])
			h, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if n == 0 || len(h) == 0 || len(h) > dedupMaxBytes {
				return fmt.Errorf("rule-set key %d: %d-byte hash", n, len(h))
			}
			t.byN[n] = h[:len(h):len(h)]
			if _, dup := t.byHash[string(h)]; !dup { // keys iterate in order: the lowest n wins
				t.byHash[string(h)] = n
			}
			t.durable[n] = true
			t.next = max(t.next, n+1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open settle index: %w", err)
	}
	return t, nil
}

// ref is the number of rule set h (0 for none), handing out the next one
// if h is new; write says r/<n> must go into the caller's transaction.
func (t *ruleSets) ref(h []byte) (n uint64, write bool) {
	if len(h) == 0 {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.byHash[string(h)]
	if !ok {
		n = t.next
		t.next++
		c := append([]byte(nil), h...)
		t.byHash[string(c)] = n
		t.byN[n] = c
	}
	return n, !t.durable[n]
}

// committed records that a transaction writing r/<n> for each of ns has
// committed.
func (t *ruleSets) committed(ns []uint64) {
	if len(ns) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range ns {
		t.durable[n] = true
	}
}

// resolver resolves version-2 references for decodeDedup: from memory, or
// from txn for a number this table does not know (none should be: every
// r/<n> on disk was loaded at open or handed out here).
func (t *ruleSets) resolver(txn *badger.Txn) func(uint64) ([]byte, error) {
	return func(n uint64) ([]byte, error) {
		t.mu.Lock()
		h, ok := t.byN[n]
		t.mu.Unlock()
		if ok {
			return h, nil
		}
		it, err := txn.Get(keyRuleSet(n))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, fmt.Errorf("rule set %d is not in the index", n)
		}
		if err != nil {
			return nil, err
		}
		h, err = it.ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		if len(h) == 0 || len(h) > dedupMaxBytes {
			return nil, fmt.Errorf("rule set %d: %d-byte hash", n, len(h))
		}
		return h[:len(h):len(h)], nil
	}
}
