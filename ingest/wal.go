package ingest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/hashicorp/go-hclog"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/internal/atrest"
	"github.com/tally-mesh/tally/internal/badgerlog"
	"github.com/tally-mesh/tally/internal/badgermem"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// maxPayloadBytes is the largest Limits.PayloadBytes accepted: one record must
// fit well inside one Badger transaction (15% of MemTableSize, see openDB).
const maxPayloadBytes = 1 << 20

// retryAfterFull is the retry hint sent with buffer_full (WAL budget).
const retryAfterFull = time.Second

// retryAfterOverload is the retry hint sent with buffer_full when the commit
// queue is full (QueueMax): that clears in milliseconds, not seconds.
const retryAfterOverload = 50 * time.Millisecond

// valueThreshold: values above it go to Badger's value log. Dedup values (40
// B) and counters (8 B) stay in the LSM; groups (≥ 16 B header and a record)
// and dead letters go to the value log.
const valueThreshold = 64

const keyDLQ = "m/dlq" // first ‖ next dead-letter numbers (2 × 8B BE)

// openDB opens the WAL with every option that matters set explicitly.
func openDB(dir string, log hclog.Logger, key []byte, rotation time.Duration, mem badgermem.Memory) (*badger.DB, error) {
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
		// Record bodies stay out of the LSM: a commit's records are one packed
		// group value (keys.go), which goes to the value log, so memtable
		// flushes and compactions move only keys, dedup entries (40 B) and
		// counters. Retention deletes whole groups and RunValueLogGC reclaims
		// their value-log files.
		WithValueThreshold(valueThreshold).
		// Value-log files are mmapped at twice this size; the 1 GiB default is
		// more than an edge disk budget.
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		// Flushes and compactions must never hold a commit back (ack tail,
		// issue 14). The LSM holds only keys, 40-byte dedup values (SHA-256:
		// incompressible) and counters, and Badger already stores each key
		// as a diff to its block's first key: Snappy buys nearly nothing and
		// costs CPU in every flush, compaction and block read.
		WithCompression(options.None).
		// Larger L0→L1 steps: a 32 MiB memtable flush is one L0 table; with
		// Badger's 10 MiB L1 every L0 compaction cascades into L2. Fewer,
		// larger tables also mean fewer bloom filters per dedup lookup.
		WithBaseTableSize(8 << 20).
		WithBaseLevelSize(64 << 20).
		// Badger stops flushing memtables (and so blocks every commit once
		// they are all full) while L0 holds NumLevelZeroTablesStall tables.
		// Compaction of L0 starts at 5 tables as before; the stall is pushed
		// from 15 to 32 so a compaction slowed by a busy CPU delays lookups
		// a little (more tables to check) instead of stopping commits.
		WithNumLevelZeroTables(5).
		WithNumLevelZeroTablesStall(32).
		// We keep our own byte accounting (m/bytes); Badger's expvar metrics are unused.
		WithMetricsEnabled(false).
		WithLogger(badgerlog.New(log))
	// Memtables and caches: Config.WALMemory (DefaultWALMemory: an edge node
	// is small, 3 × 32 MiB memtables instead of Badger's 5 × 64 MiB; both
	// caches bounded, as SSTs accumulate with the dedup keys).
	opts = mem.Apply(opts)
	opts = atrest.Apply(opts, key, rotation) // encryption at rest when a key is set (docs/security.md)
	db, err := badgerlog.Open(opts)
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
	// typ and amount are kept only for a TxObserver (observe.go).
	typ    txn.Type
	amount decimal.Decimal
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
	shed           bool      // answered buffer_full before decoding (Node.shed): never queued
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
// goroutine (and by New before that starts), except: bytes and freed
// (atomic, read by Stats); last and dlqDone, written by complete on Badger's
// callback goroutine and read by the committer only after waiting for that
// chunk (wait).
type wal struct {
	db  *badger.DB
	log hclog.Logger
	cfg Config

	last     map[string]uint64 // provider → last committed edge seq
	next     map[string]uint64 // provider → last edge seq staged (committed, in flight or staging)
	bytes    atomic.Int64      // logical bytes written by the committer (m/bytes)
	freed    atomic.Int64      // bytes deleted by retention (m/freed, written by the GC only)
	dlqFirst uint64            // oldest dead letter kept (staged)
	dlqNext  uint64            // number of the next dead letter (staged)
	dlqDone  [2]uint64         // dlqFirst, dlqNext as committed

	// The commit pipeline (stage, submit): the chunk in flight, the read
	// snapshot and the overlay of dedup keys (and dead-letter sizes) not in
	// it: cur of the chunk being staged, prev of the chunk in flight.
	inflight          *chunk
	snap              *badger.Txn
	cur, prev         map[string]dedupEntry
	curDead, prevDead map[uint64]int64

	txnBytesMax   int64 // cut a group's Badger txn before Badger's own limit
	txnEntriesMax int64

	failLog rateLimit // commit failures (complete: serialised by the pipeline)

	// onCommit runs after a successful commit for every provider whose counter moved.
	onCommit func(provider string, last uint64, at time.Time)
}

// load reads counters, byte total and dead-letter range.
func (w *wal) load() (cursors map[string]uint64, err error) {
	if err := w.migrate(); err != nil {
		return nil, err
	}
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
	w.next = maps.Clone(w.last)
	w.dlqDone = [2]uint64{w.dlqFirst, w.dlqNext}
	w.cur, w.prev = map[string]dedupEntry{}, map[string]dedupEntry{}
	w.curDead, w.prevDead = map[uint64]int64{}, map[uint64]int64{}
	for p, c := range cursors {
		if c > w.last[p] {
			return nil, fmt.Errorf("%w: provider %s cursor %d is past its last sequence %d", ErrCorrupt, p, c, w.last[p])
		}
	}
	return cursors, nil
}

// acceptedAt reads the accept time of record seq of provider p (of its group).
func (w *wal) acceptedAt(p string, seq uint64) (int64, error) {
	var at int64
	err := w.db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: recordPrefix(p)})
		defer it.Close()
		it.Seek(groupKey(p, seq))
		if !it.Valid() {
			return fmt.Errorf("%w: provider %s record %d missing below its counter", ErrCorrupt, p, seq)
		}
		return it.Item().Value(func(v []byte) error {
			g, err := splitGroup(it.Item().Key(), v)
			if err != nil {
				return err
			}
			if g.first > seq {
				return fmt.Errorf("%w: provider %s record %d missing below its counter", ErrCorrupt, p, seq)
			}
			at = g.at
			return nil
		})
	})
	return at, err
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

// chunk is one Badger transaction of a group: the unit of the commit
// pipeline. It is staged in memory (ops, packed groups, answers that depend on
// it committing) while the chunk before it fsyncs, and committed once that one
// is done. Answers staged in it are set only when its commit returned nil.
type chunk struct {
	now      time.Time
	ops      []op                 // dead letters and their trims, in order
	groups   map[string]*groupBuf // provider → its records of this chunk, packed
	order    []string             // providers of groups, in first-touch order
	staged   []staged
	records  int
	entries  int64
	size     int64 // estimate of the Badger txn size
	bytes    int64 // logical bytes added (negative for trimmed dead letters)
	dlqFirst uint64
	dlqNext  uint64
	dlqDirty bool

	reqs []*request                    // on a group's last chunk: the group, answered when it completes
	fin  func([]*request, groupResult) // answers reqs (nil: nobody to tell)
	done chan struct{}                 // closed when the commit completed (err set before)
	err  error
}

// op is one staged Badger write.
type op struct {
	k, v []byte
	del  bool
}

// groupBuf is one provider's records of a chunk: first..last, packed.
type groupBuf struct {
	first, last uint64
	v           []byte
}

type staged struct {
	it  *item
	ans wire.Answer
}

// dedupEntry is a dedup key staged or in flight (the overlay).
type dedupEntry struct {
	seq  uint64
	hash [32]byte
}

func (w *wal) begin(now time.Time) *chunk {
	return &chunk{now: now, groups: map[string]*groupBuf{}, dlqFirst: w.dlqFirst, dlqNext: w.dlqNext}
}

// nextOf is the last sequence staged for p (committed, in flight or in c).
// It never reads last, which complete writes concurrently.
func (w *wal) nextOf(p string) uint64 { return w.next[p] }

// groupResult counts what a group decided.
type groupResult struct {
	accepted, duplicates int
	rejected             map[txn.Code]int
}

// commit decides every item of reqs and waits until all of it is durable.
// Tests and benchmarks use it; the node's committer uses stage (pipelined).
func (w *wal) commit(reqs []*request, now time.Time) groupResult {
	var res groupResult
	w.stage(reqs, now, func(_ []*request, r groupResult) { res = r })
	w.flush()
	return res
}

// stage is the accept function: it decides every item of reqs, packs the
// accepted records of each provider into one group entry (g/, with their
// dedup keys d/ and counter s/, all in one Badger transaction per at most
// GroupMax records) and stages the dead letters. It returns as soon as the
// last chunk is handed to Badger: that commit fsyncs while the caller
// collects and stages the next group (stage waits for it before committing
// the next chunk, so at most one chunk is in flight).
//
// Nothing that depends on a chunk committing is answered before the Badger
// commit of that chunk returned nil (SyncWrites: after the fsync): accepted,
// and duplicate or conflict of a record in a chunk not yet committed (found
// in the overlay of staged and in-flight dedup keys). If a commit fails those
// answers become rejected {unavailable}, and so does everything staged on
// top of it. fin runs once every item of reqs has its answer, on the
// goroutine that completed the last chunk; it must not call stage.
func (w *wal) stage(reqs []*request, now time.Time, fin func([]*request, groupResult)) {
	c := w.begin(now)
	for _, r := range reqs {
		for i := range r.items {
			it := &r.items[i]
			if it.rej != nil {
				c = w.room(c, int64(min(len(it.raw), w.cfg.Limits.PayloadBytes))*2+512, 3) // payload base64 in JSON
				it.ans = rejectedAnswer(it.id, it.rej)
				w.dead(c, r.provider, it.raw, it.rej, now)
				continue
			}
			c = w.room(c, 2*int64(len(it.canon))+int64(len(it.id))+256, 2)
			w.accept(c, r.provider, it, now)
		}
	}
	c.reqs, c.fin = reqs, fin
	w.submit(c)
}

// result counts the answers of reqs; an item left without one (a bug) is
// answered unavailable rather than left hanging.
func (w *wal) result(reqs []*request) groupResult {
	res := groupResult{rejected: map[txn.Code]int{}}
	for _, r := range reqs {
		for i := range r.items {
			if r.items[i].ans.Status == "" {
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

// room submits c and begins a new chunk when the next item would push c past
// GroupMax records or Badger's transaction limits.
func (w *wal) room(c *chunk, size, entries int64) *chunk {
	if c.records < w.cfg.GroupMax && c.size+size <= w.txnBytesMax && c.entries+entries <= w.txnEntriesMax {
		c.size += size
		c.entries += entries
		return c
	}
	now := c.now
	w.submit(c)
	c = w.begin(now)
	c.size, c.entries = size, entries
	return c
}

// snapshot is the committer's read view for dedup lookups: everything
// committed before the chunk in flight (that one and the staging chunk are
// in the overlay). Opened lazily; a fresh one waits for commits in flight.
func (w *wal) snapshot() *badger.Txn {
	if w.snap == nil {
		w.snap = w.db.NewTransaction(false)
	}
	return w.snap
}

// idle drops the snapshot when the committer has nothing to do, so an old
// read timestamp never holds back compaction.
func (w *wal) idle() {
	if w.snap != nil {
		w.snap.Discard()
		w.snap = nil
	}
	if w.inflight == nil { // the next snapshot holds every committed chunk
		clear(w.prev)
		clear(w.prevDead)
	}
}

// lookup finds the dedup entry of dk: in the overlay (pending: its chunk may
// not be committed yet) or in the snapshot (committed).
func (w *wal) lookup(dk []byte) (e dedupEntry, found, pending bool, err error) {
	if e, ok := w.cur[string(dk)]; ok {
		return e, true, true, nil
	}
	if e, ok := w.prev[string(dk)]; ok {
		return e, true, true, nil
	}
	item, err := w.snapshot().Get(dk)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return e, false, false, nil
	}
	if err != nil {
		return e, false, false, err
	}
	err = item.Value(func(v []byte) error { // parsed in place: no copy of the value
		seq, hash, good := splitDedup(v)
		if !good {
			return fmt.Errorf("%w: dedup key %q holds %d bytes", ErrCorrupt, dk, len(v))
		}
		e = dedupEntry{seq, hash}
		return nil
	})
	if err != nil {
		return dedupEntry{}, false, false, err
	}
	return e, true, false, nil
}

// accept decides one decoded transaction inside c.
func (w *wal) accept(c *chunk, p string, it *item, now time.Time) {
	dk := dedupKey(p, it.id)
	e, found, pending, err := w.lookup(dk)
	if err != nil {
		w.log.Error("read dedup key", "provider", p, "error", err)
		it.ans = unavailable(it.id, "storage error reading the dedup index; retry with the same id")
		return
	}
	if found {
		var a wire.Answer
		if e.hash == it.hash {
			a = wire.Answer{Status: wire.StatusDuplicate, ID: it.id, EdgeSeq: e.seq}
		} else {
			r := &txn.Error{Code: txn.CodeConflict, Reason: fmt.Sprintf("id %q was accepted as edge_seq %d with a different payload", it.id, e.seq)}
			a = rejectedAnswer(it.id, r)
			w.dead(c, p, it.raw, r, now)
		}
		if pending { // the original is staged or in flight: answer once c (after it) committed
			c.staged = append(c.staged, staged{it, a})
		} else {
			it.ans = a
		}
		return
	}
	seq := w.nextOf(p) + 1
	g := c.groups[p]
	var n int64
	if g == nil {
		n = int64(len(recordPrefix(p)) + 8 + groupHeader)
	}
	dv := dedupValue(seq, it.hash)
	n += int64(len(dk)+len(dv)+len(it.canon)) + int64(uvarintLen(len(it.canon)))
	if used := w.used() + w.pending() + c.bytes; used+n > w.cfg.BudgetBytes {
		it.ans = wire.Answer{Status: wire.StatusRejected, ID: it.id, Code: string(txn.CodeBufferFull),
			Reason:       fmt.Sprintf("%v: %d of %d bytes buffered; retry later", ErrBufferFull, used, w.cfg.BudgetBytes),
			RetryAfterMs: retryAfterFull.Milliseconds()}
		return
	}
	if g == nil {
		g = &groupBuf{first: seq, v: groupStart(seq, now.UnixNano())}
		c.groups[p] = g
		c.order = append(c.order, p)
	}
	g.v = appendGroupRecord(g.v, it.canon)
	g.last = seq
	w.cur[string(dk)] = dedupEntry{seq, it.hash}
	c.ops = append(c.ops, op{k: dk, v: dv})
	w.next[p] = seq
	c.records++
	c.bytes += n
	c.staged = append(c.staged, staged{it, wire.Answer{Status: wire.StatusAccepted, ID: it.id, EdgeSeq: seq}})
}

func uvarintLen(n int) int {
	k := 1
	for ; n >= 0x80; n >>= 7 {
		k++
	}
	return k
}

// pending is the logical size of the chunk in flight, until it completed.
func (w *wal) pending() int64 {
	if p := w.inflight; p != nil {
		select {
		case <-p.done:
		default:
			return p.bytes
		}
	}
	return 0
}

// dead stages a dead letter in c and trims the oldest past DLQMax. Dead
// letters are best effort: a failed commit loses them, never the answer.
func (w *wal) dead(c *chunk, p string, raw []byte, e *txn.Error, now time.Time) {
	d := deadLetter{At: now.UTC(), Provider: p, Code: string(e.Code), Reason: e.Reason, Payload: raw}
	if max := w.cfg.Limits.PayloadBytes; len(raw) > max {
		d.Payload, d.Truncated = raw[:max], true
	}
	v, err := json.Marshal(d)
	if err != nil {
		panic("ingest: encoding dead letter: " + err.Error()) // plain fields: cannot fail
	}
	k := deadKey(c.dlqNext)
	c.ops = append(c.ops, op{k: k, v: v})
	w.curDead[c.dlqNext] = int64(len(k) + len(v))
	c.dlqNext++
	c.bytes += int64(len(k) + len(v))
	for c.dlqNext-c.dlqFirst > uint64(w.cfg.DLQMax) {
		ok := deadKey(c.dlqFirst)
		c.bytes -= w.deadSize(c.dlqFirst)
		c.ops = append(c.ops, op{k: ok, del: true})
		c.dlqFirst++
		c.entries++
	}
	c.dlqDirty = true
}

// deadSize is the stored size of dead letter n (key and value), wherever it is.
func (w *wal) deadSize(n uint64) int64 {
	if s, ok := w.curDead[n]; ok {
		return s
	}
	if s, ok := w.prevDead[n]; ok {
		return s
	}
	k := deadKey(n)
	if it, err := w.snapshot().Get(k); err == nil {
		return int64(len(k)) + it.ValueSize()
	}
	return 0
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

// submit waits for the chunk in flight, then hands c to Badger (CommitWith)
// and returns: c fsyncs while the caller stages the next chunk. If the chunk
// in flight failed, c was staged on top of it (its sequences continue that
// chunk's, its duplicates may point into it) and fails too.
func (w *wal) submit(c *chunk) {
	w.packGroups(c) // compress while the chunk in flight fsyncs (groupcodec.go)
	failed := w.wait()
	// Everything committed is now readable: a fresh snapshot holds it, and the
	// overlay keeps only c's dedup keys (in flight from here on).
	w.idle()
	w.prev, w.cur = w.cur, map[string]dedupEntry{}
	w.prevDead, w.curDead = w.curDead, map[uint64]int64{}
	if failed != nil {
		w.prev, w.prevDead = map[string]dedupEntry{}, map[uint64]int64{}
		w.complete(c, fmt.Errorf("an earlier group failed: %w", failed))
		return
	}
	w.dlqFirst, w.dlqNext = c.dlqFirst, c.dlqNext
	if len(c.groups) == 0 && !c.dlqDirty { // nothing to write: its answers hang on committed chunks only
		w.complete(c, nil)
		return
	}
	tx := w.db.NewTransaction(true)
	if err := w.fill(tx, c); err != nil {
		tx.Discard()
		w.complete(c, err)
		w.reset()
		return
	}
	c.done = make(chan struct{})
	w.inflight = c
	synced := time.Now()
	tx.CommitWith(func(err error) { // SyncWrites: runs after the fsync
		w.cfg.observeSync(synced)
		w.complete(c, err)
		close(c.done)
	})
}

// fill stages c's writes in tx.
func (w *wal) fill(tx *badger.Txn, c *chunk) error {
	for _, p := range c.order {
		g := c.groups[p]
		if err := tx.Set(groupKey(p, g.last), g.v); err != nil {
			return err
		}
		if err := tx.Set(seqKey(p), u64(g.last)); err != nil {
			return err
		}
	}
	for _, o := range c.ops {
		var err error
		if o.del {
			err = tx.Delete(o.k)
		} else {
			err = tx.Set(o.k, o.v)
		}
		if err != nil {
			return err
		}
	}
	if err := tx.Set([]byte(keyBytes), u64(uint64(max(w.bytes.Load()+c.bytes, 0)))); err != nil {
		return err
	}
	if c.dlqDirty {
		v := binary.BigEndian.AppendUint64(u64(c.dlqFirst), c.dlqNext)
		if err := tx.Set([]byte(keyDLQ), v); err != nil {
			return err
		}
	}
	return nil
}

// wait waits for the chunk in flight and returns its error; after a failure
// the staged state is reset to what is committed.
func (w *wal) wait() error {
	p := w.inflight
	if p == nil {
		return nil
	}
	<-p.done
	w.inflight = nil
	if p.err != nil {
		w.reset()
	}
	return p.err
}

// flush waits until everything submitted is durable (or failed).
func (w *wal) flush() {
	w.wait()
	w.idle()
}

// reset forgets everything staged and not committed: counters, dead-letter
// numbers and the overlay.
func (w *wal) reset() {
	w.next = maps.Clone(w.last)
	w.dlqFirst, w.dlqNext = w.dlqDone[0], w.dlqDone[1]
	clear(w.cur)
	clear(w.prev)
	clear(w.curDead)
	clear(w.prevDead)
}

// complete publishes c's outcome: on success its staged answers and
// counters, on failure unavailable for every staged answer. Then, on a
// group's last chunk, the group's answers go out (fin). It runs on Badger's
// callback goroutine, or on the committer for chunks that write nothing.
func (w *wal) complete(c *chunk, err error) {
	c.err = err
	if err != nil {
		for _, s := range c.staged {
			s.it.ans = unavailable(s.it.id, "storage error; retry with the same id")
		}
		if n, ok := w.failLog.allow(time.Now()); ok {
			w.log.Error("group not committed: answering unavailable", "error", err, "failures", n)
		}
	} else {
		// Committed and synced: only now may accepted answers go out.
		for _, s := range c.staged {
			s.it.ans = s.ans
		}
		w.bytes.Add(c.bytes)
		if c.dlqDirty {
			w.dlqDone = [2]uint64{c.dlqFirst, c.dlqNext}
		}
		for _, p := range c.order {
			s := c.groups[p].last
			w.last[p] = s
			if w.onCommit != nil {
				w.onCommit(p, s, c.now)
			}
		}
	}
	c.staged, c.ops, c.groups = nil, nil, nil
	if c.reqs != nil {
		res := w.result(c.reqs)
		if c.fin != nil {
			c.fin(c.reqs, res)
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

// overloaded is the answer when QueueMax records already wait for the
// committer: buffer_full at once, rather than a queue of seconds.
func overloaded(id string, queued int64, max int) wire.Answer {
	return wire.Answer{Status: wire.StatusRejected, ID: id, Code: string(txn.CodeBufferFull),
		Reason:       fmt.Sprintf("%v: edge overloaded, %d records waiting for the commit (ingest queue_max %d); retry later", ErrBufferFull, queued, max),
		RetryAfterMs: retryAfterOverload.Milliseconds()}
}

func unavailable(id, reason string) wire.Answer {
	return wire.Answer{Status: wire.StatusRejected, ID: id, Code: string(txn.CodeUnavailable), Reason: reason}
}
