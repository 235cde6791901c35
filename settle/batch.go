package settle

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/store"
)

// batch is everything one commit changes, held in memory until the index
// transaction: an overlay read before the index, so records later in a batch
// see the effect of earlier ones, and discarded whole if the commit fails.
type batch struct {
	started    time.Time
	msgs       []jetstream.Msg
	entries    []store.Entry
	entryKeys  []string // dedup key of each entry, to record its leaf index after sealing
	hwm        map[string]uint64
	dedup      map[string]*dedupRec
	orphansAdd map[string]orphanRec
	orphansDel map[string]bool
	balances   map[string]decimal.Decimal // balance key → delta
	exceptions []Exception
	alerts     []alert
	cnt        Counters
	dirty      bool
}

type alert struct {
	kind string
	body any
}

func newBatch(cnt Counters) *batch {
	return &batch{
		started:    time.Now(),
		hwm:        map[string]uint64{},
		dedup:      map[string]*dedupRec{},
		orphansAdd: map[string]orphanRec{},
		orphansDel: map[string]bool{},
		balances:   map[string]decimal.Decimal{},
		cnt:        cnt,
	}
}

func (b *batch) empty() bool { return len(b.msgs) == 0 && !b.dirty }

// getHWM reads a high-water mark through the overlay.
func (b *batch) getHWM(db *badger.DB, key []byte) (uint64, error) {
	if v, ok := b.hwm[string(key)]; ok {
		return v, nil
	}
	var v uint64
	err := db.View(func(txn *badger.Txn) error {
		var e error
		v, e = getU64(txn, key)
		return e
	})
	return v, err
}

// getDedup reads a (provider, id) record through the overlay. The returned
// record is a copy the caller may modify and put back.
func (b *batch) getDedup(db *badger.DB, key []byte) (*dedupRec, error) {
	if r, ok := b.dedup[string(key)]; ok {
		c := *r
		return &c, nil
	}
	var r dedupRec
	var found bool
	err := db.View(func(txn *badger.Txn) error {
		var e error
		found, e = getJSON(txn, key, &r)
		return e
	})
	if err != nil || !found {
		return nil, err
	}
	return &r, nil
}

// orphansFor lists held reversals waiting for parent, through the overlay.
func (b *batch) orphansFor(db *badger.DB, prefix []byte) (map[string]orphanRec, error) {
	out := map[string]orphanRec{}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := string(it.Item().KeyCopy(nil))
			var o orphanRec
			if _, err := getJSON(txn, []byte(k), &o); err != nil {
				return err
			}
			out[k] = o
		}
		return nil
	})
	for k, o := range b.orphansAdd {
		if len(k) >= len(prefix) && k[:len(prefix)] == string(prefix) {
			out[k] = o
		}
	}
	for k := range b.orphansDel {
		delete(out, k)
	}
	return out, err
}

func (b *batch) addOrphan(key []byte, o orphanRec) {
	b.orphansAdd[string(key)] = o
	delete(b.orphansDel, string(key))
	b.dirty = true
}

func (b *batch) delOrphan(key string) {
	delete(b.orphansAdd, key)
	b.orphansDel[key] = true
	b.dirty = true
}

// write applies the overlay to an index transaction. Balances are read and
// added here, inside the same transaction.
func (b *batch) write(txn *badger.Txn) error {
	for k, v := range b.hwm {
		if err := txn.Set([]byte(k), be64(v)); err != nil {
			return err
		}
	}
	for k, r := range b.dedup {
		if err := setJSON(txn, []byte(k), r); err != nil {
			return err
		}
	}
	for k, o := range b.orphansAdd {
		if err := setJSON(txn, []byte(k), o); err != nil {
			return err
		}
	}
	for k := range b.orphansDel {
		if err := txn.Delete([]byte(k)); err != nil {
			return err
		}
	}
	for k, delta := range b.balances {
		cur := decimal.Zero
		it, err := txn.Get([]byte(k))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			if err := it.Value(func(v []byte) error {
				d, e := decimal.NewFromString(string(v))
				cur = d
				return e
			}); err != nil {
				return err
			}
		}
		if err := txn.Set([]byte(k), []byte(cur.Add(delta).String())); err != nil {
			return err
		}
	}
	return nil
}
