package settle

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/settle/oplog"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// Config is the settle role's runtime configuration.
type Config struct {
	Subjects          wire.Subjects
	Partitions        []int         // partitions this node writes (static ownership; ignored with Leases)
	SegmentMaxEntries int           // seal a segment at this many entries...
	SegmentMaxAge     time.Duration // ...or when its first input is this old
	FetchBatch        int           // JetStream messages per fetch
	OrphanTimeout     time.Duration // a reversal without parent becomes an exception after this
	AckWait           time.Duration // JetStream redelivers unacked inputs after this (default 60s)
	// StepDownOnFence: a fenced partition stops here for good (another node
	// owns it now). false (static ownership, the default): the worker
	// catches up from TALLY_LEDGER and goes on writing (worker.run).
	StepDownOnFence bool
	// Pipeline overlaps a partition's commit (publish to TALLY_LEDGER,
	// segment file, index, signature, acks) with fetching and applying its
	// next batch (worker.turn; docs/settle.md "Commit pipeline"). false: one
	// batch at a time, as before settle.pipeline.
	Pipeline bool

	// Leases, when set, hands partitions between settle nodes with leases in
	// a JetStream KV bucket (lease.go) instead of the static Partitions list.
	Leases *LeaseConfig

	ObserveSync func(store string, took time.Duration) // metrics: durable writes of "ledger" and "index" (observe.go); nil = none
	// ObserveSettled: metrics, entries this process committed, per
	// (provider, currency), once per commit (observe.go); nil = none.
	ObserveSettled func(provider, currency string, n int)

	// Oplog tunes this node's operator-log forwarder and replay responder
	// (settle/oplog; docs/settle.md, "Operator log").
	Oplog oplog.Options
}

// Node runs one worker per partition it owns over a shared index and ledger.
// The partitions are Config.Partitions (static) or those whose lease this
// node holds (Config.Leases).
type Node struct {
	cfg  Config
	log  hclog.Logger
	idx  *Index
	led  *store.Ledger
	book *rules.Book
	nc   *nats.Conn
	js   jetstream.JetStream

	replay replayer
	leases *leaser        // nil with static ownership
	ops    *oplog.Service // operator log forwarder and replay responder

	mu      sync.Mutex
	parts   map[int]*part // running (or stopped but not yet reaped) partition workers
	order   []int         // partitions in the order they started, for stable listings
	stepped map[int]string
	wctx    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup     // partition workers
	lcancel context.CancelFunc // the lease loop, stopped after the workers so it renews through their final commits
	lwg     sync.WaitGroup
	errOnce sync.Once
	err     error
	done    chan struct{}
	doneO   sync.Once
	closed  bool
}

// part is one partition worker and what stops it.
type part struct {
	w       *worker
	cancel  context.CancelFunc
	done    chan struct{} // closed when the worker returned
	err     error         // its result, once done is closed
	started time.Time
}

// New assembles a settle node. It does not own idx or led: the caller closes them
// after Close returns.
func New(cfg Config, idx *Index, led *store.Ledger, book *rules.Book, log hclog.Logger) *Node {
	if cfg.AckWait <= 0 {
		cfg.AckWait = 60 * time.Second
	}
	return &Node{cfg: cfg, log: log.Named("settle"), idx: idx, led: led, book: book,
		parts: map[int]*part{}, stepped: map[int]string{}, done: make(chan struct{})}
}

// Start recovers and starts the partitions. With static ownership every
// configured partition catches up from TALLY_LEDGER and gets its consumer
// before Start returns (an error stops the start); with leases, the lease
// loop takes partitions in the background (lease.go). A worker that fails
// stops itself; Err and Done report it.
func (n *Node) Start(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	n.nc, n.js = nc, js
	n.wctx, n.cancel = context.WithCancel(context.Background())
	if n.cfg.Leases != nil {
		l, err := newLeaser(ctx, n, *n.cfg.Leases)
		if err != nil {
			n.cancel()
			return fmt.Errorf("partition leases: %w", err)
		}
		n.leases = l
		lctx, lcancel := context.WithCancel(context.Background())
		n.lcancel = lcancel
		n.lwg.Add(1)
		go func() { defer n.lwg.Done(); l.run(lctx) }()
		return n.startOplog()
	}
	var ws []*worker
	for _, p := range n.cfg.Partitions {
		w := n.newWorker(p, nil)
		// The partition's index and files first catch up with TALLY_LEDGER,
		// the source of truth; only then is TALLY_TX consumed.
		if err := w.prepareStart(ctx); err != nil {
			n.cancel()
			return err
		}
		ws = append(ws, w)
	}
	for _, w := range ws {
		n.launch(w, false)
	}
	return n.startOplog()
}

// startOplog runs the operator log's forwarder and replay responder on
// every settle node, whatever partitions it owns: (_tally, _tally) is one
// more edge whose records the owner of its partition settles.
func (n *Node) startOplog() error {
	ops, err := oplog.Start(n.nc, n.js, n.cfg.Subjects, n.log, n.cfg.Oplog)
	if err != nil {
		return fmt.Errorf("operator log: %w", err)
	}
	n.ops = ops
	return nil
}

func (n *Node) newWorker(p int, guard func() error) *worker {
	return &worker{n: n, p: uint32(p), log: n.log.With("partition", p), guard: guard}
}

// prepareStart is the one start path of a partition: catch up from
// TALLY_LEDGER, then (re)create its TALLY_TX consumer. While JetStream is
// not ready (a cluster still electing a stream leader, a hub restarting)
// it retries, so a start never needs a second try by hand.
func (w *worker) prepareStart(ctx context.Context) error {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := w.startOnce(ctx)
		if err == nil {
			w.ready.Store(true)
			return nil
		}
		if !transientJS(err) || ctx.Err() != nil {
			return err
		}
		if attempt == 1 || attempt%10 == 0 {
			w.log.Warn("JetStream not ready for this partition (the streams are created by the hub, or by a node with streams.create); retrying", "attempt", attempt, "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// startOnce is one attempt of prepareStart.
func (w *worker) startOnce(ctx context.Context) error {
	if err := w.catchUp(ctx); err != nil {
		return err
	}
	if err := w.check(); err != nil {
		return err
	}
	cons, err := w.n.consumer(ctx, w.n.js, int(w.p))
	if err != nil {
		return fmt.Errorf("consumer for partition %d: %w", w.p, err)
	}
	w.cons = cons
	return nil
}

// launch runs w in its own goroutine. With prepare the start path
// (prepareStart) runs there first, so a lease loop is never blocked by a
// catch-up.
func (n *Node) launch(w *worker, prepare bool) *part {
	ctx, cancel := context.WithCancel(n.wctx)
	pt := &part{w: w, cancel: cancel, done: make(chan struct{}), started: time.Now()}
	p := int(w.p)
	n.mu.Lock()
	if n.closed { // Close is waiting for the workers: start none
		n.mu.Unlock()
		cancel()
		close(pt.done)
		return pt
	}
	if _, ok := n.parts[p]; !ok {
		n.order = append(n.order, p)
	}
	n.parts[p] = pt
	delete(n.stepped, p)
	n.wg.Add(1) // under mu, so never after Close began waiting
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		defer close(pt.done)
		var err error
		if prepare {
			err = w.prepareStart(ctx)
			if err != nil && ctx.Err() != nil && !errors.Is(err, ErrLeaseLost) {
				err = nil // stopped while starting
			}
		}
		if err == nil && ctx.Err() == nil {
			err = w.run(ctx)
		}
		pt.err = err
		n.ended(w, err)
	}()
	return pt
}

// ended logs why a worker returned and fails the node on a real error.
func (n *Node) ended(w *worker, err error) {
	switch {
	case err == nil:
	case errors.Is(err, ErrFenced):
		// Another writer appended to this partition: this node wrote
		// nothing of the refused commit and stops writing the partition.
		// The process and its other partitions go on.
		w.fenced.Store(true)
		n.stepDown(int(w.p), "fenced")
		w.log.Error("PARTITION FENCED: another writer appended to the ledger stream; this node stepped down and stopped writing the partition", "error", err)
		n.alert(alertFenced, map[string]any{"partition": w.p, "error": err.Error()})
	case errors.Is(err, ErrLeaseLost):
		n.stepDown(int(w.p), "lease lost")
		w.log.Error("LEASE LOST: this node no longer holds the partition's lease; it stepped down and wrote nothing after the lease ran out", "error", err)
		n.alert(alertFenced, map[string]any{"partition": w.p, "error": err.Error()})
	default:
		w.log.Error("partition stopped", "error", err)
		n.fail(err)
	}
}

func (n *Node) stepDown(p int, why string) {
	n.mu.Lock()
	n.stepped[p] = why
	n.mu.Unlock()
}

// stopPartition stops p's worker (a final commit of what it processed runs
// if the worker may still write) and waits for it. It returns the worker's
// result; nil if p was not running.
func (n *Node) stopPartition(p int) error {
	n.mu.Lock()
	pt := n.parts[p]
	n.mu.Unlock()
	if pt == nil {
		return nil
	}
	pt.cancel()
	<-pt.done
	n.mu.Lock()
	if n.parts[p] == pt {
		delete(n.parts, p)
	}
	n.mu.Unlock()
	return pt.err
}

// running is p's worker if it has not returned.
func (n *Node) running(p int) *part {
	n.mu.Lock()
	defer n.mu.Unlock()
	pt := n.parts[p]
	if pt == nil {
		return nil
	}
	select {
	case <-pt.done:
		return nil
	default:
		return pt
	}
}

// workers lists the partition workers in start order.
func (n *Node) workers() []*worker {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*worker, 0, len(n.parts))
	for _, p := range n.order {
		if pt := n.parts[p]; pt != nil {
			out = append(out, pt.w)
		}
	}
	return out
}

// consumer creates partition p's durable consumer afresh at every start.
//
// A previous process that died (kill -9, power loss) leaves deliveries
// outstanding that JetStream would only redeliver after AckWait; because this
// partition applies each (edge node, provider) in order, everything behind
// them would stall for that long. So an existing consumer is never resumed or
// edited in place (JetStream refuses to change a consumer's deliver policy or
// start sequence: err_code=10012): it is deleted and created again, starting
// just after its ack floor. That start can never skip an unsettled message:
// inputs are acked only after their segment is durable, so everything at or
// below the ack floor is committed. Everything above it is delivered again;
// what was already applied is skipped by the high-water marks in the index.
//
// The start sequence is written to the index (c/<p>) before the delete, so a
// crash between delete and create loses nothing: the next start finds no
// consumer and creates it from the recorded sequence. With neither a consumer
// nor a record (first start) the consumer delivers the whole stream.
func (n *Node) consumer(ctx context.Context, js jetstream.JetStream, p int) (jetstream.Consumer, error) {
	stream, name := n.cfg.Subjects.TxStream(), n.cfg.Subjects.SettleConsumer(p)
	cc := jetstream.ConsumerConfig{
		Durable:       name,
		FilterSubject: n.cfg.Subjects.TxPartition(p),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       n.cfg.AckWait,
		MaxDeliver:    -1, // a batch is only ever given up by Term (undecodable)
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	created := st.CachedInfo().Created.UnixNano()
	startKey := keyConsumer(uint32(p))
	var start uint64
	if err := n.idx.db.View(func(t *badger.Txn) error {
		it, err := t.Get(startKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			// A start recorded for another incarnation of the stream (deleted
			// and created again) means nothing for this one.
			if len(v) == 16 && int64(binary.BigEndian.Uint64(v[8:])) == created {
				start = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	}); err != nil {
		return nil, fmt.Errorf("read consumer start: %w", err)
	}
	old, err := js.Consumer(ctx, stream, name)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if start > 0 {
			n.log.Info("consumer missing; creating it from the recorded start", "partition", p, "start", start)
		}
	case err != nil:
		return nil, err
	default:
		info, err := old.Info(ctx)
		if err != nil {
			return nil, err
		}
		// The ack floor only moves forward; a recorded start above it (from
		// an earlier start whose consumer has not acked since) is kept.
		start = max(start, info.AckFloor.Stream+1)
		rec := binary.BigEndian.AppendUint64(be64(start), uint64(created))
		if err := n.idx.db.Update(func(t *badger.Txn) error { return t.Set(startKey, rec) }); err != nil {
			return nil, fmt.Errorf("record consumer start: %w", err)
		}
		if info.NumAckPending > 0 {
			n.log.Info("redelivering the deliveries of a stopped process", "partition", p, "unacked", info.NumAckPending, "start", start)
		}
		if err := js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("delete consumer to recreate it: %w", err)
		}
	}
	if start > 1 {
		cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cc.OptStartSeq = start
	}
	return js.CreateConsumer(ctx, stream, cc)
}

// maxAckPending bounds a partition's unacked deliveries; the worker holds
// at most maxHeld of them in memory behind a gap (worker.go), well below.
const maxAckPending = 20000

func (n *Node) fail(err error) {
	n.errOnce.Do(func() {
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		n.doneO.Do(func() { close(n.done) })
	})
}

// Err is the first worker failure, if any.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Done is closed when a worker failed (Err says why) or the node closed.
// A partition that steps down (fenced, lease lost) does not close it.
func (n *Node) Done() <-chan struct{} { return n.done }

// Close stops fetching, commits what was processed, acks it, and waits;
// with leases it then gives the partitions' leases back so another node
// takes them at once. It is idempotent and returns the first worker error.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed || n.cancel == nil {
		n.closed = true
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.ops.Close()
	n.cancel()
	n.wg.Wait()
	if n.leases != nil {
		n.lcancel()
		n.lwg.Wait()
		n.leases.releaseAll()
	}
	n.doneO.Do(func() { close(n.done) })
	return n.Err()
}

// Stats is a live view for progress lines and metrics.
type Stats struct {
	Counters
	Lag uint64 // forwarded batches not yet settled (JetStream pending + unacked)
}

// Stats sums the workers' committed counters and lag.
func (n *Node) Stats() Stats {
	var s Stats
	for _, w := range n.workers() {
		if c := w.snap.Load(); c != nil {
			s.Add(*c)
		}
		s.Lag += w.lag.Load()
	}
	return s
}

// Fenced lists the partitions this node stepped down from because another
// writer appended to them or its lease on them ran out.
func (n *Node) Fenced() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []int
	for p := range n.stepped {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Balances returns live balances from the index.
func (n *Node) Balances() ([]Balance, error) { return n.idx.Balances() }

// alert publishes on <prefix>.alert.<kind>; alerts are best effort, core NATS.
func (n *Node) alert(kind string, body any) {
	if n.nc == nil {
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		return
	}
	if err := n.nc.Publish(n.cfg.Subjects.Alert(kind), b); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		n.log.Debug("alert", "kind", kind, "error", err)
	}
}

// transientJS reports an error that a JetStream that is starting, electing
// a leader or reconnecting gives, and that a retry may clear.
func transientJS(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		// A hub that is up but has not created the streams yet (it listens
		// before it creates them), or a settle node started before the one
		// with streams.create.
		errors.Is(err, jetstream.ErrStreamNotFound):
		return true
	case errors.As(err, &apiErr):
		// 503 JetStream not enabled / temporarily unavailable, cluster
		// not available, stream offline or leaderless.
		return apiErr.Code == 503 || apiErr.ErrorCode == 10008 || apiErr.ErrorCode == 10118
	}
	return false
}
