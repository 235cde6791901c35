package sla

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/wire"
)

// DefaultMaxAge keeps 13 months of windows: this month and last year's same month.
const DefaultMaxAge = 400 * 24 * time.Hour

// StreamName is <PREFIX>_SLA.
func StreamName(s wire.Subjects) string { return strings.ToUpper(s.Prefix) + "_SLA" }

// Subject is where a party's windows are published.
func Subject(s wire.Subjects, party string) string { return s.Prefix + ".sla." + party }

// EnsureStream creates TALLY_SLA or updates its limits.
func EnsureStream(ctx context.Context, js jetstream.JetStream, s wire.Subjects, maxAge time.Duration, replicas int) error {
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if replicas <= 0 {
		replicas = 1
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: StreamName(s), Subjects: []string{s.Prefix + ".sla.*"}, Storage: jetstream.FileStorage,
		Replicas: replicas, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		MaxAge: maxAge, Duplicates: 10 * time.Minute, AllowDirect: true,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamName(s), err)
	}
	return nil
}

// Outbox publishes windows to TALLY_SLA in order, keeping those not yet
// acknowledged (at most Max; the oldest are dropped and counted).
type Outbox struct {
	JS       jetstream.JetStream
	Subjects wire.Subjects
	MaxAge   time.Duration
	Replicas int
	Max      int

	mu      sync.Mutex
	pending []Window
	dropped uint64
	ensured bool
}

// Add queues windows.
func (o *Outbox) Add(ws []Window) {
	o.mu.Lock()
	defer o.mu.Unlock()
	max := o.Max
	if max <= 0 {
		max = 10000
	}
	o.pending = append(o.pending, ws...)
	if n := len(o.pending) - max; n > 0 {
		o.pending = o.pending[n:]
		o.dropped += uint64(n)
	}
}

// Flush publishes until the queue is empty or a publish fails.
func (o *Outbox) Flush(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.ensured && len(o.pending) > 0 {
		if err := EnsureStream(ctx, o.JS, o.Subjects, o.MaxAge, o.Replicas); err != nil {
			return err
		}
		o.ensured = true
	}
	for len(o.pending) > 0 {
		w := o.pending[0]
		b, err := json.Marshal(w)
		if err != nil {
			return err
		}
		m := nats.NewMsg(Subject(o.Subjects, w.Party))
		m.Data = b
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = o.JS.PublishMsg(pctx, m, jetstream.WithMsgID(fmt.Sprintf("%s.%s.%d", w.Node, w.Party, w.Start.UnixNano())))
		cancel()
		if err != nil {
			if errors.Is(err, jetstream.ErrNoStreamResponse) {
				o.ensured = false
			}
			return err
		}
		o.pending = o.pending[1:]
	}
	return nil
}

// Load reads the windows of [from, to) from TALLY_SLA (party "" = all).
func Load(ctx context.Context, js jetstream.JetStream, s wire.Subjects, party string, from, to time.Time) ([]Window, error) {
	st, err := js.Stream(ctx, StreamName(s))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", StreamName(s), err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	filter := s.Prefix + ".sla.*"
	if party != "" {
		filter = Subject(s, party)
	}
	// Windows are published after they end, possibly late (an outage):
	// start from well before the period and filter by window start.
	start := from.Add(-48 * time.Hour)
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start})
	if err != nil {
		return nil, err
	}
	var out []Window
	last := info.State.LastSeq
	for last > 0 {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			return nil, err
		}
		n := 0
		var seq uint64
		for m := range batch.Messages() {
			n++
			md, _ := m.Metadata()
			if md != nil {
				seq = md.Sequence.Stream
			}
			var w Window
			if err := json.Unmarshal(m.Data(), &w); err != nil {
				return nil, fmt.Errorf("window at %d: %w", seq, err)
			}
			if !w.Start.Before(from) && w.Start.Before(to) {
				out = append(out, w)
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n == 0 || seq >= last {
			break
		}
	}
	return out, nil
}
