package settle

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// worker is the single writer of one partition.
type worker struct {
	n         *Node
	p         uint32
	log       hclog.Logger
	cons      jetstream.Consumer
	ledgerSeq uint64                   // stream sequence of this partition's last segment on TALLY_LEDGER
	cnt       Counters                 // owned by the worker goroutine
	snap      atomic.Pointer[Counters] // last committed counters, for Stats
	lag       atomic.Uint64
	lagNanos  atomic.Int64 // publish→settled delay of the last commit; 0 when caught up
	lagAt     time.Time    // last consumer Info (worker goroutine only)
	fenced    atomic.Bool  // stepped down: another writer appended to the partition
	// guard says whether this node may still write the partition: nil with
	// static ownership; with leases it returns ErrLeaseLost once the lease
	// was not renewed in time (lease.go). Checked before every fetch and
	// every publish attempt.
	guard    func() error
	ready    atomic.Bool // caught up and consuming
	lastScan time.Time
	held     orphanSet           // parents with orphans in the index (worker goroutine only)
	gaps     map[string]*gapHold // batches held behind a gap, by high-water key (gap.go)
	nheld    int                 // messages in gaps
	// inflight is the commit running while the next batch fills
	// (settle.pipeline); nil when none. Worker goroutine only.
	inflight *inflight
	// recsPerMsg estimates records per forwarded message, to size fetches;
	// 0 until the first message (firstRecsPerMsg is assumed).
	recsPerMsg int
}

// maxSideBytes ends a batch whose held reversals and exceptions carry this
// many payload bytes: they travel in the ledger message's state record,
// which must stay well inside the NATS payload limit next to the segment.
const maxSideBytes = 256 << 10

// commitGrace is how long a commit in progress at shutdown may still try to
// publish; publishAttempt bounds one publish attempt, so a request lost in a
// reconnect or a leader election is retried instead of waited out.
const (
	commitGrace    = 30 * time.Second
	publishAttempt = 5 * time.Second
)

func (w *worker) run(ctx context.Context) (err error) {
	// A commit still in flight (settle.pipeline) lands before the worker
	// returns: the node closes the index and the ledger after its workers.
	defer func() {
		if ferr := w.finish(); ferr != nil && err == nil {
			err = ferr
		}
	}()
	held, err := loadOrphanSet(w.n.idx.db, w.p)
	if err != nil {
		return fmt.Errorf("read partition %d orphans: %w", w.p, err)
	}
	w.held = held
	fences := 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		err := w.turn(ctx)
		switch {
		case err == nil:
			fences = 0
			continue
		case !errors.Is(err, ErrFenced) || w.n.cfg.StepDownOnFence || w.check() != nil:
			if errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrFenced) {
				w.nakHeld() // for the partition's owner, now rather than after AckWait
			}
			return err
		}
		// Fenced while this node is still the partition's writer (static
		// ownership, or a lease that is still valid): the stream holds a message this node
		// did not apply — its own earlier publish whose PubAck was lost
		// beyond the duplicate window, or a second writer configured for the
		// same partition. Nothing of the refused commit was written; the
		// stream is the truth: catch up from it and go on, so no restart by
		// hand is needed. Repeated fences back off and alert each time.
		fences++
		wait := min(time.Duration(1<<min(fences-1, 5))*time.Second, 30*time.Second)
		w.log.Warn("fenced on the ledger stream: catching up from it and going on", "fences", fences, "after", wait, "error", err)
		w.n.alert(alertFenced, map[string]any{"partition": w.p, "error": err.Error(), "fences": fences, "action": "catch-up"})
		if err := w.rejoin(ctx, wait); err != nil {
			return err
		}
	}
}

// rejoin waits, then catches up from TALLY_LEDGER (retrying while the
// stream is unavailable) and reloads what the worker keeps in memory.
func (w *worker) rejoin(ctx context.Context, wait time.Duration) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		err := w.catchUp(ctx)
		if err == nil {
			held, err := loadOrphanSet(w.n.idx.db, w.p)
			if err != nil {
				return fmt.Errorf("read partition %d orphans: %w", w.p, err)
			}
			w.held = held
			return nil
		}
		if errors.Is(err, ErrLocalAhead) || ctx.Err() != nil {
			return err
		}
		w.log.Warn("catch-up from the ledger stream failed, retrying", "error", err)
		wait = min(2*wait+time.Second, 30*time.Second)
	}
}

// check returns ErrLeaseLost when this node may no longer write the partition.
func (w *worker) check() error {
	if w.guard == nil {
		return nil
	}
	return w.guard()
}

// nakHeld gives the messages held behind gaps back to the consumer.
func (w *worker) nakHeld() {
	for _, g := range w.gaps {
		for _, h := range g.msgs {
			h.m.Nak()
		}
	}
	w.gaps, w.nheld = nil, 0
}

// turn fills one batch and commits it. With settle.pipeline the batch fills
// while the previous one commits (inflight), reading through its overlay;
// the previous commit is waited for before this batch is prepared, since
// the segment chains on its hash and the publish is fenced on its stream
// sequence. turn then starts this batch's commit and returns without waiting
// for it. If the previous commit failed, this batch was built on state that
// never landed: its messages are given back (Nak) and the commit's error is
// returned, so the partition stops or rejoins exactly as without the
// pipeline. Nothing is acked before its own commit has landed.
func (w *worker) turn(ctx context.Context) error {
	b := newBatchOn(w.n.idx.db, w.held, w.cnt)
	defer b.close()
	if c := w.inflight; c != nil {
		b.prev, b.cnt = c.b, c.b.cnt
	}
	err := w.fill(ctx, b)
	if ferr := w.finish(); ferr != nil {
		for _, m := range b.msgs {
			m.Nak() // built on a commit that did not land; best effort
		}
		w.nakHeld()
		return ferr
	}
	b.prev = nil // committed and in the index: later snapshots see it
	if err != nil {
		if errors.Is(err, ErrLeaseLost) {
			for _, m := range b.msgs {
				m.Nak()
			}
		}
		return err
	}
	if b.empty() {
		return nil
	}
	c, err := w.begin(b)
	if err != nil {
		return err
	}
	// A commit retries its publish for as long as the node runs: a hub
	// outage or a leader election must not stop the partition (nothing is
	// written locally before the PubAck, so waiting is always safe). On
	// shutdown the commit gets commitGrace more: the inputs are already
	// processed and committing them is cheaper than redelivery.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(commitGrace, cancel)
		<-cctx.Done()
		t.Stop()
	})
	c.release = func() { stop(); cancel() }
	if !w.n.cfg.Pipeline {
		w.land(cctx, c)
		w.inflight = c
		return w.finish()
	}
	b.close() // prepared: only read as the next batch's prev from now on
	w.inflight = c
	go w.land(cctx, c)
	return nil
}

// fill fetches and processes messages until the segment is full or old enough.
func (w *worker) fill(ctx context.Context, b *batch) error {
	cfg := w.n.cfg
	for ctx.Err() == nil {
		if err := w.check(); err != nil {
			return err
		}
		if w.n.cfg.OrphanTimeout > 0 && time.Since(w.lastScan) > min(cfg.OrphanTimeout/10, time.Minute) {
			if err := w.expireOrphans(b); err != nil {
				return err
			}
			w.lastScan = time.Now()
		}
		if len(w.gaps) > 0 {
			if err := w.release(b); err != nil {
				return err
			}
		}
		if len(b.entries) >= cfg.SegmentMaxEntries || b.sideBytes >= maxSideBytes {
			return nil
		}
		if b.empty() {
			if w.landed() {
				return nil // let turn finish the commit in flight: its error must not wait for traffic
			}
			// Idle: wait for the first message (up to segment_max_age, so
			// orphan expiry and lease checks still run), and start the
			// segment's clock when it comes.
			m, err := w.cons.Next(jetstream.FetchMaxWait(cfg.SegmentMaxAge))
			switch {
			case errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
				w.updateLag()
				continue
			case err != nil:
				if ctx.Err() != nil {
					return nil
				}
				w.log.Warn("fetch", "error", err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			b.started = time.Now()
			before := b.records
			if err := w.process(b, m); err != nil {
				return err
			}
			w.noteRecords(b.records - before)
			continue
		}
		if time.Since(b.started) >= cfg.SegmentMaxAge {
			return nil
		}
		// Take what is already waiting, without waiting for more: seal on
		// idle. Under load each fetch returns a full batch and the segment
		// fills to segment_max_entries; at low load a commit starts as soon
		// as nothing more is pending, instead of after segment_max_age.
		// What arrives while a commit runs is taken by the next one.
		msgs, err := w.cons.FetchNoWait(w.fetchSize(len(b.entries)))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("fetch", "error", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		got := 0
		for m := range msgs.Messages() {
			got++
			before := b.records
			if err := w.process(b, m); err != nil {
				return err
			}
			w.noteRecords(b.records - before)
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			w.log.Debug("fetch ended", "error", err)
		}
		w.updateLag()
		if got == 0 {
			return nil // nothing more pending: seal now
		}
	}
	return nil
}

// fetchSize is how many messages to fetch next so that the open segment ends
// near SegmentMaxEntries: each message holds up to a forward batch of
// records, so fetching FetchBatch messages at once could build one segment of
// a hundred thousand entries under a backlog, and an index transaction too
// big for Badger ("Txn is too big"), which stops the partition.
func (w *worker) fetchSize(entries int) int {
	per := w.recsPerMsg
	if per == 0 {
		per = firstRecsPerMsg
	}
	room := w.n.cfg.SegmentMaxEntries - entries
	return min(max(room/per, 1), w.n.cfg.FetchBatch)
}

// noteRecords updates the running records-per-message estimate (decaying
// average, starting high so the first fetch is small).
func (w *worker) noteRecords(n int) {
	if w.recsPerMsg == 0 {
		w.recsPerMsg = max(n, 1)
		return
	}
	w.recsPerMsg = max((3*w.recsPerMsg+n+3)/4, 1)
}

// firstRecsPerMsg is the estimate before any message was seen: the edge's
// default forward batch, so a first fetch under a backlog stays small.
const firstRecsPerMsg = 500

// updateLag refreshes the partition's lag from the consumer's info at most
// every lagRefresh (CachedInfo alone is only what the last Info call saw).
// Caught up, the lag age is 0.
func (w *worker) updateLag() {
	if time.Since(w.lagAt) >= lagRefresh {
		w.lagAt = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), publishAttempt)
		w.cons.Info(ctx) //nolint:errcheck // on error CachedInfo keeps the last good value
		cancel()
	}
	if ci := w.cons.CachedInfo(); ci != nil {
		n := ci.NumPending + uint64(ci.NumAckPending)
		w.lag.Store(n)
		if n == 0 {
			w.lagNanos.Store(0)
		}
	}
}

// lagRefresh bounds how often a worker asks JetStream for its consumer's info.
const lagRefresh = 500 * time.Millisecond

// noteCommitted records how far behind real time the commit of b was: from
// the newest input's arrival in TALLY_TX to now (tally_settle_lag_seconds).
func (w *worker) noteCommitted(b *batch) {
	if !b.newest.IsZero() {
		w.lagNanos.Store(int64(time.Since(b.newest)))
	}
}

// process handles one forwarded batch message.
func (w *worker) process(b *batch, m jetstream.Msg) error {
	if md, err := m.Metadata(); err == nil && md.Timestamp.After(b.newest) {
		b.newest = md.Timestamp
	}
	h := m.Headers()
	node, provider := h.Get(wire.HdrNode), h.Get(wire.HdrProvider)
	body := m.Data()
	sum := sha256.Sum256(body)
	if want := h.Get(wire.HdrHash); want != "" && want != hex.EncodeToString(sum[:]) {
		// Corrupted in transit or at rest. Without it a gap follows, which holds
		// the provider until the edge replays the records.
		w.log.Error("batch hash mismatch", "node", node, "provider", provider)
		b.alerts = append(b.alerts, alert{wire.AlertGap, map[string]any{"partition": w.p, "node": node, "provider": provider, "reason": "batch hash mismatch"}})
		return m.TermWithReason("hash mismatch")
	}
	recs, err := wire.DecodeBatch(body, 1<<20)
	if err != nil || !wire.ValidToken(node) || !wire.ValidToken(provider) {
		w.log.Error("undecodable batch", "node", node, "provider", provider, "error", err)
		return m.TermWithReason("undecodable batch")
	}
	b.records += len(recs)
	hkey := keyMark(w.p, node, provider)
	hwm, err := b.getHWM(w.n.idx.db, hkey)
	if err != nil {
		return fmt.Errorf("read high-water mark: %w", err)
	}
	if recs[0].Seq > hwm+1 {
		// A gap: an earlier batch of this (node, provider) is missing. Never
		// apply out of order: hold this one until the gap closes (gap.go).
		return w.hold(b, string(hkey), node, provider, m, recs[0].Seq, hwm)
	}
	start := hwm
	for _, r := range recs {
		if r.Seq <= hwm {
			b.cnt.Redelivered++
			continue
		}
		if err := w.apply(b, node, provider, r); err != nil {
			return err
		}
		hwm = r.Seq
	}
	if hwm > start {
		b.hwm[string(hkey)] = hwm
	}
	b.msgs = append(b.msgs, m)
	return nil
}

// apply settles one new record with the pure engine (settle/engine) over this
// batch: dedup, conflict, orphan hold, rules, release.
func (w *worker) apply(b *batch, node, provider string, r wire.Record) error {
	g := Engine{Book: w.n.book, Partition: w.p}
	return g.Apply(batchState{w, b}, batchSink{w, b}, &b.cnt, Input{Provider: provider, EdgeNode: node, EdgeSeq: r.Seq, Payload: r.Payload, Now: time.Now()})
}

// expireOrphans turns reversals held longer than the orphan timeout into exceptions.
func (w *worker) expireOrphans(b *batch) error {
	g := Engine{Book: w.n.book, Partition: w.p}
	return g.Expire(batchState{w, b}, batchSink{w, b}, &b.cnt, time.Now(), w.n.cfg.OrphanTimeout)
}

// inflight is one commit: a prepared batch on its way to the stream, the
// files and the index. land runs it (in its own goroutine with
// settle.pipeline); finish, on the worker goroutine, waits for it and moves
// the worker's state to it.
type inflight struct {
	b       *batch
	pr      *store.Prepared // nil: no segment
	rec     *stateRec       // nil: only redeliveries, nothing to write
	seq     uint64          // TALLY_LEDGER sequence, once landed
	err     error
	done    chan struct{}
	release func() // the commit context's
}

// begin prepares b's commit (after etcd raft's Ready): its segment and state
// record are built without writing anything.
func (w *worker) begin(b *batch) (*inflight, error) {
	c := &inflight{b: b, done: make(chan struct{}), release: func() {}}
	if !b.changed() {
		return c, nil // only redeliveries: nothing for the ledger or the index
	}
	var err error
	if c.pr, c.rec, err = w.prepare(b); err != nil {
		return nil, err
	}
	return c, nil
}

// land is the rest of a commit (Advance): c is published to TALLY_LEDGER
// fenced on the partition's last subject sequence, and only once the stream
// has accepted it applied locally (segment file, index, signature) and its
// inputs acked. A fenced publish writes nothing and fails with ErrFenced:
// the node stops this partition or rejoins. land touches none of the state
// the worker goroutine fills the next batch with (w.cnt, w.held,
// w.ledgerSeq are moved by finish).
func (w *worker) land(ctx context.Context, c *inflight) {
	defer close(c.done)
	b := c.b
	if c.rec != nil {
		seq, err := w.publish(ctx, c.pr, c.rec)
		if err != nil {
			if errors.Is(err, ErrFenced) || errors.Is(err, ErrLeaseLost) {
				for _, m := range b.msgs {
					m.Nak() // for the partition's new owner; best effort
				}
			}
			c.err = err
			return
		}
		if err := w.store(seq, c.pr, c.rec); err != nil {
			c.err = err
			return
		}
		c.seq = seq
		for _, a := range b.alerts {
			w.n.alert(a.kind, a.body)
		}
	}
	// Stats move with the files and the index, before the inputs are acked:
	// a caller that sees the entries (or an ack) sees them counted, without
	// waiting for the worker goroutine's finish.
	snap := b.cnt
	if c.rec != nil {
		snap = c.rec.Counters
	}
	w.snap.Store(&snap)
	w.ack(b)
	w.noteCommitted(b)
}

// finish waits for the commit in flight, if any, and moves the worker to
// it; it returns the commit's error.
func (w *worker) finish() error {
	c := w.inflight
	if c == nil {
		return nil
	}
	w.inflight = nil
	<-c.done
	c.release()
	if c.err != nil {
		return c.err
	}
	if c.rec == nil {
		w.cnt = c.b.cnt
		snap := c.b.cnt
		w.snap.Store(&snap)
		return nil
	}
	return w.moved(c.seq, c.rec)
}

// landed reports whether a commit in flight has landed (or failed) and
// waits for finish.
func (w *worker) landed() bool {
	if w.inflight == nil {
		return false
	}
	select {
	case <-w.inflight.done:
		return true
	default:
		return false
	}
}

func (w *worker) ack(b *batch) {
	for _, m := range b.msgs {
		if err := m.Ack(); err != nil {
			// Harmless: redelivery is skipped by the high-water mark.
			w.log.Debug("ack", "error", err)
		}
	}
}

// changed reports whether b changes the ledger or the index: entries,
// moved marks, dedup records, orphans, exceptions.
func (b *batch) changed() bool {
	return len(b.entries) > 0 || len(b.hwm) > 0 || len(b.dedup) > 0 || len(b.orphansAdd) > 0 || len(b.orphansDel) > 0 || len(b.exceptions) > 0
}

// prepare builds b's segment (nil when b sealed no entries) and state
// record. Nothing is written.
func (w *worker) prepare(b *batch) (*store.Prepared, *stateRec, error) {
	var pr *store.Prepared
	if len(b.entries) > 0 {
		var err error
		if pr, err = w.n.led.Prepare(w.p, b.entries, time.Now().UTC()); err != nil {
			return nil, nil, fmt.Errorf("seal partition %d: %w", w.p, err)
		}
		b.cnt.Segments++
		for i := range pr.Entries {
			e := &pr.Entries[i]
			if r := b.dedup[string(keyDedup(e.Provider, e.Tx.ID))]; r != nil {
				r.Index = e.Index
			}
		}
	}
	return pr, b.record(pr), nil
}

// advance applies a commit the stream accepted at sequence seq: store, then
// the worker's state. A crash anywhere in it is repaired at the next start
// by catch-up, which applies the same message from the stream through the
// same applyLedger.
func (w *worker) advance(seq uint64, pr *store.Prepared, rec *stateRec) error {
	if err := w.store(seq, pr, rec); err != nil {
		return err
	}
	return w.moved(seq, rec)
}

// store writes a commit the stream accepted at sequence seq: the segment
// file (if any), the index, the checkpoint.
func (w *worker) store(seq uint64, pr *store.Prepared, rec *stateRec) error {
	segs := w.n.led.Head(w.p).Segments
	var entries []store.Entry
	if pr != nil {
		written := time.Now()
		err := w.n.led.Commit(pr)
		w.n.cfg.observeSync("ledger", written)
		if err != nil {
			return fmt.Errorf("write partition %d segment %d: %w", w.p, pr.Header.Number, err)
		}
		entries, segs = pr.Entries, pr.Header.Number
	}
	if err := w.indexed(seq, segs, entries, rec, pr != nil); err != nil {
		return err
	}
	w.n.cfg.observeSettled(entries) // this process's own commits only, not catch-up
	return nil
}

// applied records a ledger message (its segment already in the files) in
// the index, signs the new checkpoint if the tree grew, and moves the
// worker's state to it.
func (w *worker) applied(seq, segs uint64, entries []store.Entry, rec *stateRec, sign bool) error {
	if err := w.indexed(seq, segs, entries, rec, sign); err != nil {
		return err
	}
	return w.moved(seq, rec)
}

// indexed records a ledger message in the index and signs the new
// checkpoint if the tree grew.
func (w *worker) indexed(seq, segs uint64, entries []store.Entry, rec *stateRec, sign bool) error {
	committed := time.Now()
	err := w.n.idx.applyLedger(w.p, seq, segs, entries, rec)
	w.n.cfg.observeSync("index", committed)
	if err != nil {
		// A segment file written above is not committed; Recover drops it
		// at restart and catch-up writes it again from the stream.
		return fmt.Errorf("commit partition %d index: %w", w.p, err)
	}
	if sign {
		if _, err := w.n.led.Sign(w.p); err != nil {
			return fmt.Errorf("sign partition %d: %w", w.p, err)
		}
	}
	return nil
}

// moved moves the worker's state (counters, ledger sequence, held orphan
// parents) to a ledger message the index has applied. Worker goroutine only.
func (w *worker) moved(seq uint64, rec *stateRec) error {
	w.cnt = rec.Counters
	snap := rec.Counters
	w.snap.Store(&snap)
	if seq > 0 {
		w.ledgerSeq = seq
	}
	if w.held != nil {
		if err := w.held.committed(w.n.idx.db, w.p, rec); err != nil {
			return fmt.Errorf("read partition %d orphans: %w", w.p, err)
		}
	}
	return nil
}

// publish appends a commit to TALLY_LEDGER, fenced on the partition's last
// subject sequence, retrying until it lands or ctx ends, and returns its
// stream sequence. The message id names the position it is appended at, so
// a retry whose first attempt landed is answered as a duplicate.
func (w *worker) publish(ctx context.Context, pr *store.Prepared, rec *stateRec) (uint64, error) {
	segs := w.n.led.Head(w.p).Segments
	var seg []byte
	if pr != nil {
		seg, segs = pr.Bytes, pr.Header.Number
	}
	m, err := encodeLedgerMsg(w.n.cfg.Subjects.Ledger(int(w.p)), w.p, segs, seg, rec)
	if err != nil {
		return 0, fmt.Errorf("encode partition %d ledger message: %w", w.p, err)
	}
	if w.n.cfg.Leases != nil {
		// Which node wrote the commit, for operators and the takeover tests;
		// informational (the fence, not this header, keeps the chain whole).
		m.Header.Set(HdrWriter, w.n.cfg.Leases.NodeID)
	}
	id := fmt.Sprintf("led.%d.%d", w.p, w.ledgerSeq)
	backoff := 100 * time.Millisecond
	for {
		if err := w.check(); err != nil {
			return 0, fmt.Errorf("publish partition %d after ledger sequence %d: %w", w.p, w.ledgerSeq, err)
		}
		actx, cancel := context.WithTimeout(ctx, publishAttempt)
		ack, err := w.n.js.PublishMsg(actx, m, jetstream.WithMsgID(id), jetstream.WithExpectLastSequencePerSubject(w.ledgerSeq))
		cancel()
		if err == nil {
			if testExitAfterPubAck() {
				w.log.Warn("TALLY_TEST_EXIT_AFTER_PUBACK: exiting between publish and local apply", "sequence", ack.Sequence)
				os.Exit(3)
			}
			return ack.Sequence, nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, fmt.Errorf("publish partition %d after ledger sequence %d: %w", w.p, w.ledgerSeq, ErrFenced)
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("publish partition %d segment %d: %w", w.p, segs, err)
		}
		w.log.Warn("publish to the ledger stream, retrying", "segments", segs, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// testExitAfterPubAck is the crash hook of the real-process tests: with
// TALLY_TEST_EXIT_AFTER_PUBACK=1 the process exits right after the first
// PubAck, before anything of the commit is written locally.
func testExitAfterPubAck() bool { return os.Getenv("TALLY_TEST_EXIT_AFTER_PUBACK") == "1" }

// catchUp is the one start path of a partition, after a clean stop, a
// crash, or on a node that never had it (takeover, empty data directory):
// local segment files the index does not cover are dropped, then every
// message of tally.ledger.<p> past the last one the index applied is read
// back, its segment checked as `tally verify` checks it (store.Append) and
// written, and the message applied to the index through applyLedger, the
// same function a live commit goes through. Only then does the worker
// consume TALLY_TX.
func (w *worker) catchUp(ctx context.Context) error {
	var committed, applied uint64
	err := w.n.idx.db.View(func(t *badger.Txn) error {
		var e error
		if committed, e = getU64(t, keySegments(w.p)); e != nil {
			return e
		}
		if applied, e = getU64(t, keyApplied(w.p)); e != nil {
			return e
		}
		_, e = getJSON(t, keyCounters(w.p), &w.cnt)
		return e
	})
	if err != nil {
		return fmt.Errorf("read partition %d state: %w", w.p, err)
	}
	snap := w.cnt
	w.snap.Store(&snap)
	if err := w.n.led.Recover(w.p, committed); err != nil {
		return fmt.Errorf("recover partition %d ledger: %w", w.p, err)
	}
	if runs, err := w.n.idx.derivePaid(w.n.led, w.p, applied == 0 && committed == 0); err != nil {
		return err
	} else if runs > 0 {
		w.log.Info("paid statements derived from the ledger's payout runs", "payout_runs", runs)
	}
	st, err := w.n.js.Stream(ctx, w.n.cfg.Subjects.LedgerStream())
	if err != nil {
		return fmt.Errorf("ledger stream: %w", err)
	}
	subj := w.n.cfg.Subjects.Ledger(int(w.p))
	var last uint64 // stream sequence of the partition's last message
	var streamSegs uint64
	lm, err := st.GetLastMsgForSubject(ctx, subj)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return fmt.Errorf("last ledger message of partition %d: %w", w.p, err)
	default:
		last = lm.Sequence
		if streamSegs, err = strconv.ParseUint(lm.Header.Get(wire.HdrSegment), 10, 64); err != nil {
			return fmt.Errorf("ledger stream partition %d: bad segment header: %w", w.p, err)
		}
	}
	w.ledgerSeq = applied
	if last < applied || streamSegs < committed {
		return fmt.Errorf("partition %d: index applied ledger message %d (%d segments), the stream ends at %d (%d segments): %w", w.p, applied, committed, last, streamSegs, ErrLocalAhead)
	}
	if last > applied {
		if err := w.readBack(ctx, st, subj, applied, committed, last); err != nil {
			return err
		}
	}
	if w.n.led.Head(w.p).Segments > 0 {
		if _, err := w.n.led.Sign(w.p); err != nil {
			return fmt.Errorf("sign partition %d: %w", w.p, err)
		}
	}
	return nil
}

// readBack applies partition messages after sequence applied up to last.
// An index of an earlier build (no l/ key) skips the segments it holds.
func (w *worker) readBack(ctx context.Context, st jetstream.Stream, subj string, applied, committed, last uint64) error {
	legacy := applied == 0 && committed > 0
	oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    applied + 1,
	})
	if err != nil {
		return fmt.Errorf("read ledger stream partition %d: %w", w.p, err)
	}
	from, n, idle := applied+1, 0, 0
	for w.ledgerSeq < last {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// FetchNoWait: a takeover reads a handful of messages, and a fetch
		// that waits for a full batch would add its whole wait to it.
		msgs, err := oc.FetchNoWait(256)
		if err != nil {
			return fmt.Errorf("read ledger stream partition %d: %w", w.p, err)
		}
		got := 0
		for m := range msgs.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("read ledger stream partition %d: %w", w.p, err)
			}
			seg, rec, segs, err := decodeLedgerMsg(m.Headers(), m.Data(), w.p)
			if err != nil {
				return fmt.Errorf("ledger stream sequence %d: %w", md.Sequence.Stream, err)
			}
			if legacy && segs <= committed {
				w.ledgerSeq = md.Sequence.Stream
				continue
			}
			if err := w.applyStream(md.Sequence.Stream, seg, rec, segs); err != nil {
				return err
			}
			n++
		}
		if got == 0 {
			time.Sleep(20 * time.Millisecond)
			if idle++; idle > 500 {
				return fmt.Errorf("read ledger stream partition %d: no message after sequence %d, the last is %d", w.p, w.ledgerSeq, last)
			}
		} else {
			idle = 0
		}
	}
	w.log.Info("caught up from the ledger stream", "messages", n, "from", from, "to", last, "segments", w.n.led.Head(w.p).Segments)
	return nil
}

// applyStream applies one message read back from TALLY_LEDGER.
func (w *worker) applyStream(seq uint64, seg []byte, rec *stateRec, segs uint64) error {
	var entries []store.Entry
	have := w.n.led.Head(w.p).Segments
	if seg != nil {
		hdr, es, err := w.n.led.Append(w.p, seg)
		if err != nil {
			return fmt.Errorf("ledger stream sequence %d: segment fails verification: %w", seq, err)
		}
		entries, have = es, hdr.Number
	}
	if segs != have {
		return fmt.Errorf("ledger stream sequence %d: says %d segments, partition %d has %d: %w", seq, segs, w.p, have, errBadLedgerMsg)
	}
	if rec == nil { // a bare segment of an earlier build
		c := w.cnt
		c.Entries += uint64(len(entries))
		c.Segments++
		rec = &stateRec{Counters: c}
	}
	return w.applied(seq, have, entries, rec, false)
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func setJSON(t *badger.Txn, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.Set(k, b)
}
