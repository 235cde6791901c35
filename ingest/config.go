package ingest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/tally-mesh/tally/ingest/adapter"
	"github.com/tally-mesh/tally/internal/badgermem"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// Config configures an ingest node. Zero values take the documented defaults.
type Config struct {
	NodeID         string        // subject token of this edge node (wire.ValidToken)
	Subjects       wire.Subjects // subject scheme; zero means wire.NewSubjects("")
	Limits         txn.Limits    // per-transaction limits for txn.Decode
	BatchMax       int           // max transactions per request (default 1000)
	WALDir         string        // Badger directory of the WAL (required)
	GroupMax       int           // group commit: max records per Badger txn (default 1000)
	GroupWait      time.Duration // group commit: max wait to fill a group (default 2ms)
	BudgetBytes    int64         // answer buffer_full when a record would take the logical WAL size past this (default 1 GiB)
	QueueMax       int           // answer buffer_full at once when this many records already wait for the committer (queued, staged or fsyncing; default 8 × GroupMax)
	PendingBytes   int64         // answer buffer_full without decoding when more than this many bytes of NATS requests wait behind one in its subscription (default DefaultPendingBytes)
	ForwardBatch   int           // max records of one provider per JetStream message (default 500)
	ForwardWindow  int           // max un-acked JetStream publishes in flight, all providers together (default 64)
	PublishTimeout time.Duration // a publish without PubAck after this is resent (default 5s)
	DLQMax         int           // dead letters kept; the oldest is dropped past this (default 10000)

	// Providers are the providers this node takes transactions from, by
	// subject token. Empty means any provider token, canonical dialect, NATS
	// only (development; identity then rests on NATS permissions alone). When
	// set, a request for a provider not listed is rejected unknown_provider.
	Providers  map[string]Provider
	HTTPListen string // host:port of the HTTP endpoint; "" = none
	// RequestBytes is the largest request, over NATS or HTTP (default 4 MiB);
	// above it the answer is request_too_large. The hub's max_payload is
	// RequestBytes + wire.HeaderRoom (docs/config.md, "Limits").
	RequestBytes int64
	// HTTPBodyBytes is the old name of RequestBytes: used when RequestBytes
	// is unset, and always equal to it after defaults.
	HTTPBodyBytes int64
	// ClaimReplicas is the replica count of the provider claim bucket when
	// this node creates it (default 1).
	ClaimReplicas int

	Retention          time.Duration // forwarded records (and their dedup keys) are kept this long for replay (default 24h)
	GCInterval         time.Duration // how often retention runs (default 1m)
	GCBatch            int           // records deleted per Badger transaction (default 1000)
	RetentionHighWater int64         // above this many buffered bytes, forwarded records are deleted early, oldest first (default BudgetBytes/2)
	ReplayMax          int           // most records one replay request publishes (default 100000)
	ReplayIDsMax       int           // most ids one replay-by-id request may name (default wire.DefaultReplayIDsMax)

	Observer Observer // metrics hooks (observe.go); nil = none

	// EncryptionKey encrypts the WAL at rest (Badger AES; 16, 24 or 32
	// bytes; nil = plain). KeyRotation is how often Badger makes a new data
	// key under it (0 = Badger's 10 days). docs/security.md.
	EncryptionKey []byte
	KeyRotation   time.Duration
	HTTPTLS       *tls.Config // HTTPS on HTTPListen; nil = plain HTTP

	// WALMemory bounds the WAL's Badger memory: memtables and caches
	// (default DefaultWALMemory; a zero field takes its default).
	WALMemory badgermem.Memory

	// WALCompression is how group values are stored: wire.CompressionS2
	// (default, also "") S2-compressed when that makes them smaller, or
	// wire.CompressionNone. Either way both forms are read (groupcodec.go).
	WALCompression string
}

// DefaultWALMemory is the WAL's Badger memory by default, 128 MiB at most:
// 3 memtables of 32 MiB (a commit may hold 15% of one, 4.8 MiB, room for a
// full group of large records), 16 MiB of block cache (the forwarder reads
// recent groups, mostly still in memtables) and 16 MiB of index cache
// (indices and bloom filters of the SSTs, which hold the dedup keys).
var DefaultWALMemory = badgermem.Memory{MemTableBytes: 32 << 20, MemTables: 3, BlockCacheBytes: 16 << 20, IndexCacheBytes: 16 << 20}

// minWALMemTable: a record of the largest payload (maxPayloadBytes) must fit
// in half of a Badger transaction (15% of a memtable, see wal.txnBytesMax).
const minWALMemTable = 16 << 20

// Provider is one provider's settings on an ingest node.
type Provider struct {
	Dialect string // adapter name (ingest/adapter); "" = adapter.Default
	Token   string // HTTP bearer token; "" = this provider cannot use HTTP
}

// Defaults.
const (
	DefaultBatchMax       = 1000
	DefaultGroupMax       = 1000
	DefaultGroupWait      = 2 * time.Millisecond
	DefaultPendingBytes   = 1 << 20
	DefaultBudgetBytes    = 1 << 30
	DefaultForwardBatch   = 500
	DefaultForwardWindow  = 64
	DefaultPublishTimeout = 5 * time.Second
	DefaultDLQMax         = 10000
	DefaultRequestBytes   = 4 << 20
	DefaultHTTPBodyBytes  = DefaultRequestBytes // old name
	DefaultRetention      = 24 * time.Hour
	DefaultGCInterval     = time.Minute
	DefaultGCBatch        = 1000
	DefaultReplayMax      = 100_000
)

// Hard ceilings: a limit on everything, so a typo in a config cannot make a
// group or a batch unbounded.
const (
	maxBatchMax      = 100_000
	maxGroupMax      = 100_000
	maxGroupWait     = time.Second
	maxPendingBytes  = 1 << 30
	maxForwardBatch  = 100_000
	maxForwardWindow = 4096
	maxDLQ           = 10_000_000
	maxRequestBytes  = 64<<20 - 4<<10 // NATS: max_payload ≤ max_pending (64 MiB)
	maxGCBatch       = 100_000
	maxReplay        = 10_000_000
	maxReplayIDs     = 10_000 // ids of at most txn.MaxIDLen bytes must fit one NATS request
)

func (c Config) withDefaults() Config {
	if c.Subjects.Prefix == "" {
		c.Subjects = wire.NewSubjects("")
	}
	if c.BatchMax <= 0 {
		c.BatchMax = DefaultBatchMax
	}
	if c.GroupMax <= 0 {
		c.GroupMax = DefaultGroupMax
	}
	if c.GroupWait <= 0 {
		c.GroupWait = DefaultGroupWait
	}
	if c.BudgetBytes <= 0 {
		c.BudgetBytes = DefaultBudgetBytes
	}
	if c.QueueMax <= 0 {
		c.QueueMax = 8 * c.GroupMax
	}
	if c.PendingBytes <= 0 {
		c.PendingBytes = DefaultPendingBytes
	}
	if c.ForwardBatch <= 0 {
		c.ForwardBatch = DefaultForwardBatch
	}
	if c.ForwardWindow <= 0 {
		c.ForwardWindow = DefaultForwardWindow
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.DLQMax <= 0 {
		c.DLQMax = DefaultDLQMax
	}
	if c.Limits.PayloadBytes <= 0 {
		c.Limits.PayloadBytes = txn.DefaultLimits().PayloadBytes
	}
	if c.RequestBytes <= 0 {
		c.RequestBytes = c.HTTPBodyBytes
	}
	if c.RequestBytes <= 0 {
		c.RequestBytes = DefaultRequestBytes
	}
	c.HTTPBodyBytes = c.RequestBytes
	if c.ClaimReplicas <= 0 {
		c.ClaimReplicas = 1
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.GCInterval <= 0 {
		c.GCInterval = DefaultGCInterval
	}
	if c.GCBatch <= 0 {
		c.GCBatch = DefaultGCBatch
	}
	if c.RetentionHighWater <= 0 {
		c.RetentionHighWater = c.BudgetBytes / 2
	}
	if c.ReplayMax <= 0 {
		c.ReplayMax = DefaultReplayMax
	}
	if c.ReplayIDsMax <= 0 {
		c.ReplayIDsMax = wire.DefaultReplayIDsMax
	}
	c.WALMemory = c.WALMemory.Or(DefaultWALMemory)
	if c.WALCompression == "" {
		c.WALCompression = wire.CompressionS2
	}
	return c
}

// validate reports every problem at once.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !wire.ValidToken(c.NodeID) {
		bad("node id %q must be 1-64 of [A-Za-z0-9_-]", c.NodeID)
	}
	if c.WALDir == "" {
		bad("wal dir is required")
	}
	for _, l := range []struct {
		name   string
		v, max int
	}{{"batch max", c.BatchMax, maxBatchMax}, {"group max", c.GroupMax, maxGroupMax}, {"forward batch", c.ForwardBatch, maxForwardBatch}, {"forward window", c.ForwardWindow, maxForwardWindow}, {"dlq max", c.DLQMax, maxDLQ}, {"gc batch", c.GCBatch, maxGCBatch}, {"replay max", c.ReplayMax, maxReplay}, {"replay ids max", c.ReplayIDsMax, maxReplayIDs}} {
		if l.v > l.max {
			bad("%s %d is above the ceiling %d", l.name, l.v, l.max)
		}
	}
	if c.PendingBytes > maxPendingBytes {
		bad("pending bytes %d is above the ceiling %d", c.PendingBytes, int64(maxPendingBytes))
	}
	if c.GroupWait > maxGroupWait {
		bad("group wait %v is above the ceiling %v", c.GroupWait, maxGroupWait)
	}
	if c.Limits.PayloadBytes > maxPayloadBytes {
		bad("payload limit %d is above %d: a record must fit in a Badger transaction with room for a group", c.Limits.PayloadBytes, maxPayloadBytes)
	}
	if c.RequestBytes > maxRequestBytes {
		bad("request bytes %d is above the ceiling %d (NATS max_payload must stay within 64 MiB)", c.RequestBytes, maxRequestBytes)
	}
	if err := c.WALMemory.Check("ingest.wal_"); err != nil {
		bad("%v", err)
	} else if c.WALMemory.MemTableBytes < minWALMemTable {
		bad("ingest.wal_memtable_bytes %d: use at least 16MiB (a record of the largest payload must fit in one Badger transaction)", c.WALMemory.MemTableBytes)
	}
	if c.WALCompression != "" && c.WALCompression != wire.CompressionS2 && c.WALCompression != wire.CompressionNone {
		bad("wal compression %q: use %q or %q", c.WALCompression, wire.CompressionS2, wire.CompressionNone)
	}
	if c.RetentionHighWater > c.BudgetBytes {
		bad("retention high water %d is above the budget %d", c.RetentionHighWater, c.BudgetBytes)
	}
	tokens := map[string]string{}
	for name, p := range c.Providers {
		if !wire.ValidToken(name) {
			bad("provider %q must be 1-64 of [A-Za-z0-9_-]", name)
		}
		if _, ok := adapter.Lookup(p.dialect()); !ok {
			bad("provider %s: dialect %q is not one of %v", name, p.Dialect, adapter.Names())
		}
		if p.Token != "" {
			if other, dup := tokens[p.Token]; dup {
				bad("providers %s and %s have the same http token; each provider needs its own", other, name)
			}
			tokens[p.Token] = name
		}
	}
	return errors.Join(errs...)
}

func (p Provider) dialect() string {
	if p.Dialect == "" {
		return adapter.Default
	}
	return p.Dialect
}
