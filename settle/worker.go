package settle

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// settleLimits decode forwarded records. They are wider than any edge's limits:
// a record the edge accepted must never be refused here for size.
var settleLimits = txn.Limits{PayloadBytes: 1 << 20, IDLen: 1024, FieldLen: 1024, MetaKeys: 1024, MetaBytes: 1 << 20, AmountMax: decimal.New(1, 15)}

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
	lastScan  time.Time
	held      orphanSet           // parents with orphans in the index (worker goroutine only)
	gaps      map[string]*gapHold // batches held behind a gap, by high-water key (gap.go)
	nheld     int                 // messages in gaps
	// recsPerMsg estimates records per forwarded message, to size fetches;
	// 0 until the first message (firstRecsPerMsg is assumed).
	recsPerMsg int
}

func (w *worker) run(ctx context.Context) error {
	held, err := loadOrphanSet(w.n.idx.db, w.p)
	if err != nil {
		return fmt.Errorf("read partition %d orphans: %w", w.p, err)
	}
	w.held = held
	for {
		if ctx.Err() != nil {
			return nil
		}
		if err := w.turn(ctx); err != nil {
			return err
		}
	}
}

// turn fills one batch and commits it.
func (w *worker) turn(ctx context.Context) error {
	b := newBatchOn(w.n.idx.db, w.held, w.cnt)
	defer b.close()
	if err := w.fill(ctx, b); err != nil {
		return err
	}
	if b.empty() {
		return nil
	}
	// The final commit on shutdown uses its own deadline: the inputs are
	// already processed and committing them is cheaper than redelivery.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return w.commit(cctx, b)
}

// fill fetches and processes messages until the segment is full or old enough.
func (w *worker) fill(ctx context.Context, b *batch) error {
	cfg := w.n.cfg
	for ctx.Err() == nil {
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
		if len(b.entries) >= cfg.SegmentMaxEntries {
			return nil
		}
		wait := cfg.SegmentMaxAge - time.Since(b.started)
		if b.empty() {
			wait = cfg.SegmentMaxAge
			b.started = time.Now()
		} else if wait <= 0 {
			return nil
		}
		msgs, err := w.cons.Fetch(w.fetchSize(len(b.entries)), jetstream.FetchMaxWait(max(wait, 5*time.Millisecond)))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("fetch", "error", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for m := range msgs.Messages() {
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

func (w *worker) updateLag() {
	if ci := w.cons.CachedInfo(); ci != nil {
		w.lag.Store(ci.NumPending + uint64(ci.NumAckPending))
	}
}

// process handles one forwarded batch message.
func (w *worker) process(b *batch, m jetstream.Msg) error {
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
	hkey := pkey("h/", w.p, node, provider)
	hwm, err := b.getHWM(w.n.idx.db, hkey)
	if err != nil {
		return fmt.Errorf("read high-water mark: %w", err)
	}
	if recs[0].Seq > hwm+1 {
		// A gap: an earlier batch of this (node, provider) is missing. Never
		// apply out of order: hold this one until the gap closes (gap.go).
		return w.hold(b, string(hkey), node, provider, m, recs[0].Seq, hwm)
	}
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
	b.hwm[string(hkey)] = hwm
	b.msgs = append(b.msgs, m)
	return nil
}

// apply settles one new record with the pure engine (engine.go) over this
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

// commit seals, persists, signs, publishes and acks, in that order.
func (w *worker) commit(ctx context.Context, b *batch) error {
	hdr, seg, err := w.persist(b)
	if err != nil {
		return err
	}
	if len(b.entries) > 0 {
		if _, err := w.n.led.Sign(w.p); err != nil {
			return fmt.Errorf("sign partition %d: %w", w.p, err)
		}
		if err := w.publish(ctx, hdr.Number, seg); err != nil {
			return err
		}
	}
	for _, a := range b.alerts {
		w.n.alert(a.kind, a.body)
	}
	for _, m := range b.msgs {
		if err := m.Ack(); err != nil {
			// Harmless: redelivery is skipped by the high-water mark.
			w.log.Debug("ack", "error", err)
		}
	}
	return nil
}

// persist seals b's entries as the next segment (if any) and commits the
// index in one Badger transaction. After it returns nil the batch is durable
// and w's counters and orphan set include it.
func (w *worker) persist(b *batch) (store.SegmentHeader, []byte, error) {
	var seg []byte
	var hdr store.SegmentHeader
	var err error
	if len(b.entries) > 0 {
		sealed := time.Now()
		hdr, seg, err = w.n.led.Seal(w.p, b.entries, sealed.UTC())
		w.n.cfg.observeSync("ledger", sealed)
		if err != nil {
			return hdr, nil, fmt.Errorf("seal partition %d: %w", w.p, err)
		}
		b.cnt.Segments++
		for i, k := range b.entryKeys {
			b.dedup[k].Index = b.entries[i].Index
		}
	}
	committed := time.Now()
	err = w.n.idx.db.Update(func(t *badger.Txn) error {
		if len(b.entries) > 0 {
			if err := t.Set(pkey("m/", w.p), be64(hdr.Number)); err != nil {
				return err
			}
		}
		if err := b.write(t); err != nil {
			return err
		}
		for i, e := range b.exceptions {
			k := pkey("x/", w.p)
			k = binary.BigEndian.AppendUint64(k, uint64(e.At.UnixNano()))
			k = binary.BigEndian.AppendUint64(k, uint64(i))
			if err := setJSON(t, k, e); err != nil {
				return err
			}
		}
		return setJSON(t, pkey("s/", w.p), b.cnt)
	})
	w.n.cfg.observeSync("index", committed)
	if err != nil {
		// The sealed segment file is not committed; Recover drops it at restart.
		return hdr, nil, fmt.Errorf("commit partition %d index: %w", w.p, err)
	}
	w.cnt = b.cnt
	snap := b.cnt
	w.snap.Store(&snap)
	if w.held != nil {
		if err := w.held.committed(w.n.idx.db, b); err != nil {
			return hdr, nil, fmt.Errorf("read partition %d orphans: %w", w.p, err)
		}
	}
	return hdr, seg, nil
}

// publish appends segment number n to TALLY_LEDGER, fenced on the partition's
// last subject sequence, retrying until it lands or ctx ends.
func (w *worker) publish(ctx context.Context, n uint64, seg []byte) error {
	subj := w.n.cfg.Subjects.Ledger(int(w.p))
	backoff := 100 * time.Millisecond
	for {
		m := nats.NewMsg(subj)
		m.Data = seg
		m.Header.Set(wire.HdrPartition, strconv.FormatUint(uint64(w.p), 10))
		m.Header.Set(wire.HdrSegment, strconv.FormatUint(n, 10))
		ack, err := w.n.js.PublishMsg(ctx, m,
			jetstream.WithMsgID(fmt.Sprintf("seg.%d.%d", w.p, n)),
			jetstream.WithExpectLastSequencePerSubject(w.ledgerSeq))
		if err == nil {
			w.ledgerSeq = ack.Sequence
			return nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return fmt.Errorf("publish partition %d segment %d: %w", w.p, n, ErrFenced)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publish partition %d segment %d: %w", w.p, n, err)
		}
		w.log.Warn("publish segment, retrying", "segment", n, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// recover brings the ledger files and TALLY_LEDGER in line with the index.
func (w *worker) recover(ctx context.Context) error {
	var committed uint64
	err := w.n.idx.db.View(func(t *badger.Txn) error {
		var e error
		if committed, e = getU64(t, pkey("m/", w.p)); e != nil {
			return e
		}
		_, e = getJSON(t, pkey("s/", w.p), &w.cnt)
		return e
	})
	snap := w.cnt
	w.snap.Store(&snap)
	if err != nil {
		return fmt.Errorf("read partition %d state: %w", w.p, err)
	}
	if err := w.n.led.Recover(w.p, committed); err != nil {
		return fmt.Errorf("recover partition %d ledger: %w", w.p, err)
	}
	if committed > 0 {
		if _, err := w.n.led.Sign(w.p); err != nil {
			return fmt.Errorf("sign partition %d: %w", w.p, err)
		}
	}
	st, err := w.n.js.Stream(ctx, w.n.cfg.Subjects.LedgerStream())
	if err != nil {
		return fmt.Errorf("ledger stream: %w", err)
	}
	var have uint64
	last, err := st.GetLastMsgForSubject(ctx, w.n.cfg.Subjects.Ledger(int(w.p)))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return fmt.Errorf("last ledger segment of partition %d: %w", w.p, err)
	default:
		w.ledgerSeq = last.Sequence
		if have, err = strconv.ParseUint(last.Header.Get(wire.HdrSegment), 10, 64); err != nil {
			return fmt.Errorf("ledger stream partition %d: bad segment header: %w", w.p, err)
		}
	}
	if have > committed {
		return fmt.Errorf("partition %d: stream has %d segments, index %d: %w", w.p, have, committed, ErrLedgerAhead)
	}
	for n := have + 1; n <= committed; n++ {
		seg, err := w.n.led.SegmentBytes(w.p, n)
		if err != nil {
			return fmt.Errorf("read partition %d segment %d: %w", w.p, n, err)
		}
		if err := w.publish(ctx, n, seg); err != nil {
			return err
		}
	}
	if committed > have {
		w.log.Info("republished segments", "from", have+1, "to", committed)
	}
	return nil
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func setJSON(t *badger.Txn, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.Set(k, b)
}
