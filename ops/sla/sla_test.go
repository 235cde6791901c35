package sla

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// TestWindowsAndReport: two parties measured over three windows, one missing
// (the node was down), stored in TALLY_SLA, read back and aggregated.
func TestWindowsAndReport(t *testing.T) {
	targets := []Target{
		{Party: "acme", AckP99: 10 * time.Millisecond, Availability: 0.99, MaxRejectRate: 0.05, MinRequests: 5},
		{Party: "bolt", AckP99: 10 * time.Millisecond, Availability: 0.5, MaxRejectRate: 0.05, MinRequests: 5},
	}
	r := NewRecorder("edge-1", time.Minute, targets, t0)
	// window 1: both fine
	for range 10 {
		r.Answered("acme", 1, 0, 0, 2*time.Millisecond)
		r.Answered("bolt", 1, 0, 0, 2*time.Millisecond)
	}
	r.Answered("other", 5, 0, 0, time.Second) // not a configured party: ignored
	w1 := r.Close(t0.Add(time.Minute))
	if len(w1) != 2 || len(w1[0].Breaches()) != 0 || len(w1[1].Breaches()) != 0 {
		t.Fatalf("window 1 %+v", w1)
	}
	// window 2: bolt slow and rejecting
	for range 10 {
		r.Answered("acme", 1, 0, 0, 2*time.Millisecond)
		r.Answered("bolt", 0, 0, 1, 300*time.Millisecond)
	}
	w2 := r.Close(t0.Add(2 * time.Minute))
	if b := w2[1].Breaches(); w2[1].Party != "bolt" || len(b) != 2 {
		t.Fatalf("bolt window 2 breaches %q", b)
	}
	// window 3 is never closed (the node was down); window 4 closes late
	w4 := r.Close(t0.Add(4*time.Minute + time.Second))
	if len(w4) != 2 || !w4[0].Start.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("window after the gap %+v", w4)
	}
	w5 := r.Close(t0.Add(5 * time.Minute))
	if !w5[0].Start.Equal(t0.Add(4 * time.Minute)) {
		t.Fatalf("window 5 start %s", w5[0].Start)
	}

	s := natstest.Run(t)
	js, _ := jetstream.New(natstest.Connect(t, s))
	subj := wire.NewSubjects("")
	o := &Outbox{JS: js, Subjects: subj}
	for _, ws := range [][]Window{w1, w2, w4, w5, w1} { // w1 twice: stored once
		o.Add(ws)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	from, to, _ := Period("2026-11")
	got, err := Load(ctx, js, subj, "", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Fatalf("loaded %d windows, want 8", len(got))
	}
	figs := Aggregate(got, from, to, t0.Add(5*time.Minute))
	if len(figs) != 2 {
		t.Fatalf("figures %+v", figs)
	}
	acme, bolt := figs[0], figs[1]
	// 4 windows up of 5 minutes measured
	if acme.Availability != 0.8 || acme.Met || acme.Missed[0] != "availability" || acme.AckP99 != 2*time.Millisecond {
		t.Fatalf("acme %+v", acme)
	}
	if bolt.Availability != 0.8 || bolt.RejectRate != 0.5 || bolt.BreachWins != 1 || bolt.AckP99 != 512*time.Millisecond {
		t.Fatalf("bolt %+v", bolt)
	}
	if len(bolt.Missed) != 2 {
		t.Fatalf("bolt missed %q", bolt.Missed)
	}
	only, err := Load(ctx, js, subj, "bolt", from, to)
	if err != nil || len(only) != 4 {
		t.Fatalf("bolt only: %d windows, %v", len(only), err)
	}
}
