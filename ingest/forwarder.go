package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/wire"
)

const (
	backoffMin     = 50 * time.Millisecond
	backoffMax     = 2 * time.Second
	logEvery       = 30 * time.Second // repeated publish failures are logged at most this often
	headerRoom     = 4 << 10          // bytes of a message left for headers
	defaultMaxBody = 1 << 20          // when the server has not told us its max_payload
)

// forwarder pushes every provider's committed records to JetStream, one
// goroutine per provider sharing one window of ForwardWindow publishes.
type forwarder struct {
	n      *Node
	js     jetstream.JetStream
	log    hclog.Logger
	window chan struct{} // one token per un-acked publish, all providers together
	ctx    context.Context
	cancel context.CancelFunc
	finish chan struct{} // closed once no more commits can come: exit when caught up
	wg     sync.WaitGroup
}

// forwarderJetStream builds the forwarder's own JetStream context on js's
// connection, with a bounded async window and a publish timeout (without one,
// a lost PubAck leaves a future pending forever).
func forwarderJetStream(js jetstream.JetStream, cfg Config) (jetstream.JetStream, error) {
	o := js.Options()
	opts := []jetstream.JetStreamOpt{
		jetstream.WithPublishAsyncMaxPending(cfg.ForwardWindow),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout),
	}
	if o.DefaultTimeout > 0 {
		opts = append(opts, jetstream.WithDefaultTimeout(o.DefaultTimeout))
	}
	switch {
	case o.Domain != "":
		return jetstream.NewWithDomain(js.Conn(), o.Domain, opts...)
	case o.APIPrefix != "":
		return jetstream.NewWithAPIPrefix(js.Conn(), o.APIPrefix, opts...)
	default:
		return jetstream.New(js.Conn(), opts...)
	}
}

func newForwarder(n *Node, js jetstream.JetStream) *forwarder {
	ctx, cancel := context.WithCancel(context.Background())
	return &forwarder{n: n, js: js, log: n.log.Named("forwarder"), window: make(chan struct{}, n.cfg.ForwardWindow),
		ctx: ctx, cancel: cancel, finish: make(chan struct{})}
}

// spawn starts ps's forwarding goroutine. Called with n.mu held.
func (f *forwarder) spawn(ps *provState) {
	f.wg.Add(1)
	go f.run(ps)
}

// stop lets every provider catch up for at most grace, then cancels the rest.
func (f *forwarder) stop(grace time.Duration) {
	close(f.finish)
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		f.log.Warn("forwarder stopped before catching up; the rest is sent after restart", "grace", grace)
		f.cancel()
		<-done
	}
	f.cancel()
	f.js.CleanupPublisher()
}

// flight is one published, not yet acknowledged batch.
type flight struct {
	first, last uint64
	firstAt     int64 // accept time (unix ns) of record first
	nextAt      int64 // accept time of the record after last, if it was read (else 0)
	fut         jetstream.PubAckFuture
	done        bool
	err         error
}

// poll reports whether fl is resolved, without blocking.
func (fl *flight) poll() bool {
	if fl.done {
		return true
	}
	select {
	case <-fl.fut.Ok():
		fl.done = true
	case err := <-fl.fut.Err():
		fl.done, fl.err = true, err
	default:
	}
	return fl.done
}

// wait blocks until fl is resolved or ctx ends.
func (fl *flight) wait(ctx context.Context) bool {
	if fl.done {
		return true
	}
	select {
	case <-fl.fut.Ok():
		fl.done = true
	case err := <-fl.fut.Err():
		fl.done, fl.err = true, err
	case <-ctx.Done():
	}
	return fl.done
}

// run forwards one provider. Rules:
//   - read from the persisted cursor with Seek, never Rewind;
//   - publish batches in sequence order, at most ForwardWindow in flight;
//   - advance (and persist) the cursor only across contiguous PubAcks
//     (Duplicate=true counts as success);
//   - on any error or timeout: stop publishing, wait for everything in flight
//     (nats.go fails all pending futures on reconnect, even stored ones),
//     back off, then resend from cursor+1 with a single probe batch that
//     halves on each consecutive failure, reopening the window after a success.
//
// Resent batches may have other boundaries than the first attempt; settlement
// skips records at or below its high-water mark per (node, provider), so a
// resend is never applied twice.
func (f *forwarder) run(ps *provState) {
	defer f.wg.Done()
	log := f.log.With("provider", ps.name)
	persisted := ps.cursor.Load()
	defer func() {
		if c := ps.cursor.Load(); c != persisted {
			f.persist(log, ps.name, c)
		}
	}()
	var (
		inflight  []*flight
		next      = ps.cursor.Load() + 1
		batch     = f.n.cfg.ForwardBatch
		probe     bool // after a failure: one batch at a time until one succeeds
		failErr   error
		failures  int
		failSince time.Time
		lastLog   time.Time
		backoff   = backoffMin
	)
	for f.ctx.Err() == nil {
		// Fill the window.
		for failErr == nil && next <= ps.committed.Load() && (!probe || len(inflight) == 0) {
			if !f.acquire(len(inflight) == 0) {
				break
			}
			fl, err := f.publish(ps, next, batch)
			if err != nil {
				<-f.window
				failErr = err
				break
			}
			inflight = append(inflight, fl)
			next = fl.last + 1
		}
		if len(inflight) == 0 {
			if failErr != nil {
				failures++
				if failures == 1 {
					failSince = time.Now()
				}
				if failures == 1 || time.Since(lastLog) >= logEvery {
					log.Warn("publish failed; resending from cursor", "cursor", ps.cursor.Load(), "failures", failures, "error", failErr)
					lastLog = time.Now()
				}
				if !sleep(f.ctx, backoff) {
					return
				}
				backoff = min(2*backoff, backoffMax)
				batch = max(batch/2, 1)
				probe, failErr, next = true, nil, ps.cursor.Load()+1
				continue
			}
			if next > ps.committed.Load() {
				select {
				case <-ps.wake:
				case <-f.finish: // the committer is done: nothing more will come
					if next > ps.committed.Load() {
						return
					}
				case <-f.ctx.Done():
					return
				}
			}
			continue
		}
		// Wait for the oldest publish; then take every other one already resolved.
		if !inflight[0].wait(f.ctx) {
			return
		}
		advanced := false
		for len(inflight) > 0 && inflight[0].poll() {
			fl := inflight[0]
			inflight[0] = nil
			inflight = inflight[1:]
			<-f.window
			switch {
			case fl.err != nil && failErr == nil:
				failErr = fl.err
			case fl.err == nil && failErr == nil:
				f.advance(ps, fl, inflight)
				advanced = true
				if failures > 0 {
					log.Info("forwarding resumed", "cursor", fl.last, "failures", failures, "outage", time.Since(failSince).Round(time.Millisecond))
					failures = 0
				}
				probe, backoff, batch = false, backoffMin, f.n.cfg.ForwardBatch
			}
		}
		if advanced {
			c := ps.cursor.Load()
			if f.persist(log, ps.name, c) {
				persisted = c
			}
		}
	}
}

// acquire takes a window token; it blocks only when block is set (nothing of
// this provider is in flight, so waiting cannot hold up our own acks).
func (f *forwarder) acquire(block bool) bool {
	if !block {
		select {
		case f.window <- struct{}{}:
			return true
		default:
			return false
		}
	}
	select {
	case f.window <- struct{}{}:
		return true
	case <-f.ctx.Done():
		return false
	}
}

// advance moves ps's cursor to fl.last and updates the lag clock.
func (f *forwarder) advance(ps *provState, fl *flight, rest []*flight) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.cursor.Store(fl.last)
	switch {
	case fl.last >= ps.committed.Load():
		ps.oldest = 0
	case len(rest) > 0:
		ps.oldest = rest[0].firstAt
	case fl.nextAt != 0:
		ps.oldest = fl.nextAt
	default:
		// not read yet: the older figure stays until the next read sets it
	}
}

// persist writes the cursor. A lost cursor write only means a resend after a
// restart, so failures are logged, not fatal.
func (f *forwarder) persist(log hclog.Logger, p string, c uint64) bool {
	err := f.n.wal.db.Update(func(tx *badger.Txn) error { return tx.Set(cursorKey(p), u64(c)) })
	if err != nil {
		log.Error("persist cursor", "cursor", c, "error", err)
		return false
	}
	return true
}

// publish reads up to batch records of ps from first and publishes them as
// one message. Batches end at multiples of batch where possible, so a resend
// of a full batch carries the same Nats-Msg-Id as the first attempt.
func (f *forwarder) publish(ps *provState, first uint64, batch int) (*flight, error) {
	nc := f.js.Conn()
	switch {
	case nc.IsClosed():
		return nil, nats.ErrConnectionClosed
	case !nc.IsConnected():
		return nil, nats.ErrDisconnected // never fill the reconnect buffer: resend after reconnecting
	}
	committed := ps.committed.Load()
	end := min(committed, first-1-(first-1)%uint64(batch)+uint64(batch))
	maxBody := int(nc.MaxPayload()) - headerRoom
	if maxBody <= 0 {
		maxBody = defaultMaxBody - headerRoom
	}
	recs, firstAt, nextAt, err := f.read(ps.name, first, end, maxBody)
	if err != nil {
		return nil, err
	}
	last := recs[len(recs)-1].Seq
	ps.mu.Lock()
	if ps.cursor.Load()+1 == first {
		ps.oldest = firstAt
	}
	ps.mu.Unlock()
	body := wire.AppendBatch(make([]byte, 0, bodySize(recs)), recs)
	sum := sha256.Sum256(body)
	node := f.n.cfg.NodeID
	m := nats.NewMsg(f.n.cfg.Subjects.Tx(node, ps.name))
	m.Data = body
	m.Header.Set(wire.HdrMsgID, fmt.Sprintf("%s.%s.%d-%d", node, ps.name, first, last))
	m.Header.Set(wire.HdrNode, node)
	m.Header.Set(wire.HdrProvider, ps.name)
	m.Header.Set(wire.HdrFirstSeq, strconv.FormatUint(first, 10))
	m.Header.Set(wire.HdrLastSeq, strconv.FormatUint(last, 10))
	m.Header.Set(wire.HdrHash, hex.EncodeToString(sum[:]))
	fut, err := f.js.PublishMsgAsync(m,
		jetstream.WithExpectStream(f.n.cfg.Subjects.TxStream()), // a subject captured by another stream fails loudly
		jetstream.WithStallWait(f.n.cfg.PublishTimeout))
	if err != nil {
		return nil, fmt.Errorf("publish %d-%d: %w", first, last, err)
	}
	return &flight{first: first, last: last, firstAt: firstAt, nextAt: nextAt, fut: fut}, nil
}

func bodySize(recs []wire.Record) int {
	n := 16
	for _, r := range recs {
		n += 20 + len(r.Payload)
	}
	return n
}

// read returns the contiguous records first..end of provider p (fewer if the
// body would pass maxBody, at least one), with the accept time of the first
// and of the record after the last one read (0 if not read). Records are
// stored packed per group (keys.go): a Seek to first lands on the group
// holding it, and the next groups follow in key order.
func (f *forwarder) read(p string, first, end uint64, maxBody int) (recs []wire.Record, firstAt, nextAt int64, err error) {
	var arena []byte
	type span struct {
		seq      uint64
		off, len int
	}
	var spans []span
	dec := getGroupReader() // compressed groups decode into its reused buffer
	defer dec.release()
	err = f.n.wal.db.View(func(tx *badger.Txn) error {
		// Values are read in place by Item.Value: prefetching would copy each one first.
		it := tx.NewIterator(badger.IteratorOptions{Prefix: recordPrefix(p)})
		defer it.Close()
		want := first
		for it.Seek(groupKey(p, first)); it.Valid() && want <= end; it.Next() {
			stop := false
			err := it.Item().Value(func(v []byte) error {
				g, err := dec.split(it.Item().Key(), v)
				if err != nil {
					return err
				}
				if g.first > want || g.last < want {
					return fmt.Errorf("%w: provider %s record %d missing (next group holds %d-%d)", ErrCorrupt, p, want, g.first, g.last)
				}
				for seq := want; seq <= min(g.last, end); seq++ {
					payload := g.payloads[seq-g.first]
					if len(spans) > 0 && len(arena)+len(payload)+20 > maxBody {
						nextAt, stop = g.at, true
						return nil
					}
					if len(spans) == 0 {
						firstAt = g.at
					}
					spans = append(spans, span{seq, len(arena), len(payload)})
					arena = append(arena, payload...)
					want = seq + 1
				}
				if want > end && end < g.last {
					nextAt = g.at
				}
				return nil
			})
			if err != nil {
				return err
			}
			if stop {
				return nil
			}
		}
		if len(spans) == 0 {
			return fmt.Errorf("%w: provider %s record %d missing below its counter", ErrCorrupt, p, first)
		}
		if want <= end {
			return fmt.Errorf("%w: provider %s record %d missing below its counter", ErrCorrupt, p, want)
		}
		return nil
	})
	if err != nil {
		return nil, 0, 0, err
	}
	recs = make([]wire.Record, len(spans))
	for i, s := range spans {
		recs[i] = wire.Record{Seq: s.seq, Payload: arena[s.off : s.off+s.len]}
	}
	return recs, firstAt, nextAt, nil
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
