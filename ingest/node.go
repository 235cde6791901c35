package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/ingest/adapter"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// QueueGroup is the queue group of the provider subscriptions: ingest nodes on
// the same NATS account share provider requests.
const QueueGroup = "tally-ingest"

// HeaderContentType is the NATS header (and HTTP header) naming a request's
// media type, e.g. application/x-ndjson; absent means JSON (or CSV for the
// CSV dialect).
const HeaderContentType = "Content-Type"

const (
	drainTimeout   = 5 * time.Second // Close: longest wait for subscriptions to drain
	requestQueue   = 1024            // requests waiting for the committer (backpressure beyond)
	maxSubscribers = 4               // parallel decoders (one subscription each) per provider subject
	deadLetterClip = 4 << 10         // bytes of an oversized NATS request kept as its dead letter
)

// Node is an ingest node: provider endpoint, WAL and forwarder.
type Node struct {
	cfg Config
	log hclog.Logger
	wal *wal

	mu      sync.Mutex // guards provs, started, closed
	provs   map[string]*provState
	started bool
	closed  bool
	fwd     *forwarder

	// Handlers hold acceptMu.RLock while enqueueing; Close takes the write lock
	// to set closing and close reqs, so no send can race the close.
	acceptMu      sync.RWMutex
	closing       bool
	reqs          chan *request
	subs          []*nats.Subscription
	committerDone chan struct{}

	queued     atomic.Int64 // records handed to the committer and not yet answered (QueueMax)
	accepted   atomic.Uint64
	duplicates atomic.Uint64
	rejMu      sync.Mutex
	rejected   map[string]uint64

	// Retention and replay (retention.go, replay.go).
	replayMu     sync.Mutex // held by a replay and by each retention batch
	replayClosed bool
	replaySub    *nats.Subscription
	replayIDSubs []*nats.Subscription // replayids.go
	gcStop       chan struct{}
	gcDone       chan struct{}
	gcWake       chan struct{} // cap 1: the WAL passed the retention high-water mark (finish)
	gcDeleted    atomic.Uint64
	gcEarly      atomic.Uint64
	// The early-deletion warning, rate-limited (retention.go): records not
	// yet logged, and when it was last logged (unix ns).
	gcEarlyUnlogged atomic.Int64
	gcEarlyLogged   atomic.Int64
	replays         atomic.Uint64
	replayed        atomic.Uint64

	adapters map[string]adapter.Adapter // by dialect name, resolved at New
	tokens   map[tokenKey]string        // HTTP bearer token hash → provider
	http     *http.Server
	httpAddr net.Addr

	closeOnce sync.Once
	closeErr  error

	// Provider claims and going online (claims.go, Start).
	claimed    sync.Map      // provider → true: HTTP takes it (claim confirmed)
	onlineStop chan struct{} // closed by Close: stop waiting for the hub
	onlineDone chan struct{} // closed when waitOnline returned (or never ran)
	failed     chan struct{} // closed by fail
	failOnce   sync.Once
	failErr    error
}

// provState is what the committer and a provider's forwarder share.
type provState struct {
	name      string
	committed atomic.Uint64 // last committed edge seq
	cursor    atomic.Uint64 // last seq acknowledged by JetStream, contiguously from 1
	wake      chan struct{} // cap 1: new commits

	mu     sync.Mutex
	oldest int64 // accept time (unix ns) of the oldest unforwarded record; 0 = none

	floor atomic.Uint64 // first seq still held: records below were deleted by retention (GC writes it)
}

// Stats is a snapshot of a node's counters.
type Stats struct {
	Accepted   uint64            // transactions answered accepted by this process
	Duplicates uint64            // transactions answered duplicate by this process
	Rejected   map[string]uint64 // transactions answered rejected by this process, by code
	// Committed and Forwarded count records over the WAL's whole life: the sum
	// of every provider's last edge seq and of its forwarder cursor.
	// Committed-Forwarded is the backlog still to be acknowledged by JetStream.
	Committed uint64
	Forwarded uint64
	// BufferedBytes is the logical size of the WAL (records, dedup keys, dead
	// letters), the figure BudgetBytes is checked against.
	BufferedBytes int64
	// OldestUnforwarded is the age of the oldest record not yet acknowledged by
	// JetStream (0 when caught up).
	OldestUnforwarded time.Duration
	// ForwardLag is Committed-Forwarded: records accepted, not yet in TALLY_TX.
	ForwardLag uint64
	// BudgetBytes is the configured byte budget BufferedBytes is checked against.
	BudgetBytes int64

	// Retention and replay (this process).
	RetainedFrom map[string]uint64 // provider → first edge seq still held (records below were deleted)
	GCDeleted    uint64            // forwarded records deleted by retention
	GCEarly      uint64            // of those, deleted before their retention time (above the high-water mark)
	Replays      uint64            // replay requests served
	Replayed     uint64            // records published again by replay
}

// New opens (or creates) the WAL in cfg.WALDir and restores every provider's
// sequence counter and forwarder cursor. Nothing is accepted until Start.
func New(cfg Config, log hclog.Logger) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("ingest config: %w", err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	log = log.Named("ingest")
	if err := os.MkdirAll(cfg.WALDir, 0o755); err != nil {
		return nil, fmt.Errorf("wal dir: %w", err)
	}
	db, err := openDB(cfg.WALDir, log.Named("badger"), cfg.EncryptionKey, cfg.KeyRotation, cfg.WALMemory)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: log, provs: map[string]*provState{}, rejected: map[string]uint64{},
		reqs: make(chan *request, requestQueue), committerDone: make(chan struct{}),
		adapters: map[string]adapter.Adapter{}, failed: make(chan struct{}), gcWake: make(chan struct{}, 1),
	}
	for _, name := range adapter.Names() {
		n.adapters[name], _ = adapter.Lookup(name)
	}
	n.wal = &wal{db: db, log: log.Named("wal"), cfg: cfg,
		txnBytesMax: db.MaxBatchSize() / 2, txnEntriesMax: db.MaxBatchCount() / 2, onCommit: n.committed}
	cursors, err := n.wal.load()
	if err != nil {
		db.Close()
		return nil, err
	}
	for p, last := range n.wal.last {
		ps := n.provider(p)
		ps.committed.Store(last)
		ps.cursor.Store(cursors[p])
		if cursors[p] < last {
			at, err := n.acceptedAt(p, cursors[p]+1)
			if err != nil {
				db.Close()
				return nil, err
			}
			ps.oldest = at
		}
	}
	if err := n.loadFloors(); err != nil {
		db.Close()
		return nil, err
	}
	if err := n.loadClaims(); err != nil {
		db.Close()
		return nil, err
	}
	log.Info("wal open", "dir", cfg.WALDir, "providers", len(n.provs), "bytes", n.wal.used())
	return n, nil
}

// acceptedAt reads the accept time of one record.
func (n *Node) acceptedAt(p string, seq uint64) (int64, error) { return n.wal.acceptedAt(p, seq) }

// provider returns p's shared state, creating it (and its forwarder, once
// started) on first use.
func (n *Node) provider(p string) *provState {
	n.mu.Lock()
	defer n.mu.Unlock()
	ps, ok := n.provs[p]
	if !ok {
		ps = &provState{name: p, wake: make(chan struct{}, 1)}
		n.provs[p] = ps
		if n.fwd != nil {
			n.fwd.spawn(ps)
		}
	}
	return ps
}

// committed runs on the committer after a successful commit.
func (n *Node) committed(p string, last uint64, at time.Time) {
	ps := n.provider(p)
	ps.mu.Lock()
	if ps.oldest == 0 {
		ps.oldest = at.UnixNano()
	}
	ps.committed.Store(last)
	ps.mu.Unlock()
	select {
	case ps.wake <- struct{}{}:
	default:
	}
}

// Start starts the node on nc (provider requests) and js (forwarding). The
// WAL, the committer, the forwarder, retention and the HTTP endpoint start
// at once and need no hub. What needs the hub runs as soon as nc is
// connected: claiming this node's providers (claims.go), then subscribing
// (queue group QueueGroup) to <prefix>.in.<provider> for each of them (or
// <prefix>.in.* without a provider list) and the replay service. If nc is
// connected now, that happens here and a refused claim is returned; if not
// (an edge started during a hub outage, nats.RetryOnFailedConnect), it
// happens when the hub returns and a refused claim stops the node (Done,
// Err). Until then HTTP takes the providers whose claim the hub confirmed
// before, into the WAL, and the forwarder sends when the hub is back.
//
// The forwarder publishes through its own JetStream context on js.Conn()
// (same domain or API prefix as js) with WithPublishAsyncMaxPending
// (ForwardWindow) and WithPublishAsyncTimeout(PublishTimeout). nc and js may
// be connections to different servers (a provider-facing leaf and the hub).
// ctx bounds start-up only: stop with Close.
func (n *Node) Start(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	if nc == nil || js == nil {
		return errors.New("start ingest: nil connection")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start ingest: %w", err)
	}
	fjs, err := forwarderJetStream(js, n.cfg)
	if err != nil {
		return fmt.Errorf("start ingest: forwarder jetstream: %w", err)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	if n.started {
		n.mu.Unlock()
		return errors.New("start ingest: already started")
	}
	n.started = true
	n.onlineStop, n.onlineDone = make(chan struct{}), make(chan struct{})
	n.fwd = newForwarder(n, fjs)
	for _, ps := range n.provs {
		n.fwd.spawn(ps)
	}
	n.mu.Unlock()

	go n.runCommitter()
	n.gcStop, n.gcDone = make(chan struct{}), make(chan struct{})
	go n.runGC(n.gcStop, n.gcDone)
	online := nc.IsConnected()
	if online {
		err := n.goOnline(ctx, nc, js)
		var ce *ClaimError
		switch {
		case errors.As(err, &ce):
			close(n.onlineDone)
			return fmt.Errorf("start ingest: %w", err)
		case err != nil:
			n.log.Warn("hub reachable but claiming or subscribing failed; retrying in the background", "error", err)
			online = false
		}
	}
	if online {
		close(n.onlineDone)
	} else {
		n.log.Warn("hub unreachable: taking HTTP requests of confirmed providers into the WAL; claiming, subscribing and forwarding when it returns",
			"confirmed", n.confirmed())
		go n.waitOnline(nc, js)
	}
	if n.cfg.HTTPListen != "" {
		if err := n.startHTTP(); err != nil {
			return fmt.Errorf("start ingest: %w", err)
		}
	}
	return nil
}

// confirmed lists the providers HTTP takes now.
func (n *Node) confirmed() []string {
	var out []string
	n.claimed.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	return out
}

// goOnline claims the providers, subscribes to their subjects and starts the
// replay service. A refused claim is a *ClaimError.
func (n *Node) goOnline(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	n.checkMaxPayload(nc)
	if err := n.claimProviders(ctx, js); err != nil {
		return err
	}
	subjects := []string{n.cfg.Subjects.InAll()}
	if len(n.cfg.Providers) > 0 {
		subjects = subjects[:0]
		for p := range n.cfg.Providers {
			subjects = append(subjects, n.cfg.Subjects.In(p))
		}
		sort.Strings(subjects)
	}
	if err := n.subscribe(nc, subjects); err != nil {
		return err
	}
	if err := nc.FlushTimeout(drainTimeout); err != nil { // the subscriptions are resent on every reconnect anyway
		n.log.Warn("flush subscriptions", "error", err)
	}
	n.log.Info("accepting", "subjects", subjects, "node", n.cfg.NodeID, "subscribers", len(n.subs))
	return nil
}

// subscribe subscribes the provider subjects and the replay service, unless
// the node is closing (Close drains what is in n.subs).
func (n *Node) subscribe(nc *nats.Conn, subjects []string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if len(n.subs) > 0 { // an earlier attempt got this far
		return nil
	}
	for _, subj := range subjects {
		for range min(runtime.GOMAXPROCS(0), maxSubscribers) {
			sub, err := nc.QueueSubscribe(subj, QueueGroup, n.handle)
			if err != nil {
				return fmt.Errorf("subscribe %s: %w", subj, err)
			}
			n.subs = append(n.subs, sub)
		}
	}
	if err := n.startReplay(n.fwd.js.Conn()); err != nil {
		return fmt.Errorf("replay service: %w", err)
	}
	if err := n.startReplayIDs(n.fwd.js.Conn()); err != nil {
		return fmt.Errorf("replay-ids service: %w", err)
	}
	return nil
}

// waitOnline runs goOnline once nc is connected, retrying what fails for
// want of the hub; a refused claim stops the node.
func (n *Node) waitOnline(nc *nats.Conn, js jetstream.JetStream) {
	defer close(n.onlineDone)
	backoff := backoffMin
	for {
		if nc.IsConnected() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := n.goOnline(ctx, nc, js)
			cancel()
			var ce *ClaimError
			switch {
			case err == nil:
				n.log.Info("hub reachable: providers claimed and subscribed")
				return
			case errors.Is(err, ErrClosed):
				return
			case errors.As(err, &ce):
				n.fail(err)
				return
			default:
				n.log.Warn("hub reachable but claiming or subscribing failed; retrying", "error", err, "in", backoff)
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-n.onlineStop:
			t.Stop()
			return
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// checkMaxPayload warns when the server's max_payload does not fit the
// configured request limit (docs/config.md, "Limits").
func (n *Node) checkMaxPayload(nc *nats.Conn) {
	mp := nc.MaxPayload()
	if mp <= 0 {
		return
	}
	if want := n.cfg.RequestBytes + wire.HeaderRoom; mp < want {
		n.log.Warn("the NATS server's max_payload is below ingest.request_bytes + 4KiB: NATS requests above it are refused by the client library, before tally can answer; set max_payload on the server (a tally hub derives it from its own ingest.request_bytes)",
			"max_payload", mp, "want", want)
	}
	if rec := wire.MaxRecordBytes(n.cfg.Limits.PayloadBytes); mp-wire.HeaderRoom < rec {
		n.log.Error("the NATS server's max_payload cannot carry the largest forwarded record: such a record would never be forwarded; raise max_payload or lower ingest.payload_bytes",
			"max_payload", mp, "record_max", rec)
	}
}

// fail stops the node with err (Done, Err); the first failure wins.
func (n *Node) fail(err error) {
	n.failOnce.Do(func() {
		n.failErr = err
		n.log.Error("ingest stopped", "error", err)
		close(n.failed)
	})
}

// Done is closed when the node stopped on its own (see Err).
func (n *Node) Done() <-chan struct{} { return n.failed }

// Err is why the node stopped on its own, or nil.
func (n *Node) Err() error {
	select {
	case <-n.failed:
		return n.failErr
	default:
		return nil
	}
}

// handle decodes one provider request and hands it to the committer. It never
// answers accepted itself: answers are sent by the committer after commit.
func (n *Node) handle(m *nats.Msg) {
	start := time.Now()
	var r *request
	if int64(len(m.Data)) > n.cfg.RequestBytes { // a hub with a larger max_payload than this edge's limit
		p, _ := n.cfg.Subjects.ProviderFromIn(m.Subject)
		r = rejectWhole(p, m.Data[:min(len(m.Data), deadLetterClip)], &txn.Error{Code: txn.CodeTooLarge,
			Reason: fmt.Sprintf("request of %d bytes is above %d (ingest.request_bytes); split it", len(m.Data), n.cfg.RequestBytes)})
	} else if why := n.overload(m.Sub); why != "" {
		r = n.shed(m.Subject, m.Data, m.Header.Get(HeaderContentType), why)
	} else {
		r = n.prepare(m.Subject, m.Data, m.Header.Get(HeaderContentType))
	}
	r.start = start
	if m.Reply != "" {
		r.respond = func(b []byte) {
			if err := m.Respond(b); err != nil {
				n.log.Debug("reply not sent", "provider", r.provider, "error", err)
			}
		}
	}
	n.submit(r)
}

// overload says why a request should be shed before it is decoded ("" =
// take it; sub is nil for HTTP, which has no queue before decoding): the
// committer's queue is full (QueueMax records: submit would
// answer buffer_full anyway, after spending the decode), or more than
// PendingBytes of requests wait behind this one in its subscription (the
// edge cannot decode as fast as requests arrive: each of them would
// otherwise wait out the whole backlog; decoding work is proportional to
// bytes, so many small requests count as little as one large one). Shedding costs a split, not a decode, so an
// overloaded edge drains its backlog in milliseconds.
func (n *Node) overload(sub *nats.Subscription) string {
	if q := n.queued.Load(); q >= int64(n.cfg.QueueMax) {
		return fmt.Sprintf("%d records waiting for the commit (ingest queue_max %d)", q, n.cfg.QueueMax)
	}
	if sub == nil {
		return ""
	}
	if msgs, bytes, err := sub.Pending(); err == nil && int64(bytes) > n.cfg.PendingBytes {
		return fmt.Sprintf("%d requests of %d bytes waiting to be decoded (ingest pending_bytes %d)", msgs, bytes, n.cfg.PendingBytes)
	}
	return ""
}

// shed answers every transaction of a NATS request buffer_full (retry
// after retryAfterOverload) without decoding it: the request is split (so a
// batch is answered with an array in input order), ids are echoed where the
// canonical dialect lets them be read, and nothing is written. A request
// that does not split, or from a provider not served, gets its usual
// whole-request rejection.
func (n *Node) shed(subject string, body []byte, contentType, why string) *request {
	p, ok := n.cfg.Subjects.ProviderFromIn(subject)
	if !ok || !wire.ValidToken(p) {
		return n.prepare(subject, body, contentType)
	}
	return n.shedFor(p, body, contentType, why)
}

// shedFor is shed for a request of provider p (NATS subject token, or the
// owner of an HTTP token).
func (n *Node) shedFor(p string, body []byte, contentType, why string) *request {
	ad, ok := n.dialect(p)
	if !ok {
		return n.prepareFor(p, body, contentType)
	}
	raws, batch, rej := ad.Split(body, contentType, n.cfg.BatchMax)
	if rej != nil {
		return rejectWhole(p, body, rej)
	}
	r := &request{provider: p, batch: batch, items: make([]item, len(raws)), shed: true}
	reason := fmt.Sprintf("%v: edge overloaded, %s; retry later", ErrBufferFull, why)
	for i, raw := range raws {
		id := ""
		if ad.Name() == adapter.Default {
			if v, ok := txn.PeekString(raw, "id"); ok {
				id = (&txn.Error{}).WithID(v, n.cfg.Limits).ID // only a valid id is echoed
			}
		}
		r.items[i] = item{raw: raw, id: id, ans: wire.Answer{Status: wire.StatusRejected, ID: id, Code: string(txn.CodeBufferFull),
			Reason: reason, RetryAfterMs: retryAfterOverload.Milliseconds()}}
	}
	return r
}

// submit hands r to the committer, or answers it unavailable when closing.
// r.respond runs exactly once, on the committer (or here when closing).
func (n *Node) submit(r *request) {
	if r.shed { // answered already (shed): nothing to commit
		n.count(groupResult{rejected: map[txn.Code]int{txn.CodeBufferFull: len(r.items)}})
		n.answer(r)
		return
	}
	if !n.serves(r.provider) {
		for i := range r.items {
			r.items[i].ans = unavailable(r.items[i].id, "this edge's claim on provider "+r.provider+" is not confirmed yet (hub unreachable); retry with the same id")
		}
		n.count(groupResult{rejected: map[txn.Code]int{txn.CodeUnavailable: len(r.items)}})
		n.answer(r)
		return
	}
	n.acceptMu.RLock()
	if n.closing {
		n.acceptMu.RUnlock()
		for i := range r.items {
			r.items[i].ans = unavailable(r.items[i].id, ErrClosed.Error()+"; retry with the same id")
		}
		n.count(groupResult{rejected: map[txn.Code]int{txn.CodeUnavailable: len(r.items)}})
		n.answer(r)
		return
	}
	k := int64(len(r.items))
	if q := n.queued.Add(k); q > int64(n.cfg.QueueMax) && q > k { // one request alone always gets in
		n.queued.Add(-k)
		n.acceptMu.RUnlock()
		res := groupResult{rejected: map[txn.Code]int{}}
		for i := range r.items {
			it := &r.items[i]
			if it.rej != nil { // its own rejection is the more useful answer (no dead letter: overloaded)
				it.ans = rejectedAnswer(it.id, it.rej)
			} else {
				it.ans = overloaded(it.id, q-k, n.cfg.QueueMax)
			}
			res.rejected[txn.Code(it.ans.Code)]++
		}
		n.count(res)
		n.answer(r)
		return
	}
	n.reqs <- r // bounded by QueueMax records (above) and requestQueue requests
	n.acceptMu.RUnlock()
}

// prepare splits and decodes a NATS request. The provider is the subject
// token after "<prefix>.in.", never anything in the payload.
func (n *Node) prepare(subject string, body []byte, contentType string) *request {
	p, ok := n.cfg.Subjects.ProviderFromIn(subject)
	if !ok || !wire.ValidToken(p) {
		return rejectWhole(p, body, &txn.Error{Code: txn.CodeInvalidField, Reason: fmt.Sprintf("provider subject token %q must be 1-64 of [A-Za-z0-9_-]", p)})
	}
	return n.prepareFor(p, body, contentType)
}

// prepareFor splits and decodes a request of provider p (already
// authenticated: by NATS permissions on its subject, or by its HTTP token)
// with p's dialect.
func (n *Node) prepareFor(p string, body []byte, contentType string) *request {
	ad, ok := n.dialect(p)
	if !ok {
		return rejectWhole(p, body, &txn.Error{Code: txn.CodeUnknownProvider, Reason: fmt.Sprintf("provider %q is not configured on this node", p)})
	}
	raws, batch, rej := ad.Split(body, contentType, n.cfg.BatchMax)
	if rej != nil {
		return rejectWhole(p, body, rej)
	}
	r := &request{provider: p, batch: batch, items: make([]item, len(raws))}
	for i, raw := range raws {
		it := &r.items[i]
		it.raw = raw
		tx, e := ad.Decode(raw, n.cfg.Limits)
		if e != nil {
			it.rej = e
			continue
		}
		it.id = tx.ID
		if _, ok := n.cfg.Observer.(TxObserver); ok {
			it.typ, it.amount = tx.Type, tx.Amount
		}
		it.canon = tx.Canonical()
		it.hash = sha256.Sum256(it.canon) // == tx.Hash(), without rendering twice
	}
	return r
}

// rejectWhole is a request answered with one rejection (kept as a dead letter).
func rejectWhole(p string, body []byte, e *txn.Error) *request {
	return &request{provider: p, items: []item{{raw: body, rej: e}}}
}

// dialect is provider p's adapter, or false if p is not configured (when a
// provider list is configured at all).
func (n *Node) dialect(p string) (adapter.Adapter, bool) {
	if len(n.cfg.Providers) == 0 {
		return n.adapters[adapter.Default], true
	}
	pc, ok := n.cfg.Providers[p]
	if !ok {
		return nil, false
	}
	return n.adapters[pc.dialect()], true
}

// runCommitter is the single writer: it collects up to GroupMax records or
// GroupWait and stages them (wal.stage), which commits them in one Badger
// transaction and returns while that fsyncs, so the next group is collected
// and staged meanwhile; each group is answered once its commit returned.
func (n *Node) runCommitter() {
	defer close(n.committerDone)
	defer n.wal.flush()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var r *request
		var ok bool
		select {
		case r, ok = <-n.reqs:
		default:
			n.wal.idle() // nothing queued: drop the read snapshot before blocking
			r, ok = <-n.reqs
		}
		if !ok {
			return
		}
		group := []*request{r}
		items := len(r.items)
		timer.Reset(n.cfg.GroupWait)
	fill:
		for items < n.cfg.GroupMax {
			select {
			case r, ok := <-n.reqs:
				if !ok {
					break fill
				}
				group = append(group, r)
				items += len(r.items)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		n.wal.stage(group, time.Now(), n.finish)
	}
}

// finish counts and answers a committed group (on the goroutine that
// completed its last chunk) and releases its room in the queue.
func (n *Node) finish(group []*request, res groupResult) {
	n.count(res)
	if n.wal.used() > n.cfg.RetentionHighWater { // early deletion now, not at the next GCInterval tick
		select {
		case n.gcWake <- struct{}{}:
		default:
		}
	}
	for _, r := range group {
		n.answer(r)
		n.queued.Add(-int64(len(r.items)))
	}
}

func (n *Node) count(res groupResult) {
	n.accepted.Add(uint64(res.accepted))
	n.duplicates.Add(uint64(res.duplicates))
	if len(res.rejected) > 0 {
		n.rejMu.Lock()
		for c, k := range res.rejected {
			n.rejected[string(c)] += uint64(k)
		}
		n.rejMu.Unlock()
	}
}

// answer sends r's reply, if the provider asked for one.
func (n *Node) answer(r *request) {
	n.observe(r) // metrics (observe.go)
	if r.respond == nil && r.respondAnswers == nil {
		return
	}
	answers := make([]wire.Answer, len(r.items))
	for i := range r.items {
		answers[i] = r.items[i].ans
	}
	if r.respondAnswers != nil {
		r.respondAnswers(answers)
		return
	}
	r.respond(encodeAnswers(answers, r.batch))
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	s := Stats{Accepted: n.accepted.Load(), Duplicates: n.duplicates.Load(), BufferedBytes: n.wal.used(), Rejected: map[string]uint64{}}
	n.rejMu.Lock()
	for c, k := range n.rejected {
		s.Rejected[c] = k
	}
	n.rejMu.Unlock()
	var oldest int64
	n.mu.Lock()
	for _, ps := range n.provs {
		s.Committed += ps.committed.Load()
		s.Forwarded += ps.cursor.Load()
		ps.mu.Lock()
		if ps.oldest != 0 && (oldest == 0 || ps.oldest < oldest) {
			oldest = ps.oldest
		}
		ps.mu.Unlock()
	}
	n.mu.Unlock()
	if oldest != 0 {
		s.OldestUnforwarded = max(time.Since(time.Unix(0, oldest)), 0)
	}
	s.ForwardLag = s.Committed - s.Forwarded
	s.BudgetBytes = n.cfg.BudgetBytes
	n.retainStats(&s)
	return s
}

// Close drains the node and is idempotent: it stops taking requests (drains
// the subscriptions; requests already delivered are still handled), commits
// and answers what is in flight, gives the forwarder up to PublishTimeout to
// push what it can, persists cursors and closes the WAL. It returns the first
// error.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	n.mu.Lock()
	started := n.started
	n.closed = true
	n.mu.Unlock()
	var errs []error
	if started {
		close(n.onlineStop)
		<-n.onlineDone
		httpDone := make(chan struct{})
		go func() { defer close(httpDone); n.stopHTTP() }()
		n.drainSubscriptions()
		<-httpDone
		n.acceptMu.Lock()
		n.closing = true
		close(n.reqs)
		n.acceptMu.Unlock()
		<-n.committerDone
		n.stopReplayIDs()
		n.stopReplay()
		if n.gcStop != nil {
			close(n.gcStop)
			<-n.gcDone
		}
		n.fwd.stop(n.cfg.PublishTimeout)
	}
	if err := n.wal.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close wal: %w", err))
	}
	st := n.Stats()
	n.log.Info("closed", "committed", st.Committed, "forwarded", st.Forwarded)
	return errors.Join(errs...)
}

// drainSubscriptions stops new requests and waits (bounded) until the ones
// already delivered were handed to the committer.
func (n *Node) drainSubscriptions() {
	deadline := time.NewTimer(drainTimeout)
	defer deadline.Stop()
	for _, s := range n.subs {
		closed := s.StatusChanged(nats.SubscriptionClosed)
		if err := s.Drain(); err != nil {
			n.log.Debug("drain subscription", "error", err) // connection already closed: nothing more arrives
			continue
		}
		select {
		case <-closed:
		case <-deadline.C:
			n.log.Warn("subscriptions not drained in time; answering the rest unavailable", "timeout", drainTimeout)
			return
		}
	}
}
