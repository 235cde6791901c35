package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/ingest"
	"github.com/tally-mesh/tally/ingest/adapter"
	"github.com/tally-mesh/tally/internal/badgermem"
	"github.com/tally-mesh/tally/ops/sla"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// Roles a node can run.
const (
	RoleHub    = "hub"
	RoleIngest = "ingest"
	RoleSettle = "settle"
)

// Config is a validated node configuration. Paths are absolute or relative to
// the working directory; durations and sizes are parsed.
type Config struct {
	NodeID   string
	DataDir  string
	Prefix   string
	LogLevel string
	Roles    []string

	Hub     Hub
	NATS    NATS
	Streams Streams
	Ingest  Ingest
	Settle  Settle

	Providers []Provider

	Leaf *Leaf // an edge's embedded leaf server (config/cluster.go); nil = none

	MetricsListen string // host:port of /metrics, /healthz and /readyz (docs/metrics.md); "" = off

	LogFormat  string       // "text" (default) or "json" (config/security.go)
	Encryption Encryption   // at-rest encryption of the WAL and the settle index (config/security.go)
	Alerts     Alerts       // config/ops.go, docs/alerts.md
	SLAs       []sla.Target // per-partner targets, docs/sla.md
	Anomaly    Anomaly
}

// Provider is one configured provider (see ProviderFile).
type Provider struct {
	Name         string
	Dialect      string // "" = canonical
	NATSUser     string // "" = Name, when a password is set
	NATSPassword string
	NATSNkey     string
	HTTPToken    string
	NATSCertUser string // certificate identity mapped to this provider under client_auth = "verify_and_map"
}

// HubUser is a tally node allowed on the embedded hub with full permissions.
type HubUser struct {
	Name     string
	Password string
}

// Auth reports whether the embedded hub requires credentials: as soon as one
// provider has NATS credentials or one node user is configured, every client
// must authenticate (anonymous connections are refused).
func (c Config) Auth() bool {
	if len(c.Hub.NodeUsers) > 0 {
		return true
	}
	for _, p := range c.Providers {
		if p.NATSPassword != "" || p.NATSNkey != "" || p.NATSCertUser != "" {
			return true
		}
	}
	return false
}

// Hub is the embedded nats-server.
type Hub struct {
	Host         string
	Port         int // 0 picks a free port
	SyncAlways   bool
	SyncInterval time.Duration
	MaxStore     int64
	NodeUsers    []HubUser

	Cluster   *Cluster   // nil = a single hub (config/cluster.go)
	LeafNodes *LeafNodes // nil = no leafnode listener

	TLS           ServerTLS // the client port (providers); off = plain TCP (config/security.go)
	MonitorListen string    // host:port of nats-server's HTTP monitoring (/varz, /jsz …); "" = off
}

// NATS is how a node without a hub connects.
type NATS struct {
	URL      string
	User     string
	Password string
	Creds    string
	TLS      TLSFiles // CA to verify the server (ca_file), client certificate (cert_file, key_file)
}

// Streams sizes the JetStream streams.
type Streams struct {
	Create          bool
	Partitions      int
	Replicas        int
	DuplicateWindow time.Duration
	TxMaxAge        time.Duration
	Compression     string // "s2" or "none": how TALLY_TX, TALLY_LEDGER and TALLY_OPLOG store their blocks
}

// Ingest configures the ingest role.
type Ingest struct {
	Limits         txn.Limits
	BatchMax       int
	GroupMax       int
	QueueMax       int   // records waiting for the committer before buffer_full; 0 = 8 × GroupMax
	PendingBytes   int64 // bytes of NATS requests waiting behind one in its subscription before buffer_full without decoding; 0 = ingest.DefaultPendingBytes
	GroupWait      time.Duration
	BudgetBytes    int64
	ForwardBatch   int
	ForwardWindow  int
	PublishTimeout time.Duration
	DLQMax         int

	HTTPListen         string // "" = no HTTP endpoint
	RequestBytes       int64  // largest request, NATS or HTTP; the hub's max_payload derives from it (MaxPayload)
	Retention          time.Duration
	GCInterval         time.Duration
	GCBatch            int
	RetentionHighWater int64 // 0 = half of BudgetBytes
	ReplayMax          int
	ReplayIDsMax       int // ids per replay-by-id request (ingest.replay_ids_max)

	HTTPTLS ServerTLS // HTTPS on http_listen; off = plain HTTP

	// WALMemory bounds the WAL's Badger memtables and caches
	// (ingest.wal_memtable_bytes, wal_memtables, wal_block_cache_bytes,
	// wal_index_cache_bytes).
	WALMemory badgermem.Memory
	// WALCompression: "s2" (default) or "none": how the WAL stores its
	// packed record groups (ingest.wal_compression).
	WALCompression string
}

// Settle configures the settle role.
type Settle struct {
	Rules             string
	Partitions        []int // nil = all
	SegmentMaxEntries int
	SegmentMaxAge     time.Duration
	FetchBatch        int
	OrphanTimeout     time.Duration
	AckWait           time.Duration // unacked inputs are redelivered after this
	Origin            string
	SigningKey        string
	AuditListen       string        // host:port of the read-only audit API; "" = off
	AuditMaxEntries   int           // entries per audit API request
	Leases            bool          // share the partitions with other settle nodes by leases (settle/lease.go); false = static
	LeaseTTL          time.Duration // lease lifetime (TALLY_OWNERS bucket TTL)
	// Pipeline overlaps each partition's commit with filling its next batch
	// (docs/settle.md "Commit pipeline"); false = one batch at a time.
	Pipeline bool

	AuditTLS         ServerTLS    // HTTPS on audit_listen; off = plain HTTP
	AuditTokens      []AuditToken // bearer tokens of the audit API; none = open (loopback only)
	ConsoleListen    string       // host:port of the console (API and web UI, docs/console.md); "" = off
	ConsoleUsers     string       // the console's users file; "" = <data>/console/users.json
	ConsoleTLS       ServerTLS    // HTTPS on console_listen; off = plain HTTP
	ConsoleMaxUpload int64        // largest provider report the console accepts for reconciliation (bytes)
	// ConsoleDualApprovalAbove: an adjustment larger than this (in its
	// currency's units) needs two approvers (docs/console.md).
	ConsoleDualApprovalAbove decimal.Decimal
	// ConsoleReplayWait: how long the console waits for the first edge to
	// answer a replay-by-id request of a reconciliation (recon.AskReplay).
	ConsoleReplayWait time.Duration
	// ConsoleQueue bounds one listing of the case queue: the newest of
	// each source (settle.console_queue_exceptions, _anomalies, _breaks).
	ConsoleQueueExceptions, ConsoleQueueAnomalies, ConsoleQueueBreaks int
	// OplogAckWait: an operator-log forward that takes longer goes to
	// another settle node; OplogPublishTimeout bounds one forward or replay
	// publish (settle/oplog).
	OplogAckWait, OplogPublishTimeout time.Duration

	// IndexMemory bounds the index's Badger memtables and caches
	// (settle.index_memtable_bytes, index_memtables, index_block_cache_bytes,
	// index_index_cache_bytes).
	IndexMemory badgermem.Memory
}

// Default returns the built-in defaults: every role, an embedded hub on a
// loopback port with fsync on every write, 4 partitions.
func Default() Config {
	return Config{
		NodeID:   "node-1",
		DataDir:  "tally-data",
		Prefix:   wire.DefaultPrefix,
		LogLevel: "info",
		Roles:    []string{RoleHub, RoleIngest, RoleSettle},
		Hub:      Hub{Host: "127.0.0.1", Port: 4222, SyncAlways: true, MaxStore: 10 << 30},
		NATS:     NATS{URL: "nats://127.0.0.1:4222"},
		Streams:  Streams{Partitions: 4, Replicas: 1, DuplicateWindow: 2 * time.Minute, Compression: wire.CompressionS2},
		Ingest: Ingest{
			Limits: txn.DefaultLimits(),
			// One set of ingest defaults: the ingest package's, which a
			// node assembled without a config file (tests, bench) also gets.
			BatchMax:       ingest.DefaultBatchMax,
			GroupMax:       ingest.DefaultGroupMax,
			GroupWait:      ingest.DefaultGroupWait,
			BudgetBytes:    ingest.DefaultBudgetBytes,
			ForwardBatch:   ingest.DefaultForwardBatch,
			ForwardWindow:  ingest.DefaultForwardWindow,
			PublishTimeout: ingest.DefaultPublishTimeout,
			DLQMax:         ingest.DefaultDLQMax,
			RequestBytes:   ingest.DefaultRequestBytes,
			Retention:      ingest.DefaultRetention,
			GCInterval:     ingest.DefaultGCInterval,
			GCBatch:        ingest.DefaultGCBatch,
			ReplayMax:      ingest.DefaultReplayMax,
			ReplayIDsMax:   wire.DefaultReplayIDsMax,
			WALMemory:      ingest.DefaultWALMemory,
			WALCompression: wire.CompressionS2,
		},
		Settle: Settle{
			SegmentMaxEntries: 2000,
			SegmentMaxAge:     200 * time.Millisecond,
			FetchBatch:        256,
			IndexMemory:       settle.DefaultIndexMemory,
			OrphanTimeout:     24 * time.Hour,
			AckWait:           60 * time.Second,
			Pipeline:          true, // on since its kill -9 test (TestSettlePipelineKill9Loop) passes
			Origin:            "tally.example/ledger",
			SigningKey:        "",
			AuditListen:       "", // off unless asked for
			AuditMaxEntries:   1000,
			ConsoleMaxUpload:  DefaultConsoleMaxUpload,
			LeaseTTL:          6 * time.Second,

			ConsoleDualApprovalAbove: decimal.NewFromInt(10000),
			ConsoleReplayWait:        2 * time.Second,
			ConsoleQueueExceptions:   1000,
			ConsoleQueueAnomalies:    200,
			ConsoleQueueBreaks:       5000,
			OplogAckWait:             30 * time.Second,
			OplogPublishTimeout:      10 * time.Second,
		},
		LogFormat:  LogText,
		Encryption: Encryption{Rotation: DefaultKeyRotation},
		Alerts:     DefaultAlerts(),
		Anomaly:    DefaultAnomaly(),
	}
}

// Has reports whether the node runs role r.
func (c Config) Has(r string) bool { return slices.Contains(c.Roles, r) }

// Path resolves p against the data directory unless it is absolute.
func (c Config) Path(p ...string) string {
	j := filepath.Join(p...)
	if filepath.IsAbs(j) {
		return j
	}
	return filepath.Join(append([]string{c.DataDir}, p...)...)
}

// HubDir, WALDir, IndexDir, LedgerDir are the data directory's parts.
func (c Config) HubDir() string    { return c.Path("hub") }
func (c Config) WALDir() string    { return c.Path("ingest", "wal") }
func (c Config) IndexDir() string  { return c.Path("settle", "index") }
func (c Config) LedgerDir() string { return c.Path("ledger") }

// ConsoleUsersPath is the console's users file.
func (c Config) ConsoleUsersPath() string {
	if c.Settle.ConsoleUsers != "" {
		return c.Settle.ConsoleUsers
	}
	return c.Path("console", "users.json")
}

// StatementsDir is where `tally statements` writes.
func (c Config) StatementsDir() string { return c.Path("statements") }

// ReconciliationsDir holds the kept reconciliations (recon.Store), written by
// `tally reconcile` and the console's upload.
func (c Config) ReconciliationsDir() string { return c.Path("reconciliations") }

// DefaultConsoleMaxUpload is settle.console_max_upload's default.
const DefaultConsoleMaxUpload = 32 << 20

// KeyPath is the ledger signing key file.
func (c Config) KeyPath() string {
	if c.Settle.SigningKey != "" {
		return c.Settle.SigningKey
	}
	return c.Path("keys", "ledger.key")
}

// SettlePartitions lists the partitions this node settles.
func (c Config) SettlePartitions() []int {
	if len(c.Settle.Partitions) > 0 {
		return c.Settle.Partitions
	}
	out := make([]int, c.Streams.Partitions)
	for i := range out {
		out[i] = i
	}
	return out
}

// Validate checks cross-field rules of a Config built in code (Load runs the
// same checks with file positions).
func (c Config) Validate() error {
	var errs Errors
	c.check(func(key, val, fix string) { errs = append(errs, Problem{Key: key, Value: val, Fix: fix}) })
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (c Config) check(bad func(key, val, fix string)) {
	if !wire.ValidToken(c.NodeID) {
		bad("node_id", c.NodeID, "use 1-64 characters from a-z A-Z 0-9 - _")
	} else if reserved(c.NodeID) {
		bad("node_id", c.NodeID, `ids starting with "_" are reserved for the system (`+wire.OpsNode+` posts approved adjustments and FX rates); rename the node`)
	}
	if !wire.ValidToken(c.Prefix) {
		bad("prefix", c.Prefix, "use 1-64 characters from a-z A-Z 0-9 - _")
	}
	if len(c.Roles) == 0 {
		bad("roles", "[]", `name at least one of "hub", "ingest", "settle"`)
	}
	for _, r := range c.Roles {
		if r != RoleHub && r != RoleIngest && r != RoleSettle {
			bad("roles", r, `roles are "hub", "ingest" and "settle"`)
		}
	}
	if c.Streams.Partitions < 1 || c.Streams.Partitions > 1024 {
		bad("streams.partitions", fmt.Sprint(c.Streams.Partitions), "use 1-1024; it is fixed once the stream exists")
	}
	if c.Streams.Replicas != 1 && c.Streams.Replicas != 3 && c.Streams.Replicas != 5 {
		bad("streams.replicas", fmt.Sprint(c.Streams.Replicas), "use 1 (embedded hub), 3 or 5")
	}
	if c.Streams.Compression != wire.CompressionS2 && c.Streams.Compression != wire.CompressionNone {
		bad("streams.compression", strconv.Quote(c.Streams.Compression), `use "s2" (default) or "none"`)
	}
	if c.Settle.Leases && len(c.Settle.Partitions) > 0 {
		bad("settle.partitions", fmt.Sprint(c.Settle.Partitions), "with settle.leases = true the partitions are shared by lease; remove settle.partitions")
	}
	if c.Settle.LeaseTTL < time.Second || c.Settle.LeaseTTL > 5*time.Minute {
		bad("settle.lease_ttl", c.Settle.LeaseTTL.String(), `use a duration between "1s" and "5m" such as "6s"`)
	}
	for _, p := range c.Settle.Partitions {
		if p < 0 || p >= c.Streams.Partitions {
			bad("settle.partitions", fmt.Sprint(p), fmt.Sprintf("partitions are 0-%d", c.Streams.Partitions-1))
		}
	}
	positive := []struct {
		key string
		v   int
	}{
		{"ingest.payload_bytes", c.Ingest.Limits.PayloadBytes}, {"ingest.batch_max", c.Ingest.BatchMax},
		{"ingest.id_len", c.Ingest.Limits.IDLen}, {"ingest.field_len", c.Ingest.Limits.FieldLen},
		{"ingest.meta_keys", c.Ingest.Limits.MetaKeys}, {"ingest.meta_bytes", c.Ingest.Limits.MetaBytes},
		{"ingest.group_max", c.Ingest.GroupMax}, {"ingest.forward_batch", c.Ingest.ForwardBatch},
		{"ingest.forward_window", c.Ingest.ForwardWindow}, {"ingest.dlq_max", c.Ingest.DLQMax},
		{"settle.segment_max_entries", c.Settle.SegmentMaxEntries}, {"settle.fetch_batch", c.Settle.FetchBatch},
	}
	for _, p := range positive {
		if p.v <= 0 {
			bad(p.key, fmt.Sprint(p.v), "use a positive number")
		}
	}
	if q := c.Ingest.QueueMax; q != 0 && q < c.Ingest.GroupMax {
		bad("ingest.queue_max", fmt.Sprint(q), fmt.Sprintf("use 0 (8 × ingest.group_max) or at least ingest.group_max (%d)", c.Ingest.GroupMax))
	}
	if q := c.Ingest.PendingBytes; q < 0 || q > 1<<30 {
		bad("ingest.pending_bytes", fmt.Sprint(q), `use 0 (the default, "1MiB") or up to "1GiB"`)
	}
	checkMemory(bad, "ingest.wal_", c.Ingest.WALMemory, 16<<20)
	if c.Ingest.WALCompression != wire.CompressionS2 && c.Ingest.WALCompression != wire.CompressionNone {
		bad("ingest.wal_compression", strconv.Quote(c.Ingest.WALCompression), `use "s2" (default) or "none"`)
	}
	checkMemory(bad, "settle.index_", c.Settle.IndexMemory, badgermem.MinMemTableBytes)
	if c.Ingest.BudgetBytes < 1<<20 {
		bad("ingest.budget_bytes", fmt.Sprint(c.Ingest.BudgetBytes), `use at least "1MiB"`)
	}
	if !c.Ingest.Limits.AmountMax.IsPositive() {
		bad("ingest.amount_max", c.Ingest.Limits.AmountMax.String(), `use a positive decimal string such as "1000000000000"`)
	}
	if c.Settle.SegmentMaxAge <= 0 {
		bad("settle.segment_max_age", c.Settle.SegmentMaxAge.String(), `use a positive duration such as "200ms"`)
	}
	if c.Settle.AckWait < time.Second || c.Settle.AckWait > time.Hour {
		bad("settle.ack_wait", c.Settle.AckWait.String(), `use a duration between "1s" and "1h" such as "60s"`)
	}
	if c.Settle.AuditListen != "" {
		if _, _, err := splitHostPort(c.Settle.AuditListen); err != nil {
			bad("settle.audit_listen", c.Settle.AuditListen, `use host:port such as "127.0.0.1:7380" (port 0 picks one), or "" for off`)
		}
	}
	if c.MetricsListen != "" {
		if _, _, err := splitHostPort(c.MetricsListen); err != nil {
			bad("metrics_listen", c.MetricsListen, `use host:port such as "127.0.0.1:9464" (port 0 picks one), or "" for off`)
		}
	}
	if c.Settle.ConsoleListen != "" {
		if _, _, err := splitHostPort(c.Settle.ConsoleListen); err != nil {
			bad("settle.console_listen", c.Settle.ConsoleListen, `use host:port such as "127.0.0.1:7390" (port 0 picks one), or "" for off`)
		}
	}
	if c.Settle.ConsoleMaxUpload < 1<<10 || c.Settle.ConsoleMaxUpload > 1<<30 {
		bad("settle.console_max_upload", fmt.Sprint(c.Settle.ConsoleMaxUpload), `use a size from "1KiB" to "1GiB"`)
	}
	if c.Settle.ConsoleDualApprovalAbove.IsNegative() {
		bad("settle.console_dual_approval_above", c.Settle.ConsoleDualApprovalAbove.String(), `use a decimal string ≥ 0 such as "10000"`)
	}
	for _, k := range []struct {
		key string
		v   int
	}{{"settle.console_queue_exceptions", c.Settle.ConsoleQueueExceptions}, {"settle.console_queue_anomalies", c.Settle.ConsoleQueueAnomalies},
		{"settle.console_queue_breaks", c.Settle.ConsoleQueueBreaks}} {
		if k.v < 1 || k.v > 100000 {
			bad(k.key, fmt.Sprint(k.v), "use 1-100000")
		}
	}
	for _, k := range []struct {
		key string
		v   time.Duration
	}{{"settle.console_replay_wait", c.Settle.ConsoleReplayWait}, {"settle.oplog_ack_wait", c.Settle.OplogAckWait},
		{"settle.oplog_publish_timeout", c.Settle.OplogPublishTimeout}} {
		if k.v < 100*time.Millisecond || k.v > 10*time.Minute {
			bad(k.key, k.v.String(), `use a duration from "100ms" to "10m"`)
		}
	}
	if c.Settle.AuditMaxEntries < 1 || c.Settle.AuditMaxEntries > 100000 {
		bad("settle.audit_max_entries", fmt.Sprint(c.Settle.AuditMaxEntries), "use 1-100000")
	}
	if c.Has(RoleSettle) && c.Settle.Rules == "" {
		bad("settle.rules", `""`, "point settle.rules at a rule file (see settle/rules/testdata/example.hcl)")
	}
	if !c.Has(RoleHub) && c.NATS.URL == "" {
		bad("nats.url", `""`, "set nats.url, or add the hub role to run an embedded server")
	}
	c.checkIdentity(bad)
	c.checkCluster(bad)
	c.checkSecurity(bad)
	c.checkOps(bad)
}

// checkIdentity validates providers, node users and the ingest keys of issue 3.
func (c Config) checkIdentity(bad func(key, val, fix string)) {
	for _, p := range []struct {
		key string
		v   int
	}{{"ingest.gc_batch", c.Ingest.GCBatch}, {"ingest.replay_max", c.Ingest.ReplayMax}, {"ingest.replay_ids_max", c.Ingest.ReplayIDsMax}} {
		if p.v <= 0 {
			bad(p.key, fmt.Sprint(p.v), "use a positive number")
		}
	}
	c.checkLimits(bad)
	if c.Ingest.Retention <= 0 {
		bad("ingest.retention", c.Ingest.Retention.String(), `use a positive duration such as "24h": forwarded records are kept this long for replay`)
	}
	if c.Ingest.GCInterval <= 0 {
		bad("ingest.gc_interval", c.Ingest.GCInterval.String(), `use a positive duration such as "1m"`)
	}
	if c.Ingest.RetentionHighWater < 0 || c.Ingest.RetentionHighWater > c.Ingest.BudgetBytes {
		bad("ingest.retention_high_water", fmt.Sprint(c.Ingest.RetentionHighWater), "use a size below ingest.budget_bytes (default: half of it)")
	}
	users := map[string]string{} // NATS user name → who has it
	tokens := map[string]string{}
	seen := map[string]bool{}
	for _, h := range c.Hub.NodeUsers {
		key := "hub.node_user." + h.Name + ".password"
		if h.Name == "" || strings.ContainsAny(h.Name, " \t\n") {
			bad("hub.node_user", strconv.Quote(h.Name), "name a node user without spaces")
		}
		if len(h.Password) < 8 {
			bad(key, `"…"`, "use a password of at least 8 characters")
		}
		if other, dup := users[h.Name]; dup {
			bad("hub.node_user", strconv.Quote(h.Name), "this NATS user name is already used by "+other)
		}
		users[h.Name] = "node user " + h.Name
	}
	for _, p := range c.Providers {
		key := "provider." + p.Name
		if !wire.ValidToken(p.Name) {
			bad(key, strconv.Quote(p.Name), "name a provider with 1-64 characters from a-z A-Z 0-9 - _ (it is a subject token)")
		} else if reserved(p.Name) {
			bad(key, strconv.Quote(p.Name), `provider names starting with "_" are reserved for the system (`+wire.OpsProvider+` posts approved adjustments and FX rates); rename the provider`)
		}
		if seen[p.Name] {
			bad(key, strconv.Quote(p.Name), "each provider once")
		}
		seen[p.Name] = true
		if p.Dialect != "" {
			if _, ok := adapter.Lookup(p.Dialect); !ok {
				bad(key+".dialect", strconv.Quote(p.Dialect), "use one of "+strings.Join(adapter.Names(), ", "))
			}
		}
		if p.NATSPassword != "" && p.NATSNkey != "" {
			bad(key+".nats_nkey", strconv.Quote(p.NATSNkey), "give a provider either nats_password or nats_nkey, not both")
		}
		if p.NATSNkey != "" && !nkeys.IsValidPublicUserKey(p.NATSNkey) {
			bad(key+".nats_nkey", strconv.Quote(p.NATSNkey), `use the provider's public user nkey ("U…", from nk -gen user -pubout)`)
		}
		if p.NATSPassword != "" && len(p.NATSPassword) < 8 {
			bad(key+".nats_password", `"…"`, "use a password of at least 8 characters (or a bcrypt hash)")
		}
		if p.NATSPassword != "" {
			u := p.NATSUser
			if u == "" {
				u = p.Name
			}
			if other, dup := users[u]; dup {
				bad(key+".nats_user", strconv.Quote(u), "this NATS user name is already used by "+other)
			}
			users[u] = "provider " + p.Name
		}
		if p.HTTPToken != "" {
			if len(p.HTTPToken) < 16 {
				bad(key+".http_token", `"…"`, "use a random token of at least 16 characters")
			}
			if other, dup := tokens[p.HTTPToken]; dup {
				bad(key+".http_token", `"…"`, "provider "+other+" has the same token; each provider needs its own")
			}
			tokens[p.HTTPToken] = p.Name
		}
	}
}

// MaxPayload is the max_payload of the embedded hub and the largest message
// of TALLY_TX: one request (ingest.request_bytes) plus room for headers. The
// forwarder sizes batches to the server's max_payload minus the same room, so
// a forwarded batch always fits (docs/config.md, "Limits").
func (c Config) MaxPayload() int64 { return c.Ingest.RequestBytes + wire.HeaderRoom }

// maxRequestBytes keeps MaxPayload within NATS's max_pending (64 MiB).
const maxRequestBytes = 64<<20 - wire.HeaderRoom

// checkLimits checks that the size limits are one coherent set.
func (c Config) checkLimits(bad func(key, val, fix string)) {
	r := c.Ingest.RequestBytes
	if r < 4<<10 || r > maxRequestBytes {
		bad("ingest.request_bytes", fmt.Sprint(r), fmt.Sprintf(`use "4KiB" to %d bytes (64MiB less 4KiB for headers: the hub's max_payload is request_bytes + 4KiB)`, maxRequestBytes))
		return
	}
	if c.Ingest.Limits.PayloadBytes > 0 {
		if rec := wire.MaxRecordBytes(c.Ingest.Limits.PayloadBytes); r < rec {
			bad("ingest.request_bytes", fmt.Sprint(r), fmt.Sprintf("use at least %d: one forwarded record of a %d-byte payload (ingest.payload_bytes) can take up to 6×payload_bytes+548 bytes, and a forwarded batch is at most request_bytes", rec, c.Ingest.Limits.PayloadBytes))
		}
	}
}

// amount parses a decimal string for a limit.
func amount(s string) (decimal.Decimal, error) { return decimal.NewFromString(s) }

// reserved reports an id the system keeps for itself: anything starting
// with "_" (wire.OpsNode, wire.OpsProvider and any future one).
func reserved(id string) bool { return strings.HasPrefix(id, "_") }

// checkMemory reports each field of a Badger memory budget outside its
// limits (internal/badgermem) under its key prefix+field.
func checkMemory(bad func(key, val, fix string), prefix string, m badgermem.Memory, minMemTable int64) {
	if m.MemTableBytes < minMemTable || m.MemTableBytes > badgermem.MaxMemTableBytes {
		bad(prefix+"memtable_bytes", fmt.Sprint(m.MemTableBytes), fmt.Sprintf("use a size from %d bytes to \"1GiB\", such as \"32MiB\"", minMemTable))
	}
	if m.MemTables < 2 || m.MemTables > badgermem.MaxMemTables {
		bad(prefix+"memtables", fmt.Sprint(m.MemTables), fmt.Sprintf("use 2 to %d", badgermem.MaxMemTables))
	}
	if m.BlockCacheBytes < badgermem.MinCacheBytes {
		bad(prefix+"block_cache_bytes", fmt.Sprint(m.BlockCacheBytes), `use at least "1MiB", such as "16MiB"`)
	}
	if m.IndexCacheBytes < badgermem.MinCacheBytes {
		bad(prefix+"index_cache_bytes", fmt.Sprint(m.IndexCacheBytes), `use at least "1MiB", such as "16MiB"`)
	}
}
