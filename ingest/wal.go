package ingest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/internal/badgerlog"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// maxPayloadBytes is the largest Limits.PayloadBytes accepted: one record must
// fit well inside one Badger transaction (15% of MemTableSize, see openDB).
const maxPayloadBytes = 1 << 20

// retryAfterFull is the retry hint sent with buffer_full.
const retryAfterFull = time.Second

const keyDLQ = "m/dlq" // first ‖ next dead-letter numbers (2 × 8B BE)

// openDB opens the WAL with every option that matters set explicitly.
func openDB(dir string, log hclog.Logger) (*badger.DB, error) {
	opts := badger.DefaultOptions(dir).
		// DefaultOptions has SyncWrites=false: Badger would only write to the
		// mmap and survive a process crash, not an OS crash or power loss. The
		// promise "accepted ⇒ fsynced" needs a sync on every commit; group
		// commit is what keeps that affordable.
		WithSyncWrites(true).
		// Keys are written once (q, d, x) or overwritten (s, c, m): history has no use.
		WithNumVersionsToKeep(1).
		// One goroutine writes q/d/s/x/m (the committer) and each provider's
		// forwarder writes only its own c/ key, so conflict tracking is overhead.
		WithDetectConflicts(false).
		// An edge node is small: 3 × 32 MiB memtables instead of 5 × 64 MiB. A
		// Badger txn may hold 15% of a memtable (4.8 MiB), room for a full group.
		WithMemTableSize(32 << 20).
		WithNumMemtables(3).
		// The forwarder reads recent records in key order, mostly from memtables.
		WithBlockCacheSize(16 << 20).
		// Bound table-index and bloom-filter memory as SSTs accumulate.
		WithIndexCacheSize(16 << 20).
		// Records (16 KiB by default, at most 1 MiB) stay in the LSM up to 64 KiB,
		// so the value log, and its GC, only matters for outsized payloads.
		WithValueThreshold(64 << 10).
		// Value-log files are mmapped at twice this size; the 1 GiB default is
		// more than an edge disk budget.
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		// We keep our own byte accounting (m/bytes); Badger's expvar metrics are unused.
		WithMetricsEnabled(false).
		WithLogger(badgerlog.New(log))
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open wal %s: %w", dir, err)
	}
	return db, nil
}

// item is one transaction of a request.
type item struct {
	raw   []byte     // as received, kept for the dead-letter store
	id    string     // from the decoded transaction
	canon []byte     // canonical JSON: what is stored and forwarded
	hash  [32]byte   // SHA-256 of canon
	rej   *txn.Error // rejected at the door (decode, batch, provider)
	ans   wire.Answer
}

// request is one provider request: one transaction or a batch.
type request struct {
	provider string
	batch    bool
	items    []item
	respond  func([]byte) // NATS: the encoded reply; nil when the sender asked for none
	// respondAnswers (HTTP) receives the answers themselves, in input order.
	respondAnswers func([]wire.Answer)
	start          time.Time // arrival, for the ack latency (observe.go)
}

// deadLetter is the stored form of a rejected payload.
type deadLetter struct {
	At        time.Time `json:"at"`
	Provider  string    `json:"provider"`
	Code      string    `json:"code"`
	Reason    string    `json:"reason"`
	Payload   []byte    `json:"payload"`
	Truncated bool      `json:"truncated,omitempty"`
}

// wal is the Badger write-ahead log. Its fields are owned by the committer
// goroutine (and by New before that starts), except bytes, read by Stats.
type wal struct {
	db  *badger.DB
	log hclog.Logger
	cfg Config

	last     map[string]uint64 // provider → last committed edge seq
	bytes    atomic.Int64      // logical bytes written by the committer (m/bytes)
	freed    atomic.Int64      // bytes deleted by retention (m/freed, written by the GC only)
	dlqFirst uint64            // oldest dead letter kept
	dlqNext  uint64            // number of the next dead letter

	txnBytesMax   int64 // cut a group's Badger txn before Badger's own limit
	txnEntriesMax int64

	failLog rateLimit // commit failures (committer goroutine only)

	// onCommit runs after a successful commit for every provider whose counter moved.
	onCommit func(provider string, last uint64, at time.Time)
}

// load reads counters, byte total and dead-letter range.
func (w *wal) load() (cursors map[string]uint64, err error) {
	w.last = map[string]uint64{}
	cursors = map[string]uint64{}
	err = w.db.View(func(tx *badger.Txn) error {
		for _, f := range []struct {
			pfx string
			dst map[string]uint64
		}{{pfxSeq, w.last}, {pfxCursor, cursors}} {
			it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte(f.pfx), PrefetchValues: true, PrefetchSize: 64})
			for it.Rewind(); it.Valid(); it.Next() { // s/ and c/ are never deleted: no tombstones to walk
				k := it.Item().KeyCopy(nil)
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				n, err := readU64(k, v)
				if err != nil {
					it.Close()
					return err
				}
				f.dst[string(k[len(f.pfx):])] = n
			}
			it.Close()
		}
		if v, ok, err := get(tx, []byte(keyBytes)); err != nil {
			return err
		} else if ok {
			n, err := readU64([]byte(keyBytes), v)
			if err != nil {
				return err
			}
			w.bytes.Store(int64(n))
		}
		if v, ok, err := get(tx, []byte(keyFreed)); err != nil {
			return err
		} else if ok {
			n, err := readU64([]byte(keyFreed), v)
			if err != nil {
				return err
			}
			w.freed.Store(int64(n))
		}
		if v, ok, err := get(tx, []byte(keyDLQ)); err != nil {
			return err
		} else if ok {
			if len(v) != 16 {
				return fmt.Errorf("%w: %s holds %d bytes", ErrCorrupt, keyDLQ, len(v))
			}
			w.dlqFirst, w.dlqNext = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load wal state: %w", err)
	}
	for p, c := range cursors {
		if c > w.last[p] {
			return nil, fmt.Errorf("%w: provider %s cursor %d is past its last sequence %d", ErrCorrupt, p, c, w.last[p])
		}
	}
	return cursors, nil
}

// used is the logical size of the WAL: what the committer wrote less what
// retention deleted. Two counters, each with one writer, so the GC never
// races the committer's m/bytes.
func (w *wal) used() int64 { return w.bytes.Load() - w.freed.Load() }

// get returns a copy of k's value.
func get(tx *badger.Txn, k []byte) ([]byte, bool, error) {
	it, err := tx.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := it.ValueCopy(nil)
	return v, err == nil, err
}

// chunk is one Badger transaction of a group. Answers that depend on it
// committing are staged and only set once Commit returns nil.
type chunk struct {
	tx       *badger.Txn
	staged   []staged
	last     map[string]uint64 // providers touched → new last seq
	records  int
	entries  int64
	size     int64 // estimate of the Badger txn size
	bytes    int64 // logical bytes added (negative for trimmed dead letters)
	dlqFirst uint64
	dlqNext  uint64
	dlqDirty bool
}

type staged struct {
	it  *item
	ans wire.Answer
}

func (w *wal) begin() *chunk {
	return &chunk{tx: w.db.NewTransaction(true), last: map[string]uint64{}, dlqFirst: w.dlqFirst, dlqNext: w.dlqNext}
}

func (c *chunk) lastOf(w *wal, p string) uint64 {
	if s, ok := c.last[p]; ok {
		return s
	}
	return w.last[p]
}

// groupResult counts what a group decided.
type groupResult struct {
	accepted, duplicates int
	rejected             map[txn.Code]int
}

// commit is the accept function: it decides every item of reqs, writing the
// accepted records (record q/, dedup key d/, counter s/, all in one Badger
// transaction per at most GroupMax records) and the dead letters.
//
// It MUST NOT answer accepted (nor duplicate of a record written in the same
// transaction) before the Badger commit of that transaction returns nil:
// those answers are staged and set only after Commit, which with SyncWrites
// returns after the fsync. If the commit fails they become rejected
// {unavailable}. The caller sends replies only after commit returns.
func (w *wal) commit(reqs []*request, now time.Time) groupResult {
	res := groupResult{rejected: map[txn.Code]int{}}
	c := w.begin()
	for _, r := range reqs {
		for i := range r.items {
			it := &r.items[i]
			if it.rej != nil {
				c = w.room(c, int64(min(len(it.raw), w.cfg.Limits.PayloadBytes))*2+512, 3) // payload base64 in JSON
				it.ans = rejectedAnswer(it.id, it.rej)
				w.dead(c, r.provider, it.raw, it.rej, now)
				continue
			}
			c = w.room(c, 2*int64(len(it.canon))+int64(len(it.id))+256, 4)
			w.accept(c, r.provider, it, now)
		}
	}
	w.finish(c, now)
	for _, r := range reqs {
		for i := range r.items {
			if r.items[i].ans.Status == "" { // a bug; never leave a provider without an answer
				w.log.Error("item left without an answer", "provider", r.provider, "id", r.items[i].id)
				r.items[i].ans = unavailable(r.items[i].id, "internal error; retry with the same id")
			}
			switch a := r.items[i].ans; a.Status {
			case wire.StatusAccepted:
				res.accepted++
			case wire.StatusDuplicate:
				res.duplicates++
			default:
				res.rejected[txn.Code(a.Code)]++
			}
		}
	}
	return res
}

// room commits c and begins a new chunk when the next item would push c past
// GroupMax records or Badger's transaction limits.
func (w *wal) room(c *chunk, size, entries int64) *chunk {
	if c.tx != nil && c.records < w.cfg.GroupMax && c.size+size <= w.txnBytesMax && c.entries+entries <= w.txnEntriesMax {
		c.size += size
		c.entries += entries
		return c
	}
	w.finish(c, time.Now())
	c = w.begin()
	c.size, c.entries = size, entries
	return c
}

// accept decides one decoded transaction inside c.
func (w *wal) accept(c *chunk, p string, it *item, now time.Time) {
	dk := dedupKey(p, it.id)
	v, found, err := get(c.tx, dk) // sees this txn's own pending writes
	if err != nil {
		w.log.Error("read dedup key", "provider", p, "error", err)
		it.ans = unavailable(it.id, "storage error reading the dedup index; retry with the same id")
		return
	}
	if found {
		seq, hash, ok := splitDedup(v)
		if !ok {
			w.log.Error("corrupt dedup key", "provider", p, "id", it.id, "error", ErrCorrupt)
			it.ans = unavailable(it.id, "storage error in the dedup index")
			return
		}
		var a wire.Answer
		if hash == it.hash {
			a = wire.Answer{Status: wire.StatusDuplicate, ID: it.id, EdgeSeq: seq}
		} else {
			e := &txn.Error{Code: txn.CodeConflict, Reason: fmt.Sprintf("id %q was accepted as edge_seq %d with a different payload", it.id, seq)}
			a = rejectedAnswer(it.id, e)
			w.dead(c, p, it.raw, e, now)
		}
		if seq > w.last[p] { // the original is in this very transaction
			c.staged = append(c.staged, staged{it, a})
		} else {
			it.ans = a
		}
		return
	}
	seq := c.lastOf(w, p) + 1
	qk, qv := recordKey(p, seq), recordValue(now.UnixNano(), it.canon)
	dv := dedupValue(seq, it.hash)
	n := int64(len(qk) + len(qv) + len(dk) + len(dv))
	if w.used()+c.bytes+n > w.cfg.BudgetBytes {
		it.ans = wire.Answer{Status: wire.StatusRejected, ID: it.id, Code: string(txn.CodeBufferFull),
			Reason:       fmt.Sprintf("%v: %d of %d bytes buffered; retry later", ErrBufferFull, w.used()+c.bytes, w.cfg.BudgetBytes),
			RetryAfterMs: retryAfterFull.Milliseconds()}
		return
	}
	if err := c.tx.Set(qk, qv); err != nil {
		w.log.Error("stage record", "provider", p, "error", err)
		it.ans = unavailable(it.id, "storage error; retry with the same id")
		return
	}
	if err := c.tx.Set(dk, dv); err != nil {
		// The record without its dedup key must not commit: drop the chunk.
		w.log.Error("stage dedup key", "provider", p, "error", err)
		c.staged = append(c.staged, staged{it, wire.Answer{}})
		w.fail(c, err)
		return
	}
	c.last[p] = seq
	c.records++
	c.bytes += n
	c.staged = append(c.staged, staged{it, wire.Answer{Status: wire.StatusAccepted, ID: it.id, EdgeSeq: seq}})
}

// dead stages a dead letter in c and trims the oldest past DLQMax. Dead
// letters are best effort: a failed commit loses them, never the answer.
func (w *wal) dead(c *chunk, p string, raw []byte, e *txn.Error, now time.Time) {
	if c.tx == nil {
		return
	}
	d := deadLetter{At: now.UTC(), Provider: p, Code: string(e.Code), Reason: e.Reason, Payload: raw}
	if max := w.cfg.Limits.PayloadBytes; len(raw) > max {
		d.Payload, d.Truncated = raw[:max], true
	}
	v, err := json.Marshal(d)
	if err != nil {
		panic("ingest: encoding dead letter: " + err.Error()) // plain fields: cannot fail
	}
	k := deadKey(c.dlqNext)
	if err := c.tx.Set(k, v); err != nil {
		w.log.Warn("stage dead letter", "provider", p, "error", err)
		return
	}
	c.dlqNext++
	c.bytes += int64(len(k) + len(v))
	for c.dlqNext-c.dlqFirst > uint64(w.cfg.DLQMax) {
		ok := deadKey(c.dlqFirst)
		if old, err := c.tx.Get(ok); err == nil {
			c.bytes -= int64(len(ok)) + old.ValueSize()
		}
		if err := c.tx.Delete(ok); err != nil {
			w.log.Warn("trim dead letter", "error", err)
			break
		}
		c.dlqFirst++
		c.entries++
	}
	c.dlqDirty = true
}

// fail discards c: every answer staged in it becomes unavailable.
func (w *wal) fail(c *chunk, err error) {
	if c.tx != nil {
		c.tx.Discard()
		c.tx = nil
	}
	for _, s := range c.staged {
		s.it.ans = unavailable(s.it.id, "storage error; retry with the same id")
	}
	c.staged = nil
	if n, ok := w.failLog.allow(time.Now()); ok {
		w.log.Error("group not committed: answering unavailable", "error", err, "failures", n)
	}
}

// rateLimit lets a repeated error through once per logEvery, counting the rest.
type rateLimit struct {
	last time.Time
	n    int
}

func (r *rateLimit) allow(now time.Time) (int, bool) {
	r.n++
	if !r.last.IsZero() && now.Sub(r.last) < logEvery {
		return r.n, false
	}
	n := r.n
	r.last, r.n = now, 0
	return n, true
}

// finish commits c, then publishes its staged answers and counters.
func (w *wal) finish(c *chunk, now time.Time) {
	if c.tx == nil {
		return
	}
	if len(c.last) == 0 && !c.dlqDirty {
		c.tx.Discard()
		c.tx = nil
		for _, s := range c.staged {
			s.it.ans = s.ans
		}
		return
	}
	for p, s := range c.last {
		if err := c.tx.Set(seqKey(p), u64(s)); err != nil {
			w.fail(c, err)
			return
		}
	}
	if err := c.tx.Set([]byte(keyBytes), u64(uint64(max(w.bytes.Load()+c.bytes, 0)))); err != nil {
		w.fail(c, err)
		return
	}
	if c.dlqDirty {
		v := binary.BigEndian.AppendUint64(u64(c.dlqFirst), c.dlqNext)
		if err := c.tx.Set([]byte(keyDLQ), v); err != nil {
			w.fail(c, err)
			return
		}
	}
	synced := time.Now()
	err := c.tx.Commit() // SyncWrites: returns after the fsync
	c.tx = nil
	w.cfg.observeSync(synced)
	if err != nil {
		w.fail(c, err)
		return
	}
	// Committed and synced: only now may accepted answers go out.
	for _, s := range c.staged {
		s.it.ans = s.ans
	}
	w.bytes.Add(c.bytes)
	w.dlqFirst, w.dlqNext = c.dlqFirst, c.dlqNext
	for p, s := range c.last {
		w.last[p] = s
		if w.onCommit != nil {
			w.onCommit(p, s, now)
		}
	}
}

// rejectedAnswer echoes the id: the item's, or the one the decoder read
// from a payload it rejected (e.ID), so a batch's answers match by id.
func rejectedAnswer(id string, e *txn.Error) wire.Answer {
	if id == "" {
		id = e.ID
	}
	return wire.Answer{Status: wire.StatusRejected, ID: id, Code: string(e.Code), Reason: e.Reason}
}

func unavailable(id, reason string) wire.Answer {
	return wire.Answer{Status: wire.StatusRejected, ID: id, Code: string(txn.CodeUnavailable), Reason: reason}
}
