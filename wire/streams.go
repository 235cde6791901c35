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
	// Compression is how the three streams store their message blocks:
	// CompressionS2 (also when empty) or CompressionNone. The server compresses
	// a block when it is full (8 MiB) and reads each block by the algorithm
	// written in it, so the setting can change on an existing stream.
	Compression string
}

// The values of StreamOptions.Compression (config key streams.compression).
const (
	CompressionS2   = "s2"
	CompressionNone = "none"
)

// StoreCompression maps a StreamOptions.Compression value to JetStream's.
func StoreCompression(s string) (jetstream.StoreCompression, error) {
	switch s {
	case "", CompressionS2:
		return jetstream.S2Compression, nil
	case CompressionNone:
		return jetstream.NoCompression, nil
	}
	return 0, fmt.Errorf("stream compression %q: use %q or %q", s, CompressionS2, CompressionNone)
}

// EnsureStreams creates TALLY_TX, TALLY_LEDGER and TALLY_OPLOG, or checks that existing ones
// have the same partitioning. It never changes an existing stream's subjects; the one setting
// it changes on an existing stream is its compression (see ensure).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, s Subjects, o StreamOptions) error {
	if o.Partitions < 1 {
		return fmt.Errorf("ensure streams: partitions must be >= 1, got %d", o.Partitions)
	}
	comp, err := StoreCompression(o.Compression)
	if err != nil {
		return fmt.Errorf("ensure streams: %w", err)
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
		Compression: comp,
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
		if err := ensure(ctx, js, keptForever(name[0], name[1], o, comp), nil); err != nil {
			return err
		}
	}
	return nil
}

// keptForever is a stream that keeps every message: no limits, no delete
// or purge, a full store refuses new messages rather than dropping old ones.
func keptForever(name, subject string, o StreamOptions, comp jetstream.StoreCompression) jetstream.StreamConfig {
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
		Compression: comp,
	}
}

// ensure creates cfg's stream, or runs check on the existing one and then
// brings its compression to cfg's. Compression is the one setting changed in
// place: JetStream allows the update, every block records the algorithm it was
// written with, and no message is rewritten or lost. nats-server 2.15 applies
// the new setting to blocks sealed after it next loads the stream (a restart
// of the server, or a new stream leader); blocks already on disk stay as they
// are. A server that does not keep the setting (older than 2.10) is refused
// with a hint rather than silently storing the streams another way.
func ensure(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, check func(jetstream.StreamConfig) error) error {
	st, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, cfg)
		if err != nil {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
		return kept(st.CachedInfo().Config, cfg)
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	have := st.CachedInfo().Config
	if check != nil {
		if err := check(have); err != nil {
			return err
		}
	}
	if have.Compression == cfg.Compression {
		return nil
	}
	have.Compression = cfg.Compression
	st, err = js.UpdateStream(ctx, have)
	if err != nil {
		return fmt.Errorf("stream %s: set compression %s: %w", cfg.Name, cfg.Compression, err)
	}
	return kept(st.CachedInfo().Config, cfg)
}

// kept checks that the server stored the compression asked for.
func kept(got, want jetstream.StreamConfig) error {
	if got.Compression != want.Compression {
		return fmt.Errorf("stream %s: the server stores compression %s, not %s (nats-server >= 2.10 supports s2; or set streams.compression = %q)",
			want.Name, got.Compression, want.Compression, CompressionNone)
	}
	return nil
}
