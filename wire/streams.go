package wire

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions size the two streams. Partitions is fixed at creation: changing
// it would remap providers to other partitions, so EnsureStreams refuses.
type StreamOptions struct {
	Partitions      int
	Replicas        int           // 1 for the embedded hub, 3 (or 5) on a cluster
	DuplicateWindow time.Duration // trims network duplicates only; exactly-once never depends on it
	TxMaxAge        time.Duration // 0 keeps history forever (replay and audit need it)
	TxMaxBytes      int64         // -1 unlimited
	MaxMsgBytes     int32         // largest forwarded batch
}

// EnsureStreams creates TALLY_TX, TALLY_LEDGER and TALLY_OPLOG, or checks that existing ones
// have the same partitioning. It never changes an existing stream's subjects.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, s Subjects, o StreamOptions) error {
	if o.Partitions < 1 {
		return fmt.Errorf("ensure streams: partitions must be >= 1, got %d", o.Partitions)
	}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = 2 * time.Minute
	}
	if o.TxMaxBytes == 0 {
		o.TxMaxBytes = -1
	}
	tx := jetstream.StreamConfig{
		Name:     s.TxStream(),
		Subjects: []string{s.TxSource()},
		SubjectTransform: &jetstream.SubjectTransformConfig{
			Source: s.TxSource(), Destination: s.TxDest(o.Partitions),
		},
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Retention:   jetstream.LimitsPolicy, // replay and audit need history
		Discard:     jetstream.DiscardNew,   // a full stream rejects; the edge keeps buffering
		Duplicates:  o.DuplicateWindow,
		MaxAge:      o.TxMaxAge,
		MaxBytes:    o.TxMaxBytes,
		MaxMsgSize:  o.MaxMsgBytes,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
	}
	if err := ensure(ctx, js, tx, func(have jetstream.StreamConfig) error {
		if have.SubjectTransform == nil || have.SubjectTransform.Destination != tx.SubjectTransform.Destination {
			return fmt.Errorf("stream %s exists with a different partitioning (%v); partitions is fixed at creation", tx.Name, have.SubjectTransform)
		}
		return nil
	}); err != nil {
		return err
	}
	// The ledger, and the operator log: no age or size limit (the operator
	// log's stream sequence is the edge sequence of the (_tally, _tally)
	// records, so it is never trimmed).
	for _, name := range [][2]string{{s.LedgerStream(), s.LedgerAll()}, {s.OplogStream(), s.Oplog()}} {
		if err := ensure(ctx, js, keptForever(name[0], name[1], o), nil); err != nil {
			return err
		}
	}
	return nil
}

// keptForever is a stream that keeps every message: no limits, no delete
// or purge, a full store refuses new messages rather than dropping old ones.
func keptForever(name, subject string, o StreamOptions) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Subjects:    []string{subject},
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		Duplicates:  o.DuplicateWindow,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
	}
}

func ensure(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, check func(jetstream.StreamConfig) error) error {
	st, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	if check != nil {
		return check(st.CachedInfo().Config)
	}
	return nil
}
