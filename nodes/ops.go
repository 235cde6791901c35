package nodes

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	alert "github.com/tally-mesh/tally/alerts"
	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/ingest"
	"github.com/tally-mesh/tally/ops/anomaly"
	"github.com/tally-mesh/tally/ops/sla"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// ops runs a node's alert manager, its SLA recorder and its anomaly
// detector (docs/alerts.md, docs/sla.md). Everything here runs on its own
// goroutines behind bounded queues: it never blocks ingest or settlement.
type ops struct {
	cfg  config.Config
	log  hclog.Logger
	subj wire.Subjects

	mgr   *alert.Manager
	hooks []*alert.Webhook
	subs  []*nats.Subscription

	rec       *sla.Recorder // nil without sla blocks or the ingest role
	slaOut    *sla.Outbox
	slaMu     sync.Mutex
	slaBreach map[string][]string // party → the last closed window's breaches

	det        *anomaly.Detector // nil when off or without the ingest role
	detIn      chan detObs
	detDropped atomic.Uint64
	anomOut    []anomaly.Detection // records not yet in TALLY_ANOMALIES

	// references taken at start, so evaluators never race Close.
	ing  *ingest.Node
	st   *settle.Node
	nc   *nats.Conn
	js   jetstream.JetStream
	leaf *server.Server

	stop   chan struct{}
	ctx    context.Context // cancelled by stopOps: publishes in flight give up at once
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type detObs struct {
	provider string
	at       time.Time
	rejected int
	txs      []ingest.TxSample
}

// detQueue bounds the observations waiting for the detector; beyond it they
// are dropped (counted), never waited for.
const detQueue = 4096

// newOps prepares the observers the ingest role needs before it starts.
func newOps(cfg config.Config, log hclog.Logger) *ops {
	o := &ops{cfg: cfg, log: log.Named("alerts"), subj: wire.NewSubjects(cfg.Prefix), slaBreach: map[string][]string{}, stop: make(chan struct{})}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	if !cfg.Alerts.Enabled {
		return o
	}
	if cfg.Has(config.RoleIngest) && len(cfg.SLAs) > 0 {
		o.rec = sla.NewRecorder(cfg.NodeID, cfg.Alerts.SLAWindow, cfg.SLAs, time.Now())
	}
	if cfg.Has(config.RoleIngest) && cfg.Anomaly.Enabled {
		o.det = anomaly.New(cfg.Anomaly.Config)
		o.detIn = make(chan detObs, detQueue)
	}
	return o
}

// observers are the ingest hooks of ops (nil entries for what is off).
func (o *ops) observers() []ingest.Observer {
	var out []ingest.Observer
	if o.rec != nil {
		out = append(out, o.rec)
	}
	if o.det != nil {
		out = append(out, detObserver{o})
	}
	return out
}

// detObserver feeds the anomaly detector's queue.
type detObserver struct{ o *ops }

func (d detObserver) Answered(provider string, _, _, rejected int, _ time.Duration) {
	if rejected > 0 {
		d.o.enqueue(detObs{provider: provider, at: time.Now(), rejected: rejected})
	}
}
func (d detObserver) WALSynced(time.Duration) {}
func (d detObserver) AcceptedTxs(provider string, txs []ingest.TxSample) {
	d.o.enqueue(detObs{provider: provider, at: time.Now(), txs: txs})
}

func (o *ops) enqueue(ob detObs) {
	select {
	case o.detIn <- ob:
	default:
		o.detDropped.Add(1)
	}
}

// fanout calls every observer in turn.
type fanout []ingest.Observer

func (f fanout) Answered(p string, a, d, r int, took time.Duration) {
	for _, o := range f {
		o.Answered(p, a, d, r, took)
	}
}
func (f fanout) WALSynced(took time.Duration) {
	for _, o := range f {
		o.WALSynced(took)
	}
}
func (f fanout) AcceptedTxs(p string, txs []ingest.TxSample) {
	for _, o := range f {
		if t, ok := o.(ingest.TxObserver); ok {
			t.AcceptedTxs(p, txs)
		}
	}
}

// ingestObserver is the ingest role's Observer: metrics, SLA and anomaly
// detection, each only when on.
func (n *Node) ingestObserver() ingest.Observer {
	var f fanout
	if m := n.metrics.IngestObserver(); m != nil {
		f = append(f, m)
	}
	f = append(f, n.ops.observers()...)
	switch len(f) {
	case 0:
		return nil
	case 1:
		if _, ok := f[0].(ingest.TxObserver); !ok {
			return f[0]
		}
	}
	return f
}

// startOps starts the alert manager and the loops once the roles are up.
func (n *Node) startOps() {
	o := n.ops
	if o == nil || !o.cfg.Alerts.Enabled {
		return
	}
	cfg := o.cfg
	o.ing, o.st, o.nc, o.js = n.ingest, n.settle, n.nc, n.js
	if cfg.Leaf != nil {
		o.leaf = n.hub
	}
	var sinks []alert.Sink
	for _, w := range cfg.Alerts.Webhooks {
		h := alert.NewWebhook(w, o.log)
		o.hooks = append(o.hooks, h)
		sinks = append(sinks, h)
	}
	pub := &alert.StreamPublisher{JS: n.js, Subjects: o.subj, Options: alert.StreamOptions{MaxAge: cfg.Alerts.MaxAge, MaxBytes: cfg.Alerts.MaxBytes, Replicas: cfg.Streams.Replicas}}
	o.mgr = alert.NewManager(alert.Config{Node: cfg.NodeID, Interval: cfg.Alerts.Interval, Quiet: cfg.Alerts.Quiet,
		Firing: n.metrics.AlertsFiring(), Logger: o.log}, pub, sinks...)
	o.mgr.Add(alert.NodeEvaluator(cfg.Alerts.Thresholds, o.snapshot))
	if files := watchedCerts(cfg); len(files) > 0 {
		o.mgr.Add(alert.CertEvaluator(func() []string { return files }, cfg.Alerts.Thresholds.CertExpiry))
	}
	o.mgr.Known(alert.KindGap, alert.KindFenced)
	if o.rec != nil {
		o.slaOut = &sla.Outbox{JS: n.js, Subjects: o.subj, Replicas: cfg.Streams.Replicas}
		o.mgr.Add(alert.Evaluator{Kinds: []string{alert.KindSLA}, Eval: o.slaConditions})
		o.wg.Add(1)
		go o.runSLA()
	}
	if o.det != nil {
		o.mgr.Known(alert.KindAnomaly)
		o.wg.Add(1)
		go o.runAnomaly()
	}
	if o.st != nil {
		o.followSettleEvents()
	}
	o.mgr.Start()
	// Create TALLY_ALERTS now (best effort) so `tally alerts tail` can
	// follow it before anything fired; the publisher retries on first use.
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		ctx, cancel := context.WithTimeout(o.ctx, 10*time.Second)
		defer cancel()
		if err := alert.EnsureStream(ctx, n.js, o.subj, pub.Options); err != nil {
			o.log.Debug("alerts stream not ensured yet", "error", err)
		}
	}()
}

// stopOps stops the loops and the manager (one last bounded publish), then
// the webhooks.
func (n *Node) stopOps() {
	o := n.ops
	if o == nil || o.mgr == nil {
		return
	}
	n.ops = nil // Close is idempotent
	for _, s := range o.subs {
		s.Unsubscribe()
	}
	close(o.stop)
	o.cancel()
	o.wg.Wait()
	if o.slaOut != nil { // closed windows not yet published: one bounded try
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := o.slaOut.Flush(ctx); err != nil {
			o.log.Warn("sla windows not published at shutdown", "error", err)
		}
		cancel()
	}
	o.mgr.Close()
	for _, h := range o.hooks {
		h.Close()
	}
}

// snapshot is the node evaluator's view of the roles.
func (o *ops) snapshot() alert.Snapshot {
	s := alert.Snapshot{DataDir: o.cfg.DataDir}
	if o.ing != nil {
		st := o.ing.Stats()
		s.Ingest, s.WALBytes, s.WALBudget, s.Oldest = true, st.BufferedBytes, st.BudgetBytes, st.OldestUnforwarded
		s.WALHighWater = o.cfg.Ingest.RetentionHighWater
		if s.WALHighWater == 0 {
			s.WALHighWater = st.BudgetBytes / 2
		}
		for _, n := range st.Rejected {
			s.Rejected += n
		}
	}
	if o.st != nil {
		s.Settle = true
		for _, p := range o.st.Partitions() {
			s.Partitions = append(s.Partitions, alert.PartitionSnapshot{Partition: p.Partition, Lag: p.Lag, Conflicts: p.Conflicts})
		}
	}
	s.HubUp, s.HubDetail = o.hubUp()
	return s
}

// hubUp: the NATS connection is up and, for an edge with its own leaf
// server, the leaf link to the hub cluster is up.
func (o *ops) hubUp() (bool, string) {
	if o.nc == nil {
		return false, "no NATS connection"
	}
	if st := o.nc.Status(); st != nats.CONNECTED {
		return false, fmt.Sprintf("NATS connection %s (%s)", st, o.cfg.NATS.URL)
	}
	if o.leaf != nil && o.leaf.NumLeafNodes() == 0 {
		return false, "no leaf connection to the hub cluster"
	}
	return true, ""
}

// followSettleEvents turns settle's one-shot gap and fenced events for this
// node's partitions into states: a gap resolves when its partition has
// nothing left to settle, a fence when the partition is no longer fenced,
// either after alerts.quiet without a repeat.
func (o *ops) followSettleEvents() {
	mine := map[int]bool{}
	for _, p := range o.cfg.SettlePartitions() {
		mine[p] = true
	}
	handle := func(kind string) nats.MsgHandler {
		return func(m *nats.Msg) {
			if m.Header.Get(alert.HdrState) != "" {
				return // a state, maybe our own
			}
			var body map[string]any
			if json.Unmarshal(m.Data, &body) != nil {
				return
			}
			labels := map[string]string{}
			part := -1
			if f, ok := body["partition"].(float64); ok {
				part = int(f)
				if !mine[part] {
					return
				}
				labels["partition"] = strconv.Itoa(part)
			} else if p, ok := body["provider"].(string); ok && wire.ValidToken(p) {
				labels["provider"] = p
			}
			summary := kind + " event"
			if kind == alert.KindGap {
				summary = fmt.Sprintf("batches held behind a gap in an edge's sequence (node %v, provider %v)", body["node"], body["provider"])
			} else if e, ok := body["error"].(string); ok {
				summary = "partition fenced: " + e
			}
			var clear func(time.Time) bool
			if part >= 0 {
				clear = func(time.Time) bool { return o.partitionClear(kind, part) }
			}
			o.mgr.Event(alert.Condition{Kind: kind, Labels: labels, Summary: summary, Details: body}, clear)
		}
	}
	for _, k := range []string{alert.KindGap, alert.KindFenced} {
		sub, err := o.nc.Subscribe(o.subj.Alert(k), handle(k))
		if err != nil {
			o.log.Warn("cannot follow settle events", "kind", k, "error", err)
			continue
		}
		o.subs = append(o.subs, sub)
	}
}

func (o *ops) partitionClear(kind string, part int) bool {
	if kind == alert.KindFenced {
		for _, p := range o.st.Fenced() {
			if p == part {
				return false
			}
		}
		return true
	}
	for _, ps := range o.st.Partitions() {
		if ps.Partition == part {
			return ps.Lag == 0
		}
	}
	return false
}

// runSLA closes SLA windows, records breaches and publishes the windows.
func (o *ops) runSLA() {
	defer o.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	ctx := o.ctx
	failing := false
	for {
		select {
		case <-o.stop:
			return
		case now := <-t.C:
			if o.ing != nil {
				st := o.ing.Stats()
				if !o.ing.WALOpen() || st.BufferedBytes >= st.BudgetBytes {
					o.rec.Down()
				}
			}
			if ws := o.rec.Close(now); len(ws) > 0 {
				o.slaMu.Lock()
				for _, w := range ws {
					o.slaBreach[w.Party] = w.Breaches()
				}
				o.slaMu.Unlock()
				o.slaOut.Add(ws)
			}
			err := o.slaOut.Flush(ctx)
			if err != nil && !failing {
				o.log.Warn("sla windows not published yet; kept", "error", err)
			}
			failing = err != nil
		}
	}
}

func (o *ops) slaConditions(time.Time) []alert.Condition {
	o.slaMu.Lock()
	defer o.slaMu.Unlock()
	var out []alert.Condition
	for p, b := range o.slaBreach {
		if len(b) > 0 {
			out = append(out, alert.Condition{Kind: alert.KindSLA, Labels: map[string]string{"provider": p},
				Summary: fmt.Sprintf("%s missed its SLA in the last window: %v", p, b), Details: map[string]any{"breaches": b}})
		}
	}
	return out
}

// runAnomaly feeds the detector from its queue, ticks it, raises anomaly
// states and records each detection in TALLY_ANOMALIES.
func (o *ops) runAnomaly() {
	defer o.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var dropped uint64
	for {
		var dets []anomaly.Detection
		select {
		case <-o.stop:
			return
		case ob := <-o.detIn:
			if ob.rejected > 0 {
				dets = o.det.Rejected(ob.provider, ob.at, ob.rejected)
			}
			for _, tx := range ob.txs {
				amt, _ := tx.Amount.Abs().Float64()
				dets = append(dets, o.det.Accepted(ob.provider, ob.at, amt, tx.Type == txn.Rollback)...)
			}
		case now := <-t.C:
			dets = o.det.Tick(now)
			o.flushAnomalies()
			if d := o.detDropped.Load(); d != dropped { // rate-limited to one line a second
				o.log.Warn("anomaly detector behind; observations dropped (settlement unaffected)", "dropped_total", d)
				dropped = d
			}
		}
		for _, d := range dets {
			o.mgr.Event(alert.Condition{Kind: alert.KindAnomaly, Labels: map[string]string{"provider": d.Provider, "series": d.Series},
				Summary: d.Summary, Details: map[string]any{"value": d.Value, "baseline": d.Baseline, "score": d.Score, "direction": d.Direction}}, nil)
			if len(o.anomOut) < 1000 {
				o.anomOut = append(o.anomOut, d)
			}
		}
	}
}

// flushAnomalies records detections in TALLY_ANOMALIES (subject
// <prefix>.anomaly.<provider>), the exception records the console lists.
func (o *ops) flushAnomalies() {
	if len(o.anomOut) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(o.ctx, 5*time.Second)
	defer cancel()
	if err := anomaly.EnsureStream(ctx, o.js, o.subj, o.cfg.Streams.Replicas); err != nil {
		return
	}
	for len(o.anomOut) > 0 {
		d := o.anomOut[0]
		if err := anomaly.Publish(ctx, o.js, o.subj, o.cfg.NodeID, d); err != nil {
			return
		}
		o.anomOut = o.anomOut[1:]
	}
}

// watchedCerts is every certificate the node serves or presents (hub client
// port, leaf client port, routes, leafnodes, leaf link, HTTP ingest, audit
// API, its own NATS client) plus alerts.cert_files, each once: all are
// watched for expiry (alert kind cert_expiry).
func watchedCerts(cfg config.Config) []string {
	files := append([]string(nil), cfg.Alerts.CertFiles...)
	add := func(f string) {
		if f != "" && !slices.Contains(files, f) {
			files = append(files, f)
		}
	}
	add(cfg.Hub.TLS.Cert)
	add(cfg.NATS.TLS.Cert)
	add(cfg.Ingest.HTTPTLS.Cert)
	add(cfg.Settle.AuditTLS.Cert)
	add(cfg.Settle.ConsoleTLS.Cert)
	if c := cfg.Hub.Cluster; c != nil {
		add(c.TLS.Cert)
	}
	if l := cfg.Hub.LeafNodes; l != nil {
		add(l.TLS.Cert)
	}
	if l := cfg.Leaf; l != nil {
		add(l.TLS.Cert)
		add(l.ClientTLS.Cert)
	}
	return files
}
