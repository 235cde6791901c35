package settle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"
)

// Partition ownership with leases on JetStream KV (docs/settle.md, "Leases").
//
// The bucket (TALLY_OWNERS, replicas = streams.replicas) holds one key per
// partition, "p.<p>" = the owner's lease, and one per live settle node,
// "n.<node id>" = its heartbeat. The bucket's TTL (stream MaxAge) is the
// lease TTL: a key not rewritten within it disappears. A lease is taken with
// kv.Create (only if the key is absent) and renewed with kv.Update on the
// revision this node last wrote (compare-and-set), every TTL/3.
//
// Timing: a node may write a partition only while
//
//	now < (send time of its last successful create/renew) + TTL*2/3
//
// measured on its own monotonic clock. The server stores that renewal after
// it was sent, so the key lives at least until send time + TTL; no other node
// can create it before then. The writer stops a third of the TTL earlier,
// which covers clock-rate differences and the time to notice. A publish sent
// just before the deadline and delayed past the takeover, or a process paused
// between its check and its publish, is still refused by
// Nats-Expected-Last-Subject-Sequence: the chain cannot fork, and the loser
// steps down (ErrFenced). A holder fenced while its lease is valid (the old
// owner's late publish landed first) catches up again and goes on.

// LeaseConfig configures partition leases.
type LeaseConfig struct {
	NodeID     string
	TTL        time.Duration // lease lifetime; the bucket's TTL wins if the bucket exists with another
	Replicas   int           // bucket replicas (streams.replicas)
	Partitions int           // partitions 0..Partitions-1 are shared
}

// DefaultLeaseTTL is settle.lease_ttl's default: a dead owner's partitions
// are taken within TTL + TTL/6 plus their catch-up.
const DefaultLeaseTTL = 6 * time.Second

// Lease is the value of a partition key.
type Lease struct {
	Node    string    `json:"node"`
	Since   time.Time `json:"since"`   // when this node took the lease
	Renewed time.Time `json:"renewed"` // owner's clock at this renewal
}

// Heartbeat is the value of a node key: a settle node's liveness and a
// summary of its partitions, for tally status.
type Heartbeat struct {
	Node       string          `json:"node"`
	Started    time.Time       `json:"started"`
	At         time.Time       `json:"at"`
	Partitions []PartitionBeat `json:"partitions"`
}

// PartitionBeat is one partition of a heartbeat.
type PartitionBeat struct {
	Partition int    `json:"partition"`
	State     string `json:"state"` // running, starting, stopped
	Lag       uint64 `json:"lag"`
	Entries   uint64 `json:"entries"`
}

// HdrWriter names the settle node that published a TALLY_LEDGER message
// (set with leases).
const HdrWriter = "Tally-Writer"

// LeaseKey and NodeKey are the bucket's keys.
func LeaseKey(p int) string      { return "p." + strconv.Itoa(p) }
func NodeKey(node string) string { return "n." + node }
func nodeOfKey(k string) string  { return strings.TrimPrefix(k, "n.") }
func leaseKVTimeout(ttl time.Duration) time.Duration {
	return min(max(ttl/3, 500*time.Millisecond), 5*time.Second)
}

// OpenOwners opens the lease bucket, creating it with ttl and replicas if
// it does not exist.
func OpenOwners(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, err
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, Description: "tally partition leases and settle node heartbeats",
		History: 1, TTL: ttl, Replicas: max(replicas, 1), Storage: jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, bucket)
	}
	return kv, err
}

type held struct {
	p         int
	rev       uint64
	since     time.Time     // wall clock, when taken
	renewed   time.Duration // monotonic offset (leaser.base) of the last successful create/renew's send
	deadline  atomic.Int64  // monotonic offset: writes allowed before it
	expired   bool          // the worker was stopped because the deadline passed
	releasing atomic.Bool
	restarted time.Duration
}

type leaser struct {
	n        *Node
	cfg      LeaseConfig
	log      hclog.Logger
	kv       jetstream.KeyValue
	ttl      time.Duration
	base     time.Time // monotonic base of every offset
	started  time.Time
	held     map[int]*held
	free     map[int]time.Duration // partition → when first seen without owner
	released chan int
	beat     time.Duration
	snap     atomic.Pointer[[]*held] // held leases after the last round, for Status
}

func newLeaser(ctx context.Context, n *Node, cfg LeaseConfig) (*leaser, error) {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultLeaseTTL
	}
	kv, err := OpenOwners(ctx, n.js, n.cfg.Subjects.OwnersBucket(), cfg.TTL, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	l := &leaser{n: n, cfg: cfg, log: n.log.Named("lease"), kv: kv, ttl: st.TTL(), base: time.Now(), started: time.Now(),
		held: map[int]*held{}, free: map[int]time.Duration{}, released: make(chan int, cfg.Partitions+1), beat: -time.Hour}
	if l.ttl <= 0 {
		return nil, fmt.Errorf("bucket %s has no TTL: leases would never expire; delete it (nats kv del %s) and restart", st.Bucket(), st.Bucket())
	}
	if l.ttl != cfg.TTL {
		l.log.Warn("lease bucket exists with another TTL; using the bucket's", "bucket", st.Bucket(), "bucket_ttl", l.ttl, "settle.lease_ttl", cfg.TTL)
	}
	l.log.Info("partition leases", "bucket", st.Bucket(), "ttl", l.ttl, "renew_every", l.ttl/3, "write_deadline", l.ttl*2/3, "partitions", cfg.Partitions)
	return l, nil
}

func (l *leaser) now() time.Duration { return time.Since(l.base) }

// tick is the loop period: renewals every TTL/3 are due within a tick.
func (l *leaser) tick() time.Duration { return max(l.ttl/6, 50*time.Millisecond) }

func (l *leaser) run(ctx context.Context) {
	t := time.NewTicker(l.tick())
	defer t.Stop()
	l.round(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-l.released:
			l.finishRelease(ctx, p)
			l.publishSnap()
		case <-t.C:
			l.round(ctx)
		}
	}
}

func (l *leaser) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, leaseKVTimeout(l.ttl))
}

// round renews, stops writers whose deadline passed, restarts partitions
// this node holds but does not run, and takes or gives partitions to
// balance them over the live nodes.
func (l *leaser) round(ctx context.Context) {
	if l.now()-l.beat >= l.ttl/3 {
		l.heartbeat(ctx)
	}
	for _, p := range l.heldSorted() {
		h := l.held[p]
		if l.now()-h.renewed >= l.ttl/3 {
			l.renew(ctx, h)
		}
	}
	for _, p := range l.heldSorted() {
		h, ok := l.held[p]
		if !ok {
			continue
		}
		valid := l.now() < time.Duration(h.deadline.Load())
		pt := l.n.running(p)
		switch {
		case !valid && !h.expired:
			h.expired = true
			if pt != nil {
				l.log.Error("LEASE NOT RENEWED IN TIME: stopping writes to the partition before the lease can expire anywhere else", "partition", p, "since_last_renewal", l.now()-h.renewed, "write_deadline", l.ttl*2/3)
				l.n.stepDown(p, "lease expired")
				go l.n.stopPartition(p)
			}
		case valid && pt == nil && !h.releasing.Load() && l.now()-h.restarted >= l.ttl/3:
			if h.expired || h.restarted > 0 {
				l.log.Warn("restarting a partition this node still holds the lease of (catch-up first)", "partition", p)
			}
			h.expired = false
			h.restarted = l.now()
			l.start(h)
		}
	}
	l.balance(ctx)
	l.publishSnap()
}

func (l *leaser) publishSnap() {
	hs := make([]*held, 0, len(l.held))
	for _, p := range l.heldSorted() {
		hs = append(hs, l.held[p])
	}
	l.snap.Store(&hs)
}

func (l *leaser) heldSorted() []int {
	ps := make([]int, 0, len(l.held))
	for p := range l.held {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func (l *leaser) leaseValue(h *held) []byte {
	b, _ := json.Marshal(Lease{Node: l.cfg.NodeID, Since: h.since, Renewed: time.Now().UTC()})
	return b
}

func (l *leaser) guard(h *held) func() error {
	return func() error {
		if l.now() >= time.Duration(h.deadline.Load()) {
			return fmt.Errorf("partition %d: lease not renewed within %s: %w", h.p, l.ttl*2/3, ErrLeaseLost)
		}
		return nil
	}
}

func (l *leaser) start(h *held) {
	l.n.launch(l.n.newWorker(h.p, l.guard(h)), true)
}

// renew rewrites h's key on the revision this node wrote last.
func (l *leaser) renew(ctx context.Context, h *held) {
	octx, cancel := l.op(ctx)
	defer cancel()
	sent := l.now()
	rev, err := l.kv.Update(octx, LeaseKey(h.p), l.leaseValue(h), h.rev)
	if err == nil {
		h.rev, h.renewed = rev, sent
		h.deadline.Store(int64(sent + l.ttl*2/3))
		return
	}
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		// A renewal that landed but whose answer was lost leaves the key at a
		// revision this node wrote: adopt it.
		if e, gerr := l.kv.Get(octx, LeaseKey(h.p)); gerr == nil {
			var v Lease
			if json.Unmarshal(e.Value(), &v) == nil && v.Node == l.cfg.NodeID && v.Since.Equal(h.since) {
				h.rev = e.Revision()
				return
			}
		}
		h.deadline.Store(0)
		delete(l.held, h.p)
		l.log.Error("LEASE LOST: the partition's lease expired or another node took it; stepping down", "partition", h.p, "error", err)
		l.n.stepDown(h.p, "lease lost")
		go l.n.stopPartition(h.p)
		return
	}
	l.log.Warn("lease renewal failed; retrying", "partition", h.p, "error", err, "write_deadline_in", time.Duration(h.deadline.Load())-l.now())
}

func (l *leaser) heartbeat(ctx context.Context) {
	hb := Heartbeat{Node: l.cfg.NodeID, Started: l.started.UTC(), At: time.Now().UTC()}
	for _, p := range l.heldSorted() {
		b := PartitionBeat{Partition: p, State: "starting"}
		l.n.mu.Lock()
		pt := l.n.parts[p]
		l.n.mu.Unlock()
		if pt != nil {
			select {
			case <-pt.done:
				b.State = "stopped"
			default:
				if pt.w.ready.Load() {
					b.State = "running"
				}
			}
			b.Lag = pt.w.lag.Load()
			if c := pt.w.snap.Load(); c != nil {
				b.Entries = c.Entries
			}
		}
		hb.Partitions = append(hb.Partitions, b)
	}
	v, _ := json.Marshal(hb)
	octx, cancel := l.op(ctx)
	defer cancel()
	if _, err := l.kv.Put(octx, NodeKey(l.cfg.NodeID), v); err != nil {
		if ctx.Err() == nil {
			l.log.Warn("heartbeat failed", "error", err)
		}
		return
	}
	l.beat = l.now()
}

// score orders partitions for a node (rendezvous hashing): each node
// prefers other free partitions, so nodes taking at once rarely collide.
func score(node string, p int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0, byte(p >> 8), byte(p)})
	return h.Sum64()
}

// Quota is how many of parts partitions the node at rank (in the sorted
// list of n live nodes) should hold: an even spread, the first parts%n
// nodes one more.
func Quota(parts, n, rank int) int {
	if n <= 0 {
		return 0
	}
	q := parts / n
	if rank < parts%n {
		q++
	}
	return q
}

// balance takes free partitions up to this node's quota (or any partition
// free for two TTLs), and gives one back per round when it holds more than
// its quota while another live node holds fewer than its own.
func (l *leaser) balance(ctx context.Context) {
	octx, cancel := l.op(ctx)
	defer cancel()
	nodes, err := liveNodes(octx, l.kv)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("list settle nodes", "error", err)
		}
		return
	}
	if !slices.Contains(nodes, l.cfg.NodeID) {
		nodes = append(nodes, l.cfg.NodeID)
		slices.Sort(nodes)
	}
	count := map[string]int{}
	var free []int
	for p := range l.cfg.Partitions {
		owner := ""
		if _, mine := l.held[p]; mine {
			owner = l.cfg.NodeID
		} else if e, err := l.kv.Get(octx, LeaseKey(p)); err == nil {
			var v Lease
			if json.Unmarshal(e.Value(), &v) == nil {
				owner = v.Node
			}
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
			return // unknown: decide next round
		}
		if owner == "" {
			free = append(free, p)
			if _, ok := l.free[p]; !ok {
				l.free[p] = l.now()
			}
			continue
		}
		delete(l.free, p)
		count[owner]++
	}
	rank := slices.Index(nodes, l.cfg.NodeID)
	quota := Quota(l.cfg.Partitions, len(nodes), rank)
	slices.SortFunc(free, func(a, b int) int {
		sa, sb := score(l.cfg.NodeID, a), score(l.cfg.NodeID, b)
		if sa > sb {
			return -1
		}
		if sa < sb {
			return 1
		}
		return 0
	})
	for _, p := range free {
		if l.n.running(p) != nil {
			continue // its earlier worker here is still stopping
		}
		if len(l.held) >= quota && l.now()-l.free[p] < 2*l.ttl {
			continue
		}
		l.take(octx, p)
	}
	if len(l.held) <= quota {
		return
	}
	needy := false
	for i, node := range nodes {
		if node != l.cfg.NodeID && count[node] < Quota(l.cfg.Partitions, len(nodes), i) {
			needy = true
		}
	}
	if !needy {
		return
	}
	for _, h := range l.held {
		if h.releasing.Load() {
			return // one at a time
		}
	}
	// Give back the partition this node prefers least.
	var give *held
	for _, h := range l.held {
		if give == nil || score(l.cfg.NodeID, h.p) < score(l.cfg.NodeID, give.p) {
			give = h
		}
	}
	give.releasing.Store(true)
	l.log.Info("giving a partition back to balance the live nodes", "partition", give.p, "held", len(l.held), "quota", quota, "nodes", nodes)
	go func() {
		l.n.stopPartition(give.p)
		select {
		case l.released <- give.p:
		case <-ctx.Done():
		}
	}()
}

// take creates p's key; the worker starts (catch-up first) in the background.
func (l *leaser) take(ctx context.Context, p int) {
	h := &held{p: p, since: time.Now().UTC()}
	sent := l.now()
	rev, err := l.kv.Create(ctx, LeaseKey(p), l.leaseValue(h))
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			l.log.Warn("take partition lease", "partition", p, "error", err)
		}
		return
	}
	h.rev, h.renewed, h.restarted = rev, sent, sent
	h.deadline.Store(int64(sent + l.ttl*2/3))
	l.held[p] = h
	delete(l.free, p)
	l.log.Info("took partition lease; catching up from the ledger stream", "partition", p, "revision", rev)
	l.start(h)
}

// finishRelease deletes a released partition's key once its worker stopped.
func (l *leaser) finishRelease(ctx context.Context, p int) {
	h := l.held[p]
	if h == nil {
		return
	}
	delete(l.held, p)
	h.deadline.Store(0)
	octx, cancel := l.op(ctx)
	defer cancel()
	if err := l.kv.Delete(octx, LeaseKey(p), jetstream.LastRevision(h.rev)); err != nil {
		l.log.Warn("release partition lease (it expires by itself)", "partition", p, "error", err)
		return
	}
	l.log.Info("released partition lease", "partition", p)
}

// releaseAll gives every lease back and removes the heartbeat after the
// workers stopped (Close), so other nodes take the partitions at once.
func (l *leaser) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range l.heldSorted() {
		h := l.held[p]
		h.deadline.Store(0)
		if err := l.kv.Delete(ctx, LeaseKey(p), jetstream.LastRevision(h.rev)); err != nil {
			l.log.Warn("release partition lease (it expires by itself)", "partition", p, "error", err)
			continue
		}
		delete(l.held, p)
	}
	if err := l.kv.Delete(ctx, NodeKey(l.cfg.NodeID)); err != nil {
		l.log.Debug("remove heartbeat", "error", err)
	}
	l.log.Info("released partition leases")
}

// liveNodes lists the node ids with a heartbeat in the bucket.
func liveNodes(ctx context.Context, kv jetstream.KeyValue) ([]string, error) {
	kl, err := kv.ListKeysFiltered(ctx, "n.*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	defer kl.Stop()
	var out []string
	for k := range kl.Keys() {
		out = append(out, nodeOfKey(k))
	}
	slices.Sort(out)
	return out, nil
}

// Owner is one partition's lease as tally status shows it.
type Owner struct {
	Partition int       `json:"partition"`
	Owner     string    `json:"owner,omitempty"` // "" = no lease
	Since     time.Time `json:"since,omitzero"`
	Renewed   time.Time `json:"renewed,omitzero"`     // server time of the last renewal
	Age       float64   `json:"lease_age_s,omitzero"` // seconds since Renewed
	Revision  uint64    `json:"revision,omitempty"`
}

// ReadOwners reads the lease bucket: every partition's owner and the live
// nodes' heartbeats.
func ReadOwners(ctx context.Context, kv jetstream.KeyValue, partitions int) ([]Owner, []Heartbeat, error) {
	now := time.Now()
	var owners []Owner
	for p := range partitions {
		o := Owner{Partition: p}
		e, err := kv.Get(ctx, LeaseKey(p))
		switch {
		case err == nil:
			var v Lease
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				return nil, nil, fmt.Errorf("lease %s: %w", LeaseKey(p), err)
			}
			o.Owner, o.Since, o.Renewed, o.Revision = v.Node, v.Since, e.Created().UTC(), e.Revision()
			o.Age = now.Sub(e.Created()).Seconds()
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		default:
			return nil, nil, err
		}
		owners = append(owners, o)
	}
	nodes, err := liveNodes(ctx, kv)
	if err != nil {
		return nil, nil, err
	}
	var beats []Heartbeat
	for _, id := range nodes {
		e, err := kv.Get(ctx, NodeKey(id))
		if err != nil {
			continue // expired in between
		}
		var hb Heartbeat
		if json.Unmarshal(e.Value(), &hb) == nil {
			beats = append(beats, hb)
		}
	}
	return owners, beats, nil
}
