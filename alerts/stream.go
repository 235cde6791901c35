package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/wire"
)

// Stream defaults (config alerts.max_age, alerts.max_bytes).
const (
	DefaultMaxAge   = 30 * 24 * time.Hour
	DefaultMaxBytes = 256 << 20
	// duplicateWindow covers an outbox retry after a lost PubAck, however
	// long the hub was away from the publisher's point of view.
	duplicateWindow = 10 * time.Minute
)

// StreamName is the durable stream of alert transitions: <PREFIX>_ALERTS.
func StreamName(s wire.Subjects) string { return strings.ToUpper(s.Prefix) + "_ALERTS" }

// StreamOptions sizes TALLY_ALERTS.
type StreamOptions struct {
	MaxAge   time.Duration // 0 = DefaultMaxAge
	MaxBytes int64         // 0 = DefaultMaxBytes
	Replicas int           // 0 = 1
}

// EnsureStream creates TALLY_ALERTS, or updates its limits. It captures
// every subject under <prefix>.alert.>: the states the managers publish and
// the one-shot events settle publishes (no Tally-Alert-State header).
// Limits policy, oldest discarded: alerts are history, never a backlog.
func EnsureStream(ctx context.Context, js jetstream.JetStream, s wire.Subjects, o StreamOptions) error {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName(s),
		Subjects:    []string{s.Prefix + ".alert.>"},
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      o.MaxAge,
		MaxBytes:    o.MaxBytes,
		Duplicates:  duplicateWindow,
		AllowDirect: true,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamName(s), err)
	}
	return nil
}

// StreamPublisher publishes transitions on <prefix>.alert.<kind> through
// JetStream, creating TALLY_ALERTS on first use.
type StreamPublisher struct {
	JS       jetstream.JetStream
	Subjects wire.Subjects
	Options  StreamOptions
	ensured  atomic.Bool
}

// Publish stores a and waits for its PubAck.
func (p *StreamPublisher) Publish(ctx context.Context, a Alert) error {
	if !p.ensured.Load() {
		if err := EnsureStream(ctx, p.JS, p.Subjects, p.Options); err != nil {
			return err
		}
		p.ensured.Store(true)
	}
	m, err := Encode(p.Subjects, a)
	if err != nil {
		return err
	}
	_, err = p.JS.PublishMsg(ctx, m, jetstream.WithMsgID(a.ID()))
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		p.ensured.Store(false) // the stream was deleted: create it again next time
	}
	return err
}

// Encode is a transition as a NATS message.
func Encode(s wire.Subjects, a Alert) (*nats.Msg, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode alert: %w", err)
	}
	m := nats.NewMsg(s.Alert(a.Kind))
	m.Header.Set(HdrState, a.State)
	m.Data = b
	return m, nil
}

// Decode reads a message of TALLY_ALERTS: a transition (state header set)
// or, ok false, a one-shot event body with its kind from the subject.
func Decode(s wire.Subjects, subject string, h nats.Header, data []byte) (a Alert, ok bool, err error) {
	if h.Get(HdrState) == "" {
		kind, _ := strings.CutPrefix(subject, s.Prefix+".alert.")
		return Alert{Kind: kind}, false, nil
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return Alert{}, false, fmt.Errorf("decode alert on %s: %w", subject, err)
	}
	return a, true, nil
}
