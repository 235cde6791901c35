package nodes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/ingest"
	"github.com/tally-mesh/tally/metrics"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/oplog"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// Node is a running tally node.
type Node struct {
	cfg config.Config
	log hclog.Logger

	hub      *server.Server
	hubPwd   string // internal user's password when the hub requires credentials
	nc       *nats.Conn
	js       jetstream.JetStream
	ingest   *ingest.Node
	index    *settle.Index
	ledger   *store.Ledger
	settle   *settle.Node
	audit    *audit.Server   // read-only audit API (settle.audit_listen)
	console  *console.Server // console API and UI (settle.console_listen, console.go)
	consoleC *console.Console

	stop       chan struct{} // closed by Close: ends background start-up work
	bg         sync.WaitGroup
	failed     chan struct{} // closed when a role stops on its own (Failed)
	failMu     sync.Mutex
	failErr    error
	closing    atomic.Bool
	metrics    *metrics.Metrics // nil unless metrics_listen is set (metrics.go)
	metricsSrv *metrics.Server
	probe      *probe
	sec        security // at-rest key and HTTP TLS (security.go)
	ops        *ops     // alerts, SLA, anomalies (ops.go)
}

// Start brings up the configured roles. On error everything started is stopped.
func Start(ctx context.Context, cfg config.Config, log hclog.Logger) (_ *Node, err error) {
	n := &Node{cfg: cfg, log: log, stop: make(chan struct{}), failed: make(chan struct{})}
	if cfg.MetricsListen != "" {
		n.metrics = metrics.New() // hooks below; served by startMetrics
	}
	n.ops = newOps(cfg, log) // its ingest observers are needed below; started by startOps
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if n.sec, err = loadSecurity(cfg); err != nil { // security.go
		return nil, err
	}
	subjects := wire.NewSubjects(cfg.Prefix)
	if cfg.Has(config.RoleHub) {
		if n.hub, n.hubPwd, err = startHub(cfg); err != nil {
			return nil, err
		}
		log.Info("hub listening", "url", n.hub.ClientURL(), "store", cfg.HubDir())
	}
	if cfg.Leaf != nil { // an edge's own server, leaf of the hub cluster (leaf.go)
		if n.hub, n.hubPwd, err = startLeaf(cfg); err != nil {
			return nil, err
		}
		log.Info("leaf listening", "url", n.hub.ClientURL(), "hubs", cfg.Leaf.Hubs)
	}
	if n.nc, err = n.connect(); err != nil {
		return nil, err
	}
	if cfg.Leaf != nil { // plain $JS.API does not cross a leaf link; the hubs' domain does
		n.js, err = jetstream.NewWithDomain(n.nc, cfg.Leaf.Domain)
	} else {
		n.js, err = jetstream.New(n.nc)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	streams := wire.StreamOptions{
		Partitions: cfg.Streams.Partitions, Replicas: cfg.Streams.Replicas,
		DuplicateWindow: cfg.Streams.DuplicateWindow, TxMaxAge: cfg.Streams.TxMaxAge,
		MaxMsgBytes: int32(cfg.MaxPayload()), Compression: cfg.Streams.Compression,
	}
	switch {
	case cfg.Has(config.RoleHub) || (cfg.Streams.Create && cfg.Has(config.RoleSettle)):
		err := ensureOnCluster(ctx, cfg, log, func(ctx context.Context) error { // retries while a hub cluster forms (cluster.go)
			return wire.EnsureStreams(ctx, n.js, subjects, streams)
		})
		if err != nil {
			return nil, err
		}
	case cfg.Streams.Create: // an edge: the hub may be down; the forwarder waits for the stream
		n.bg.Add(1)
		go n.ensureStreams(subjects, streams)
	}
	if cfg.Has(config.RoleSettle) {
		if err := n.startSettle(ctx, subjects); err != nil {
			return nil, err
		}
	}
	if cfg.Has(config.RoleIngest) {
		n.ingest, err = ingest.New(ingest.Config{
			NodeID: cfg.NodeID, Subjects: subjects, Limits: cfg.Ingest.Limits, BatchMax: cfg.Ingest.BatchMax,
			WALDir: cfg.WALDir(), GroupMax: cfg.Ingest.GroupMax, QueueMax: cfg.Ingest.QueueMax, PendingBytes: cfg.Ingest.PendingBytes, GroupWait: cfg.Ingest.GroupWait,
			BudgetBytes: cfg.Ingest.BudgetBytes, ForwardBatch: cfg.Ingest.ForwardBatch,
			ForwardWindow: cfg.Ingest.ForwardWindow, PublishTimeout: cfg.Ingest.PublishTimeout,
			DLQMax: cfg.Ingest.DLQMax, Providers: ingestProviders(cfg), HTTPListen: cfg.Ingest.HTTPListen,
			RequestBytes: cfg.Ingest.RequestBytes, ClaimReplicas: cfg.Streams.Replicas, Retention: cfg.Ingest.Retention, GCInterval: cfg.Ingest.GCInterval,
			GCBatch: cfg.Ingest.GCBatch, RetentionHighWater: cfg.Ingest.RetentionHighWater, ReplayMax: cfg.Ingest.ReplayMax,
			ReplayIDsMax:  cfg.Ingest.ReplayIDsMax,
			Observer:      n.ingestObserver(),
			EncryptionKey: n.sec.key, KeyRotation: cfg.Encryption.Rotation, HTTPTLS: n.sec.httpTLS,
			WALMemory: cfg.Ingest.WALMemory, WALCompression: cfg.Ingest.WALCompression,
		}, log)
		if err != nil {
			return nil, err
		}
		if err := n.ingest.Start(ctx, n.nc, n.js); err != nil {
			return nil, err
		}
		n.watch(n.ingest.Done(), n.ingest.Err)
	}
	if n.settle != nil {
		n.watch(n.settle.Done(), n.settle.Err)
	}
	if err := n.startMetrics(); err != nil {
		return nil, err
	}
	if err := n.serveStatus(subjects); err != nil {
		return nil, err
	}
	n.startOps()
	n.consoleAlerts()
	return n, nil
}

// watch fails the node when done closes (a role stopped on its own).
func (n *Node) watch(done <-chan struct{}, err func() error) {
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		select {
		case <-done:
			n.fail(err())
		case <-n.stop:
		}
	}()
}

// fail records the first role failure and closes Failed.
func (n *Node) fail(err error) {
	n.failMu.Lock()
	defer n.failMu.Unlock()
	if n.failErr != nil || n.closing.Load() {
		return
	}
	if err == nil {
		err = errors.New("a role stopped")
	}
	n.failErr = err
	close(n.failed)
}

// ensureStreams creates or checks the streams in the background, retrying
// until the hub answers (an edge with streams.create started during an
// outage).
func (n *Node) ensureStreams(subjects wire.Subjects, o wire.StreamOptions) {
	defer n.bg.Done()
	wait := 500 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := wire.EnsureStreams(ctx, n.js, subjects, o)
		cancel()
		if err == nil {
			return
		}
		n.log.Warn("streams not ensured yet; retrying", "error", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-n.stop:
			t.Stop()
			return
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// connect connects to the embedded hub, or to nats.url. A node without the
// settle role (an edge) starts even when the hub is unreachable
// (RetryOnFailedConnect): it takes HTTP requests into its WAL and connects,
// claims, subscribes and forwards when the hub returns. A settle node needs
// the hub to start.
func (n *Node) connect() (*nats.Conn, error) {
	log := n.log.Named("nats")
	opts := []nats.Option{
		nats.Name("tally " + n.cfg.NodeID),
		nats.MaxReconnects(-1), // an edge keeps buffering and reconnecting through any outage
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(n.hub == nil && !n.cfg.Has(config.RoleSettle)),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if !n.closing.Load() {
				log.Warn("hub unreachable; reconnecting", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("hub reachable", "url", nc.ConnectedUrlRedacted()) }),
		nats.ConnectHandler(func(nc *nats.Conn) { log.Info("hub reachable", "url", nc.ConnectedUrlRedacted()) }),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if !n.closing.Load() { // e.g. credentials refused twice in a row
				n.fail(fmt.Errorf("connection to %s closed: %v", n.cfg.NATS.URL, nc.LastError()))
			}
		}),
	}
	if n.hub != nil {
		if n.hubPwd != "" {
			opts = append(opts, internalAuth(n.hubPwd)) // security.go
		}
		nc, err := nats.Connect("", append(opts, nats.InProcessServer(n.hub))...)
		if err != nil {
			return nil, fmt.Errorf("connect to embedded hub: %w", err)
		}
		return nc, nil
	}
	opts = append(opts, natsTLS(n.cfg.NATS.TLS)...) // security.go
	if n.cfg.NATS.Creds != "" {
		opts = append(opts, nats.UserCredentials(n.cfg.NATS.Creds))
	}
	if n.cfg.NATS.User != "" {
		opts = append(opts, nats.UserInfo(n.cfg.NATS.User, n.cfg.NATS.Password))
	}
	nc, err := nats.Connect(n.cfg.NATS.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", n.cfg.NATS.URL, err)
	}
	if !nc.IsConnected() {
		log.Warn("hub unreachable at start; starting from the WAL and connecting in the background", "url", n.cfg.NATS.URL)
	}
	return nc, nil
}

func (n *Node) startSettle(ctx context.Context, subjects wire.Subjects) error {
	cfg := n.cfg
	book, err := rules.ParseFile(cfg.Settle.Rules)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	signer, vkey, err := store.LoadOrCreateKey(cfg.KeyPath(), cfg.Settle.Origin)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if err := store.WriteVerifierKey(cfg.LedgerDir(), vkey); err != nil {
		return err
	}
	if err := saveRuleSets(cfg.LedgerDir(), book); err != nil {
		return err
	}
	if n.index, err = settle.OpenIndexWith(cfg.IndexDir(), n.log, settle.IndexOptions{
		Key: n.sec.key, Rotation: cfg.Encryption.Rotation, Memory: cfg.Settle.IndexMemory,
	}); err != nil {
		return err
	}
	if n.ledger, err = store.Open(store.Options{Dir: cfg.LedgerDir(), Origin: cfg.Settle.Origin, Signer: signer, Logger: n.log.Named("ledger")}); err != nil {
		return err
	}
	var leases *settle.LeaseConfig
	if cfg.Settle.Leases {
		leases = &settle.LeaseConfig{NodeID: cfg.NodeID, TTL: cfg.Settle.LeaseTTL, Replicas: cfg.Streams.Replicas, Partitions: cfg.Streams.Partitions}
	}
	n.settle = settle.New(settle.Config{
		Subjects: subjects, Partitions: cfg.SettlePartitions(), Leases: leases,
		SegmentMaxEntries: cfg.Settle.SegmentMaxEntries, SegmentMaxAge: cfg.Settle.SegmentMaxAge,
		FetchBatch: cfg.Settle.FetchBatch, OrphanTimeout: cfg.Settle.OrphanTimeout, AckWait: cfg.Settle.AckWait,
		Pipeline:    cfg.Settle.Pipeline,
		ObserveSync: n.metrics.SyncObserver(), ObserveSettled: n.metrics.SettledObserver(),
		Oplog: oplog.Options{AckWait: cfg.Settle.OplogAckWait, PublishTimeout: cfg.Settle.OplogPublishTimeout},
	}, n.index, n.ledger, book, n.log)
	if err := n.settle.Start(ctx, n.nc, n.js); err != nil {
		return err
	}
	if leases != nil {
		n.log.Info("settling by lease", "partitions", cfg.Streams.Partitions, "lease_ttl", cfg.Settle.LeaseTTL, "pipeline", cfg.Settle.Pipeline, "ledger", cfg.LedgerDir(), "verifier_key", vkey)
	} else {
		n.log.Info("settling", "partitions", cfg.SettlePartitions(), "pipeline", cfg.Settle.Pipeline, "ledger", cfg.LedgerDir(), "verifier_key", vkey)
	}
	if cfg.Settle.AuditListen != "" {
		h := audit.NewHandler(n.ledger, n.index.Lookup, audit.HandlerOptions{MaxEntries: cfg.Settle.AuditMaxEntries, VerifierKey: vkey, Logger: n.log.Named("audit")})
		if n.audit, err = audit.ListenTLS(cfg.Settle.AuditListen, auditHandler(cfg, h), n.sec.auditTLS, n.log.Named("audit")); err != nil {
			return err
		}
		n.log.Info("audit api listening", "url", n.AuditURL()+"/v1/audit/partitions", "tokens", len(cfg.Settle.AuditTokens))
	}
	return n.startConsole(vkey, signer, book)
}

// AuditAddr is the audit API's address ("" when it is off).
func (n *Node) AuditAddr() string {
	if n.audit == nil {
		return ""
	}
	return n.audit.Addr()
}

// saveRuleSets writes every rule version's canonical form to <ledger>/rules/<hash>.json
// so an auditor can recompute splits from the ledger directory alone.
func saveRuleSets(ledgerDir string, book *rules.Book) error {
	dir := filepath.Join(ledgerDir, "rules")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("rules dir: %w", err)
	}
	for _, v := range book.Versions() {
		h := v.Hash()
		p := filepath.Join(dir, fmt.Sprintf("%x.json", h))
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := store.WriteFileAtomic(p, v.Canonical()); err != nil {
			return fmt.Errorf("save rule set %s: %w", v.Name, err)
		}
	}
	return nil
}

// ingestProviders is the ingest role's view of the configured providers.
func ingestProviders(cfg config.Config) map[string]ingest.Provider {
	if len(cfg.Providers) == 0 {
		return nil
	}
	m := make(map[string]ingest.Provider, len(cfg.Providers))
	for _, p := range cfg.Providers {
		m[p.Name] = ingest.Provider{Dialect: p.Dialect, Token: p.HTTPToken}
	}
	return m
}

// HTTPAddr is the ingest HTTP endpoint's address ("" without one).
func (n *Node) HTTPAddr() string {
	if n.ingest == nil || n.ingest.HTTPAddr() == nil {
		return ""
	}
	return n.ingest.HTTPAddr().String()
}

// ClientURL is where providers reach this node's hub ("" without a hub).
func (n *Node) ClientURL() string {
	if n.hub == nil {
		return ""
	}
	return n.hub.ClientURL()
}

// Stats is a live snapshot of the node's roles.
type Stats struct {
	Ingest *ingest.Stats
	Settle *settle.Stats
}

// Stats returns the live counters of the roles this node runs.
func (n *Node) Stats() Stats {
	var s Stats
	if n.ingest != nil {
		st := n.ingest.Stats()
		s.Ingest = &st
	}
	if n.settle != nil {
		st := n.settle.Stats()
		s.Settle = &st
	}
	return s
}

// Balances returns live balances (settle role only).
func (n *Node) Balances() ([]settle.Balance, error) {
	if n.index == nil {
		return nil, errors.New("this node does not settle")
	}
	return n.index.Balances()
}

// Failed is closed when a role stops on its own: a settle partition, the
// ingest role (a provider claim refused when the hub returned), or the hub
// connection closed for good.
func (n *Node) Failed() <-chan struct{} { return n.failed }

// Err is the first role failure, if any.
func (n *Node) Err() error {
	n.failMu.Lock()
	defer n.failMu.Unlock()
	return n.failErr
}

// Close drains in order: ingest stops accepting and flushes, settle commits and
// acks what it processed, stores close, the hub stops. Idempotent; returns the
// first error.
func (n *Node) Close() error {
	var errs []error
	n.draining() // /readyz answers 503 from here (metrics.go)
	if n.closing.CompareAndSwap(false, true) {
		close(n.stop)
	}
	n.bg.Wait()
	if n.ingest != nil {
		errs = append(errs, n.ingest.Close())
		n.ingest = nil
	}
	if n.audit != nil {
		errs = append(errs, n.audit.Close())
		n.audit = nil
	}
	if n.console != nil {
		errs = append(errs, n.console.Close())
		n.console = nil
	}
	if n.settle != nil {
		errs = append(errs, n.settle.Close())
		n.settle = nil
	}
	if n.ledger != nil {
		errs = append(errs, n.ledger.Close())
		n.ledger = nil
	}
	if n.index != nil {
		errs = append(errs, n.index.Close())
		n.index = nil
	}
	n.stopOps() // before the connection closes: one last publish of pending alerts
	if n.nc != nil {
		n.nc.Close()
		n.nc = nil
	}
	if n.hub != nil {
		n.hub.Shutdown()
		n.hub.WaitForShutdown()
		n.hub = nil
	}
	errs = append(errs, n.stopMetrics())
	return errors.Join(errs...)
}

// Run starts a node and blocks until ctx ends (then drains) or a role fails.
func Run(ctx context.Context, cfg config.Config, log hclog.Logger) error {
	n, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("draining")
	case <-n.Failed():
	}
	return errors.Join(n.Err(), n.Close())
}
