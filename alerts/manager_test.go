package alerts

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// recorder is a Publisher that keeps what it was given and can be made to fail.
type recorder struct {
	mu   sync.Mutex
	got  []Alert
	fail bool
}

func (r *recorder) Publish(_ context.Context, a Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("hub away")
	}
	r.got = append(r.got, a)
	return nil
}

func (r *recorder) states() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.got {
		out = append(out, a.Kind+"/"+a.Key()+"/"+a.State)
	}
	return out
}

func eq(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestConditionFiresAndResolves(t *testing.T) {
	t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	pub := &recorder{}
	gauge := map[string]int{}
	m := NewManager(Config{Node: "n1", Firing: func(k string, n int) { gauge[k] = n }}, pub)
	up := true
	m.Add(NodeEvaluator(Thresholds{HubUnreachable: 10 * time.Second}, func() Snapshot { return Snapshot{HubUp: up, HubDetail: "refused"} }))
	ctx := context.Background()
	m.Tick(t0)
	up = false
	m.Tick(t0.Add(5 * time.Second)) // down, below the threshold
	m.Flush(ctx)
	eq(t, pub.states())
	pub.fail = true // the hub is away: transitions wait in the outbox
	m.Tick(t0.Add(16 * time.Second))
	m.Tick(t0.Add(20 * time.Second)) // still firing: no new transition
	if gauge[KindHubUnreachable] != 1 {
		t.Fatalf("gauge %v", gauge)
	}
	up = true
	m.Tick(t0.Add(25 * time.Second))
	if err := m.Flush(ctx); err == nil {
		t.Fatal("flush succeeded while the publisher fails")
	}
	if n, _ := m.Pending(); n != 2 {
		t.Fatalf("pending %d, want 2", n)
	}
	pub.fail = false
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	eq(t, pub.states(), "hub_unreachable//firing", "hub_unreachable//resolved")
	r := pub.got[1]
	if !r.Since.Equal(t0.Add(16*time.Second)) || r.Until == nil || !r.Until.Equal(t0.Add(25*time.Second)) {
		t.Fatalf("resolved %+v", r)
	}
	if pub.got[0].ID() == r.ID() {
		t.Fatal("firing and resolved share a message id")
	}
	if gauge[KindHubUnreachable] != 0 {
		t.Fatalf("gauge %v", gauge)
	}
}

func TestEventResolvesOnClearOrQuiet(t *testing.T) {
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	pub := &recorder{}
	m := NewManager(Config{Node: "n1", Quiet: time.Minute, Now: func() time.Time { return now }}, pub)
	closed := false
	m.Event(Condition{Kind: KindGap, Labels: map[string]string{"partition": "1"}}, func(time.Time) bool { return closed })
	m.Event(Condition{Kind: KindAnomaly, Labels: map[string]string{"provider": "p1", "series": "volume"}}, nil)
	now = now.Add(30 * time.Second)
	m.Event(Condition{Kind: KindGap, Labels: map[string]string{"partition": "1"}}, func(time.Time) bool { return closed }) // again: same state
	m.Tick(now)
	closed = true
	now = now.Add(5 * time.Second)
	m.Tick(now) // the gap closed
	now = now.Add(30 * time.Second)
	m.Tick(now) // anomaly quiet for 65s
	m.Flush(context.Background())
	eq(t, pub.states(), "gap/partition=1/firing", "anomaly/provider=p1 series=volume/firing", "gap/partition=1/resolved", "anomaly/provider=p1 series=volume/resolved")
}

func TestOutboxBounded(t *testing.T) {
	pub := &recorder{fail: true}
	m := NewManager(Config{Node: "n1", OutboxMax: 3, Quiet: time.Hour}, pub)
	for _, p := range []string{"a", "b", "c", "d", "e"} {
		m.Event(Condition{Kind: KindAnomaly, Labels: map[string]string{"provider": p}}, nil)
	}
	n, dropped := m.Pending()
	if n != 3 || dropped != 2 {
		t.Fatalf("pending %d dropped %d, want 3 and 2", n, dropped)
	}
	pub.fail = false
	m.Flush(context.Background())
	eq(t, pub.states(), "anomaly/provider=c/firing", "anomaly/provider=d/firing", "anomaly/provider=e/firing")
}

func TestRate(t *testing.T) {
	var r rate
	t0 := time.Unix(0, 0)
	if _, ok := r.add(t0, 10); ok {
		t.Fatal("first sample has no rate")
	}
	for i := 1; i <= 30; i++ { // 1 per 5s for 150s
		n, _ := r.add(t0.Add(time.Duration(i)*5*time.Second), uint64(10+i))
		if i >= 12 && n != 12 {
			t.Fatalf("at %d: %d within the last minute, want 12", i, n)
		}
	}
}
