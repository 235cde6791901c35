package settle

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// Config is the settle role's runtime configuration.
type Config struct {
	Subjects          wire.Subjects
	Partitions        []int         // partitions this node writes
	SegmentMaxEntries int           // seal a segment at this many entries...
	SegmentMaxAge     time.Duration // ...or when its first input is this old
	FetchBatch        int           // JetStream messages per fetch
	OrphanTimeout     time.Duration // a reversal without parent becomes an exception after this
	AckWait           time.Duration // JetStream redelivers unacked inputs after this (default 60s)
	// StepDownOnFence: a fenced partition stops here for good (another node
	// owns it now). false (static ownership, the default): the worker
	// catches up from TALLY_LEDGER and goes on writing (worker.run).
	StepDownOnFence bool

	ObserveSync func(store string, took time.Duration) // metrics: durable writes of "ledger" and "index" (observe.go); nil = none
}

// Node runs one worker per configured partition over a shared index and ledger.
type Node struct {
	cfg  Config
	log  hclog.Logger
	idx  *Index
	led  *store.Ledger
	book *rules.Book
	nc   *nats.Conn
	js   jetstream.JetStream

	replay replayer

	mu      sync.Mutex
	workers []*worker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errOnce sync.Once
	err     error
	done    chan struct{}
	closed  bool
}

// New assembles a settle node. It does not own idx or led: the caller closes them
// after Close returns.
func New(cfg Config, idx *Index, led *store.Ledger, book *rules.Book, log hclog.Logger) *Node {
	if cfg.AckWait <= 0 {
		cfg.AckWait = 60 * time.Second
	}
	return &Node{cfg: cfg, log: log.Named("settle"), idx: idx, led: led, book: book, done: make(chan struct{})}
}

// Start creates the durable consumers, recovers every partition and starts the
// workers. A worker that fails stops itself; Err and Done report it.
func (n *Node) Start(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	n.nc, n.js = nc, js
	wctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	for _, p := range n.cfg.Partitions {
		w := &worker{n: n, p: uint32(p), log: n.log.With("partition", p)}
		// The partition's index and files first catch up with TALLY_LEDGER,
		// the source of truth; only then is TALLY_TX consumed.
		if err := w.catchUp(ctx); err != nil {
			cancel()
			return err
		}
		cons, err := n.consumer(ctx, js, p)
		if err != nil {
			cancel()
			return fmt.Errorf("consumer for partition %d: %w", p, err)
		}
		w.cons = cons
		n.workers = append(n.workers, w)
	}
	for _, w := range n.workers {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			err := w.run(wctx)
			switch {
			case err == nil:
			case errors.Is(err, ErrFenced):
				// Another writer appended to this partition: this node wrote
				// nothing of the refused commit and stops writing the
				// partition. The process and its other partitions go on.
				w.fenced.Store(true)
				w.log.Error("PARTITION FENCED: another writer appended to the ledger stream; this node stepped down and stopped writing the partition", "error", err)
				n.alert(alertFenced, map[string]any{"partition": w.p, "error": err.Error()})
				<-wctx.Done()
			default:
				w.log.Error("partition stopped", "error", err)
				n.fail(err)
			}
		}()
	}
	go func() { n.wg.Wait(); close(n.done) }()
	return nil
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
	})
}

// Err is the first worker failure, if any.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Done is closed when every worker has stopped.
func (n *Node) Done() <-chan struct{} { return n.done }

// Close stops fetching, commits what was processed, acks it, and waits.
// It is idempotent and returns the first worker error.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed || n.cancel == nil {
		n.closed = true
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
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
	for _, w := range n.workers {
		if c := w.snap.Load(); c != nil {
			s.Add(*c)
		}
		s.Lag += w.lag.Load()
	}
	return s
}

// Fenced lists the partitions this node stepped down from because another
// writer appended to them.
func (n *Node) Fenced() []int {
	var out []int
	for _, w := range n.workers {
		if w.fenced.Load() {
			out = append(out, int(w.p))
		}
	}
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
