package alerts

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults of Config.
const (
	DefaultInterval       = 5 * time.Second
	DefaultQuiet          = 5 * time.Minute
	DefaultOutboxMax      = 1024
	DefaultPublishTimeout = 5 * time.Second
)

// Condition is one alert condition that holds now.
type Condition struct {
	Kind    string
	Labels  map[string]string
	Summary string
	Details map[string]any
}

// Evaluator computes the conditions of its kinds from a snapshot. Every
// Interval the manager fires the conditions it returns and resolves the
// states of its kinds it no longer returns. Eval runs on the manager's
// goroutine; it must be quick (a stats snapshot, a statfs).
type Evaluator struct {
	Kinds []string
	Eval  func(now time.Time) []Condition
}

// Publisher stores and publishes a transition (StreamPublisher).
type Publisher interface {
	Publish(ctx context.Context, a Alert) error
}

// Sink is told of every transition (Webhook). Notify must not block.
type Sink interface {
	Notify(a Alert)
}

// Config configures a Manager.
type Config struct {
	Node           string
	Interval       time.Duration // evaluation period; 0 = DefaultInterval
	Quiet          time.Duration // an event state without a new event this long resolves; 0 = DefaultQuiet
	OutboxMax      int           // transitions kept while the publisher fails; 0 = DefaultOutboxMax
	PublishTimeout time.Duration // one publish attempt; 0 = DefaultPublishTimeout
	Now            func() time.Time
	// Firing is told how many states of a kind fire after each change
	// (the tally_alerts_firing gauge); nil = none.
	Firing func(kind string, n int)
	Logger hclog.Logger
}

type state struct {
	a        Alert
	event    bool
	lastSeen time.Time
	clear    func(now time.Time) bool
}

// Manager holds the alert states of one node. Safe for concurrent use.
type Manager struct {
	cfg   Config
	pub   Publisher
	sinks []Sink
	log   hclog.Logger

	mu      sync.Mutex
	evals   []Evaluator
	states  map[string]*state // kind "\x00" key
	outbox  []Alert
	dropped uint64
	kinds   map[string]bool // kinds reported to Firing

	flushMu   sync.Mutex // one flush at a time, in outbox order
	kick      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	started   atomic.Bool
	closeOnce sync.Once
	pubFailed bool // flushMu: the last publish failed (logged once per outage)
}

// NewManager returns a manager publishing with pub (nil = states are kept
// and sent to sinks only) and notifying sinks.
func NewManager(cfg Config, pub Publisher, sinks ...Sink) *Manager {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = DefaultQuiet
	}
	if cfg.OutboxMax <= 0 {
		cfg.OutboxMax = DefaultOutboxMax
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Manager{cfg: cfg, pub: pub, sinks: sinks, log: log, states: map[string]*state{}, kinds: map[string]bool{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Add registers an evaluator (before Start).
func (m *Manager) Add(e Evaluator) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evals = append(m.evals, e)
	for _, k := range e.Kinds {
		m.noteKind(k)
	}
}

// Known reports kinds to the Firing hook at zero, so the gauge has a series
// for each before anything fires.
func (m *Manager) Known(kinds ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range kinds {
		m.noteKind(k)
	}
}

func (m *Manager) noteKind(k string) {
	if !m.kinds[k] {
		m.kinds[k] = true
		if m.cfg.Firing != nil {
			m.cfg.Firing(k, m.countLocked(k))
		}
	}
}

// Event raises a one-shot event as a state: it fires (or, already firing,
// refreshes its details and last-seen time) and resolves at the first
// evaluation where clear(now) reports true (nil = never), or once no event
// of the same kind and labels came for Config.Quiet.
func (m *Manager) Event(c Condition, clear func(now time.Time) bool) {
	now := m.cfg.Now()
	m.mu.Lock()
	m.noteKind(c.Kind)
	k := c.Kind + "\x00" + labelKey(c.Labels)
	if st, ok := m.states[k]; ok {
		st.lastSeen, st.clear, st.event = now, clear, true
		st.a.Summary, st.a.Details = c.Summary, c.Details
	} else {
		m.fireLocked(k, c, now, true).clear = clear
	}
	m.mu.Unlock()
	m.poke()
}

func (m *Manager) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Tick evaluates every condition at now and moves states. Start calls it
// every Interval; tests call it with a simulated clock. It does not publish
// (Flush does).
func (m *Manager) Tick(now time.Time) {
	m.mu.Lock()
	evals := append([]Evaluator(nil), m.evals...)
	m.mu.Unlock()
	results := make([][]Condition, len(evals))
	for i, e := range evals {
		results[i] = e.Eval(now) // outside the lock: evaluators read stats and the disk
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, e := range evals {
		seen := map[string]bool{}
		for _, c := range results[i] {
			k := c.Kind + "\x00" + labelKey(c.Labels)
			seen[k] = true
			if st, ok := m.states[k]; ok {
				st.a.Summary, st.a.Details, st.lastSeen = c.Summary, c.Details, now
				continue
			}
			m.fireLocked(k, c, now, false)
		}
		for k, st := range m.states {
			if !st.event && !seen[k] && owns(e, st.a.Kind) {
				m.resolveLocked(k, now)
			}
		}
	}
	for k, st := range m.states {
		if st.event && ((st.clear != nil && st.clear(now)) || now.Sub(st.lastSeen) >= m.cfg.Quiet) {
			m.resolveLocked(k, now)
		}
	}
}

func owns(e Evaluator, kind string) bool {
	for _, k := range e.Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

func (m *Manager) fireLocked(k string, c Condition, now time.Time, event bool) *state {
	a := Alert{Kind: c.Kind, State: Firing, Node: m.cfg.Node, Labels: maps.Clone(c.Labels), Since: now, Summary: c.Summary, Details: c.Details}
	st := &state{a: a, event: event, lastSeen: now}
	m.states[k] = st
	m.log.Warn("alert firing", "kind", a.Kind, "labels", a.Key(), "summary", a.Summary)
	m.emitLocked(a)
	return st
}

func (m *Manager) resolveLocked(k string, now time.Time) {
	st := m.states[k]
	delete(m.states, k)
	a := st.a
	a.State = Resolved
	until := now
	a.Until = &until
	m.log.Info("alert resolved", "kind", a.Kind, "labels", a.Key(), "lasted", now.Sub(a.Since).Round(time.Second))
	m.emitLocked(a)
}

func (m *Manager) emitLocked(a Alert) {
	if m.pub != nil {
		if len(m.outbox) >= m.cfg.OutboxMax {
			m.outbox = m.outbox[1:]
			m.dropped++
		}
		m.outbox = append(m.outbox, a)
	}
	for _, s := range m.sinks {
		s.Notify(a)
	}
	if m.cfg.Firing != nil {
		m.cfg.Firing(a.Kind, m.countLocked(a.Kind))
	}
}

func (m *Manager) countLocked(kind string) int {
	n := 0
	for _, st := range m.states {
		if st.a.Kind == kind {
			n++
		}
	}
	return n
}

// Firing returns the firing states.
func (m *Manager) Firing() []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Alert, 0, len(m.states))
	for _, st := range m.states {
		out = append(out, st.a)
	}
	return out
}

// Pending is the number of transitions not yet published, and how many were
// dropped because the outbox was full.
func (m *Manager) Pending() (pending int, dropped uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.outbox), m.dropped
}

// Flush publishes the outbox in order until it is empty or a publish fails
// (the rest waits for the next flush).
func (m *Manager) Flush(ctx context.Context) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	for {
		m.mu.Lock()
		if len(m.outbox) == 0 {
			m.mu.Unlock()
			if m.pubFailed {
				m.pubFailed = false
				m.log.Info("alerts published again")
			}
			return nil
		}
		a := m.outbox[0]
		m.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, m.cfg.PublishTimeout)
		err := m.pub.Publish(pctx, a)
		cancel()
		if err != nil {
			if !m.pubFailed {
				m.pubFailed = true
				m.log.Warn("alert not published yet; kept in the outbox", "kind", a.Kind, "error", err)
			}
			return err
		}
		m.mu.Lock()
		if len(m.outbox) > 0 && m.outbox[0].ID() == a.ID() {
			m.outbox = m.outbox[1:]
		}
		m.mu.Unlock()
	}
}

// Start runs the evaluation loop until Close.
func (m *Manager) Start() {
	if !m.started.CompareAndSwap(false, true) {
		return
	}
	go m.run()
}

func (m *Manager) run() {
	defer close(m.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.stop
		cancel()
	}()
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Tick(m.cfg.Now())
		case <-m.kick:
		}
		if m.pub != nil {
			if err := m.Flush(ctx); err != nil && errors.Is(err, context.Canceled) {
				return
			}
		}
	}
}

// Close stops the loop and makes one last bounded attempt to publish the
// outbox. Idempotent.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		close(m.stop)
		if m.started.Load() {
			<-m.done
		}
		if m.pub != nil {
			// Bounded by PublishTimeout as a whole, at most 2s: a node
			// stopping during a hub outage does not wait long for it.
			ctx, cancel := context.WithTimeout(context.Background(), min(m.cfg.PublishTimeout, 2*time.Second))
			defer cancel()
			if err := m.Flush(ctx); err != nil {
				n, _ := m.Pending()
				m.log.Warn("alerts not published at shutdown", "pending", n, "error", err)
			}
		}
	})
}
