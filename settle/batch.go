package settle

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/store"
)

// batch is everything one commit changes, held in memory until the index
// transaction: an overlay read before the index, so records later in a batch
// see the effect of earlier ones, and discarded whole if the commit fails.
type batch struct {
	started    time.Time
	msgs       []jetstream.Msg
	entries    []store.Entry
	hwm        map[string]uint64
	dedup      map[string]*dedupRec
	orphansAdd map[string]orphanRec
	orphansDel map[string]bool
	paid       map[string]string // statement hash → payout_run id (paid.go)
	exceptions []Exception
	alerts     []alert
	sideBytes  int       // payload bytes of held reversals and exceptions: the state record's size
	newest     time.Time // TALLY_TX timestamp of the newest input processed
	cnt        Counters
	dirty      bool
	records    int // records in the batch's messages (sizes the next fetch)

	// rtx is one read-only snapshot for every index read of the batch, opened
	// on first use and discarded by close: one Badger txn per record cost more
	// than the read. It sees everything committed before the batch; the
	// overlay above holds the batch's own changes, and only this partition's
	// worker writes its keys.
	db  *badger.DB
	rtx *badger.Txn
	// held is the worker's set of orphan parent prefixes that may have keys
	// in the index; orphansFor skips the index scan for any other parent.
	held orphanSet
	// prev is the batch whose commit runs while this one fills (settle.pipeline):
	// prepared, so read-only, and maybe not yet in the index nor in held.
	// Every read goes own overlay → prev's overlay → index, so this batch sees
	// prev's writes whether or not prev's index transaction has landed when
	// rtx is opened (if it has, prev's overlay repeats what the index holds).
	prev *batch
	// key is scratch for the keys batchState builds (Dedup, PutDedup, Held):
	// Badger's read-only Get and the orphan scan keep no reference to it,
	// and the overlay map copies its key.
	key []byte
}

type alert struct {
	kind string
	body any
}

// newBatchOn starts a batch that reads db through one snapshot and consults
// held before scanning for orphans (nil: always scan).
func newBatchOn(db *badger.DB, held orphanSet, cnt Counters) *batch {
	return &batch{
		db:         db,
		held:       held,
		started:    time.Now(),
		hwm:        map[string]uint64{},
		dedup:      map[string]*dedupRec{},
		orphansAdd: map[string]orphanRec{},
		orphansDel: map[string]bool{},
		paid:       map[string]string{},
		cnt:        cnt,
	}
}

func (b *batch) empty() bool { return len(b.msgs) == 0 && !b.dirty }

// close discards the batch's read snapshot; the batch is done.
func (b *batch) close() {
	if b.rtx != nil {
		b.rtx.Discard()
		b.rtx = nil
	}
}

// view runs f in the batch's read snapshot of db (opened on first use), or in
// a fresh read txn when db is not the batch's own.
func (b *batch) view(db *badger.DB, f func(*badger.Txn) error) error {
	if db == nil || db != b.db {
		return db.View(f)
	}
	if b.rtx == nil {
		b.rtx = db.NewTransaction(false)
	}
	return f(b.rtx)
}

// getHWM reads a high-water mark through the overlay.
func (b *batch) getHWM(db *badger.DB, key []byte) (uint64, error) {
	if v, ok := b.hwm[string(key)]; ok {
		return v, nil
	}
	if b.prev != nil {
		if v, ok := b.prev.hwm[string(key)]; ok {
			return v, nil
		}
	}
	var v uint64
	err := b.view(db, func(txn *badger.Txn) error {
		var e error
		v, e = getU64(txn, key)
		return e
	})
	return v, err
}

// getDedup reads a (provider, id) record through the overlay. The returned
// record is a copy the caller may modify and put back.
func (b *batch) getDedup(idx *Index, key []byte) (*dedupRec, error) {
	if r, ok := b.dedup[string(key)]; ok {
		c := *r
		return &c, nil
	}
	if b.prev != nil {
		if r, ok := b.prev.dedup[string(key)]; ok {
			c := *r
			return &c, nil
		}
	}
	var r *dedupRec // allocated on a hit only: a new transaction's miss allocates nothing here
	err := b.view(idx.db, func(txn *badger.Txn) error {
		var e error
		r, e = idx.lookupDedup(txn, key)
		return e
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// orphansFor lists held reversals waiting for parent, through the overlay.
// The index is scanned only when the worker's held set says the prefix may
// have keys there.
func (b *batch) orphansFor(db *badger.DB, prefix []byte) (map[string]orphanRec, error) {
	if b.held != nil && !b.held.mayHave(prefix) && !b.addsUnder(prefix) && (b.prev == nil || !b.prev.addsUnder(prefix)) {
		return nil, nil // nothing in the index, nothing held by the overlays: the usual case
	}
	out := map[string]orphanRec{}
	var err error
	if b.held == nil || b.held.mayHave(prefix) {
		err = b.view(db, func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				k := string(it.Item().KeyCopy(nil))
				var o orphanRec
				if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &o) }); err != nil {
					return err
				}
				out[k] = o
			}
			return nil
		})
	}
	if b.prev != nil {
		overlayOrphans(out, b.prev, prefix)
	}
	overlayOrphans(out, b, prefix)
	return out, err
}

// addsUnder reports whether b holds a reversal under prefix.
func (b *batch) addsUnder(prefix []byte) bool {
	for k := range b.orphansAdd {
		if len(k) >= len(prefix) && k[:len(prefix)] == string(prefix) {
			return true
		}
	}
	return false
}

// overlayOrphans applies b's held and released reversals under prefix to out.
func overlayOrphans(out map[string]orphanRec, b *batch, prefix []byte) {
	for k, o := range b.orphansAdd {
		if len(k) >= len(prefix) && k[:len(prefix)] == string(prefix) {
			out[k] = o
		}
	}
	for k := range b.orphansDel {
		delete(out, k)
	}
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

// orphanSet is a partition worker's set of orphan parent prefixes
// (o/<p><provider>\x00<parent>\x00) that may have keys in the index. It may
// hold a prefix with no keys left (a scan then finds nothing), never miss one
// that has keys: it is loaded from the index at start and updated after every
// commit that added or deleted orphans.
type orphanSet map[string]struct{}

// orphanParentPrefix cuts an orphan key to its parent prefix.
func orphanParentPrefix(key string) (string, bool) {
	const head = partitionHead
	if len(key) < head {
		return "", false
	}
	i := strings.IndexByte(key[head:], 0)
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(key[head+i+1:], 0)
	if j < 0 {
		return "", false
	}
	return key[:head+i+1+j+1], true
}

// mayHave reports whether the index may hold orphan keys under prefix: a
// parent prefix is looked up, anything shorter (a partition-wide scan) asks
// whether any parent is held.
func (s orphanSet) mayHave(prefix []byte) bool {
	if len(s) == 0 {
		return false
	}
	if p, ok := orphanParentPrefix(string(prefix)); ok && len(p) == len(prefix) {
		_, ok := s[p]
		return ok
	}
	for k := range s {
		if strings.HasPrefix(k, string(prefix)) {
			return true
		}
	}
	return false
}

// loadOrphanSet reads every orphan parent prefix of partition p from db.
func loadOrphanSet(db *badger.DB, p uint32) (orphanSet, error) {
	s := orphanSet{}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: keyOrphans(p)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if pp, ok := orphanParentPrefix(string(it.Item().Key())); ok {
				s[pp] = struct{}{}
			}
		}
		return nil
	})
	return s, err
}

// committed updates s after a commit's state record r was applied: added
// parents are held; a parent whose orphans were released is dropped once
// the index has none left.
func (s orphanSet) committed(db *badger.DB, p uint32, r *stateRec) error {
	for k := range r.Hold {
		if pp, ok := orphanParentPrefix(string(absKey(pfxOrphan, p, k))); ok {
			s[pp] = struct{}{}
		}
	}
	if len(r.Release) == 0 {
		return nil
	}
	return db.View(func(txn *badger.Txn) error {
		for _, k := range r.Release {
			pp, ok := orphanParentPrefix(string(absKey(pfxOrphan, p, k)))
			if _, held := s[pp]; !ok || !held {
				continue
			}
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pp)})
			it.Rewind()
			left := it.Valid()
			it.Close()
			if !left {
				delete(s, pp)
			}
		}
		return nil
	})
}
