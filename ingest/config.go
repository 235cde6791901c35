package ingest

import (
	"errors"
	"fmt"
	"time"

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
	ForwardBatch   int           // max records of one provider per JetStream message (default 500)
	ForwardWindow  int           // max un-acked JetStream publishes in flight, all providers together (default 64)
	PublishTimeout time.Duration // a publish without PubAck after this is resent (default 5s)
	DLQMax         int           // dead letters kept; the oldest is dropped past this (default 10000)
}

// Defaults.
const (
	DefaultBatchMax       = 1000
	DefaultGroupMax       = 1000
	DefaultGroupWait      = 2 * time.Millisecond
	DefaultBudgetBytes    = 1 << 30
	DefaultForwardBatch   = 500
	DefaultForwardWindow  = 64
	DefaultPublishTimeout = 5 * time.Second
	DefaultDLQMax         = 10000
)

// Hard ceilings: a limit on everything, so a typo in a config cannot make a
// group or a batch unbounded.
const (
	maxBatchMax      = 100_000
	maxGroupMax      = 100_000
	maxGroupWait     = time.Second
	maxForwardBatch  = 100_000
	maxForwardWindow = 4096
	maxDLQ           = 10_000_000
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
	}{{"batch max", c.BatchMax, maxBatchMax}, {"group max", c.GroupMax, maxGroupMax}, {"forward batch", c.ForwardBatch, maxForwardBatch}, {"forward window", c.ForwardWindow, maxForwardWindow}, {"dlq max", c.DLQMax, maxDLQ}} {
		if l.v > l.max {
			bad("%s %d is above the ceiling %d", l.name, l.v, l.max)
		}
	}
	if c.GroupWait > maxGroupWait {
		bad("group wait %v is above the ceiling %v", c.GroupWait, maxGroupWait)
	}
	if c.Limits.PayloadBytes > maxPayloadBytes {
		bad("payload limit %d is above %d: a record must fit in a Badger transaction with room for a group", c.Limits.PayloadBytes, maxPayloadBytes)
	}
	return errors.Join(errs...)
}
