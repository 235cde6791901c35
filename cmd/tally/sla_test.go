package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/ops/sla"
	"github.com/tally-mesh/tally/wire"
)

// TestSLACommand: windows stored in TALLY_SLA are reported per partner in
// text, CSV and JSON, filtered by --party and --period.
func TestSLACommand(t *testing.T) {
	s := natstest.Run(t)
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 11, 2, 0, 0, 0, 0, time.UTC)
	tgt := func(p string) sla.Target {
		return sla.Target{Party: p, AckP99: 50 * time.Millisecond, Availability: 0.99, MaxRejectRate: 0.01, MinRequests: 1}
	}
	var ws []sla.Window
	for i := range 10 {
		for _, p := range []string{"acme", "bolt"} {
			w := sla.Window{Party: p, Node: "edge-1", Start: t0.Add(time.Duration(i) * time.Minute), Seconds: 60, Up: true,
				Requests: 10, Accepted: 10, AckCounts: make([]uint64, len(sla.AckBoundsMs)+1), Target: tgt(p)}
			w.AckCounts[2] = 10 // ≤ 1ms
			if p == "bolt" && i == 3 {
				w.Up, w.Rejected = false, 5
			}
			ws = append(ws, w)
		}
	}
	ws = append(ws, sla.Window{Party: "acme", Node: "edge-1", Start: t0.AddDate(0, 1, 0), Seconds: 60, Up: true, Requests: 999, Target: tgt("acme")}) // December
	o := &sla.Outbox{JS: js, Subjects: wire.NewSubjects("")}
	o.Add(ws)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	url := s.ClientURL()

	out, err := runCLI(t, "sla", "--period", "2024-11", "--nats", url)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(out, "acme") || !strings.Contains(out, "NO: availability, reject_rate") || !strings.Contains(out, "publish→ledger p99 is not measured") {
		t.Fatalf("text report:\n%s", out)
	}
	out, err = runCLI(t, "sla", "--period", "2024-11", "--party", "bolt", "--csv", "--nats", url)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "bolt,2024-11-02T00:00:00Z,") || !strings.Contains(lines[1], ",105,5,") || !strings.HasSuffix(lines[1], ",1,false,availability reject_rate") {
		t.Fatalf("csv report:\n%s", out)
	}
	out, err = runCLI(t, "sla", "--period", "2024-11", "--party", "acme", "--json", "--nats", url)
	// Ten minutes of windows in a month that is over: the rest of the month
	// had no windows, so it counts as down (docs/sla.md); December's window
	// is not in November.
	if err != nil || !strings.Contains(out, `"requests":100,`) || !strings.Contains(out, `"missed":["availability"]`) {
		t.Fatalf("json report (%v):\n%s", err, out)
	}
	if _, err := runCLI(t, "sla", "--period", "November", "--nats", url); exitCode(err) != 2 {
		t.Fatalf("bad period: exit %d", exitCode(err))
	}
}
