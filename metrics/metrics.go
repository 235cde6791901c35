package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tally-mesh/tally/ingest"
	"github.com/tally-mesh/tally/settle"
)

// Request statuses of tally_ingest_requests_total.
const (
	StatusAccepted  = "accepted"
	StatusDuplicate = "duplicate"
	StatusRejected  = "rejected"
)

// Stores of tally_fsync_seconds.
const (
	StoreWAL    = "wal"    // the edge's Badger WAL: one group commit
	StoreIndex  = "index"  // the settle index (Badger): one batch commit
	StoreLedger = "ledger" // one ledger segment sealed: hash cache, segment file and directory fsynced
)

// latencyBuckets span 250µs to about 16s, doubling.
var latencyBuckets = prometheus.ExponentialBuckets(0.00025, 2, 17)

// Source is what the scrape-time collector reads. Each method reports false
// when the node does not run that role.
type Source interface {
	IngestStats() (ingest.Stats, bool)
	SettlePartitions() ([]settle.PartitionStats, bool)
}

// Metrics is one node's registry: the Go runtime and process collectors, the
// hot-path families fed by hooks, and (after Watch) the snapshot collector.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	ack      prometheus.Histogram
	fsync    *prometheus.HistogramVec
	settled  *prometheus.CounterVec
}

// New returns a registry with the Go runtime and process collectors and the
// hook-fed families registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_ingest_requests_total",
			Help: "Transactions answered by this ingest process, by provider and status (accepted, duplicate, rejected). Provider _other: not configured on this node.",
		}, []string{"provider", "status"}),
		ack: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_ingest_ack_seconds",
			Help:    "Time from a provider request's arrival to its answer (after the WAL commit and fsync).",
			Buckets: latencyBuckets,
		}),
		fsync: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tally_fsync_seconds",
			Help:    "Duration of one durable write, by store: wal (group commit), index (settle batch commit), ledger (segment sealed).",
			Buckets: latencyBuckets,
		}, []string{"store"}),
		settled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_settled_total",
			Help: "Ledger entries this settle process committed (published and applied), by provider and currency. Entries taken over by catch-up are not counted.",
		}, []string{"provider", "currency"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.ack, m.fsync, m.settled,
	)
	return m
}

// Registry is the registry /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Watch registers the scrape-time collector over src.
func (m *Metrics) Watch(src Source) error { return m.reg.Register(&snapshots{src: src}) }

// InitProviders creates the request series of the given providers at zero,
// so that rate() sees their first transactions.
func (m *Metrics) InitProviders(providers []string) {
	if m == nil {
		return
	}
	for _, p := range providers {
		for _, s := range []string{StatusAccepted, StatusDuplicate, StatusRejected} {
			m.requests.WithLabelValues(p, s)
		}
	}
}

// IngestObserver is the ingest role's hook; nil (no hook) on a nil Metrics.
func (m *Metrics) IngestObserver() ingest.Observer {
	if m == nil {
		return nil
	}
	return ingestObserver{m}
}

// SyncObserver is the settle role's durable-write hook; nil on a nil Metrics.
func (m *Metrics) SyncObserver() func(store string, took time.Duration) {
	if m == nil {
		return nil
	}
	return func(store string, took time.Duration) { m.fsync.WithLabelValues(store).Observe(took.Seconds()) }
}

// SettledObserver is the settle.Config.ObserveSettled hook; nil without
// metrics.
func (m *Metrics) SettledObserver() func(provider, currency string, n int) {
	if m == nil {
		return nil
	}
	return func(provider, currency string, n int) { m.settled.WithLabelValues(provider, currency).Add(float64(n)) }
}

type ingestObserver struct{ m *Metrics }

func (o ingestObserver) Answered(provider string, accepted, duplicates, rejected int, took time.Duration) {
	if accepted > 0 {
		o.m.requests.WithLabelValues(provider, StatusAccepted).Add(float64(accepted))
	}
	if duplicates > 0 {
		o.m.requests.WithLabelValues(provider, StatusDuplicate).Add(float64(duplicates))
	}
	if rejected > 0 {
		o.m.requests.WithLabelValues(provider, StatusRejected).Add(float64(rejected))
	}
	if took > 0 {
		o.m.ack.Observe(took.Seconds())
	}
}

func (o ingestObserver) WALSynced(took time.Duration) {
	o.m.fsync.WithLabelValues(StoreWAL).Observe(took.Seconds())
}

// snapshots is the scrape-time collector: every family below is computed
// from the roles' live snapshots when Prometheus scrapes.
type snapshots struct{ src Source }

var (
	descWALBytes      = prometheus.NewDesc("tally_wal_bytes", "Logical size of the edge WAL (records, dedup keys, dead letters): the figure checked against the budget.", nil, nil)
	descWALBudget     = prometheus.NewDesc("tally_wal_budget_bytes", "Configured WAL budget (ingest.budget_bytes); at it the edge answers buffer_full.", nil, nil)
	descBacklog       = prometheus.NewDesc("tally_forward_backlog_records", "Records committed in the WAL and not yet acknowledged by JetStream.", nil, nil)
	descOldest        = prometheus.NewDesc("tally_forward_oldest_seconds", "Age of the oldest record not yet acknowledged by JetStream (0 when caught up).", nil, nil)
	descRejected      = prometheus.NewDesc("tally_ingest_rejected_total", "Transactions answered rejected by this ingest process, by stable rejection code (docs/ingest-errors.md).", []string{"code"}, nil)
	descGCDeleted     = prometheus.NewDesc("tally_wal_retention_deleted_total", "Forwarded records deleted from the WAL by retention (this process).", nil, nil)
	descLagBatches    = prometheus.NewDesc("tally_settle_lag_batches", "Forwarded batches (JetStream messages of up to ingest.forward_batch records) of this partition not yet settled: pending plus unacknowledged.", []string{"partition"}, nil)
	descLagSeconds    = prometheus.NewDesc("tally_settle_lag_seconds", "How far behind real time this partition's settlement is: from the newest input of its last commit arriving in TALLY_TX to that commit being applied; 0 when nothing is pending.", []string{"partition"}, nil)
	descEntries       = prometheus.NewDesc("tally_settled_entries_total", "Ledger entries committed in this partition (the index's persisted counter).", []string{"partition"}, nil)
	descSegments      = prometheus.NewDesc("tally_settle_segments_total", "Ledger segments sealed in this partition.", []string{"partition"}, nil)
	descSettleDup     = prometheus.NewDesc("tally_settle_duplicates_total", "Records found already settled with the same payload (provider, id), in this partition.", []string{"partition"}, nil)
	descConflicts     = prometheus.NewDesc("tally_settle_conflicts_total", "Records whose (provider, id) was settled with a different payload, in this partition.", []string{"partition"}, nil)
	descExceptions    = prometheus.NewDesc("tally_settle_exceptions_total", "Records kept as exceptions for inspection, in this partition.", []string{"partition"}, nil)
	descGaps          = prometheus.NewDesc("tally_settle_gaps_total", "Gaps detected in an edge's sequence (batches held until it is replayed), in this partition.", []string{"partition"}, nil)
	descOrphansHeld   = prometheus.NewDesc("tally_settle_orphans_held", "Reversals waiting for their parent, in this partition.", []string{"partition"}, nil)
	descSettleRunning = prometheus.NewDesc("tally_settle_partitions", "Partitions this node settles.", nil, nil)
	allSnapshotsDescs = []*prometheus.Desc{descWALBytes, descWALBudget, descBacklog, descOldest, descRejected, descGCDeleted, descLagBatches, descLagSeconds, descEntries, descSegments, descSettleDup, descConflicts, descExceptions, descGaps, descOrphansHeld, descSettleRunning}
)

func (c *snapshots) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allSnapshotsDescs {
		ch <- d
	}
}

func (c *snapshots) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if s, ok := c.src.IngestStats(); ok {
		gauge(descWALBytes, float64(s.BufferedBytes))
		gauge(descWALBudget, float64(s.BudgetBytes))
		gauge(descBacklog, float64(s.ForwardLag))
		gauge(descOldest, s.OldestUnforwarded.Seconds())
		counter(descGCDeleted, s.GCDeleted)
		for code, n := range s.Rejected {
			counter(descRejected, n, code)
		}
	}
	if parts, ok := c.src.SettlePartitions(); ok {
		gauge(descSettleRunning, float64(len(parts)))
		for _, p := range parts {
			l := strconv.Itoa(p.Partition)
			gauge(descLagBatches, float64(p.Lag), l)
			gauge(descLagSeconds, p.LagSeconds, l)
			counter(descEntries, p.Entries, l)
			counter(descSegments, p.Segments, l)
			counter(descSettleDup, p.Duplicates, l)
			counter(descConflicts, p.Conflicts, l)
			counter(descExceptions, p.Exceptions, l)
			counter(descGaps, p.Gaps, l)
			gauge(descOrphansHeld, float64(p.OrphansHeld), l)
		}
	}
}
