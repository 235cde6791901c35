package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// TestBenchRuns keeps `tally bench` working: a short open-loop run must settle
// every accepted transaction, verify the ledger and report every figure. It
// asserts what was counted, never how fast: speed is for the benchmark itself.
func TestBenchRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a full mesh")
	}
	var out, errb bytes.Buffer
	dir := filepath.Join(t.TempDir(), "bench")
	err := run(context.Background(), []string{"bench", "--duration", "2s", "--rate", "2000", "--providers", "2", "--batch", "10",
		"--half", "1s", "--single", "1s", "--single-window", "4", "--raw", "1s", "--soak", "1s", "--json", "--data", dir, "--keep"}, &out, &errb)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	var r benchResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("bench --json output: %v\n%s", err, out.String())
	}
	t.Logf("sent %d accepted %d settled %d ack p99 %.2fms ledger p99 %.1fms raw %.0f/s disk %.0fB/tx",
		r.Sent, r.Accepted, r.Settled, r.AckP99Ms, r.LedgerP99Ms, r.RawTxS, r.DiskBytesPerTx)
	if r.Sent == 0 || r.Accepted != r.Sent || r.Settled != r.Accepted {
		t.Errorf("sent %d, accepted %d, settled %d: every fresh transaction must be accepted and settled", r.Sent, r.Accepted, r.Settled)
	}
	if !r.Verified {
		t.Errorf("ledger not verified (%d entries)", r.VerifiedEntries)
	}
	if r.AckSamples == 0 || r.AckP50Ms <= 0 || r.AckP99Ms < r.AckP50Ms || r.AckP999Ms < r.AckP99Ms {
		t.Errorf("ack latency samples %d p50 %v p99 %v p99.9 %v: not a distribution", r.AckSamples, r.AckP50Ms, r.AckP99Ms, r.AckP999Ms)
	}
	if r.LedgerSamples == 0 || r.LedgerP99Ms < r.LedgerP50Ms {
		t.Errorf("publish->ledger samples %d p50 %v p99 %v", r.LedgerSamples, r.LedgerP50Ms, r.LedgerP99Ms)
	}
	if r.HubStreamBytes["TALLY_TX"] <= 0 || r.HubStreamBytes["TALLY_LEDGER"] <= 0 || r.HubStreamBytes["TALLY_TX"]+r.HubStreamBytes["TALLY_LEDGER"] > r.DiskBytes["hub"] {
		t.Errorf("hub by stream %v, hub %d: the breakdown is missing or larger than the hub", r.HubStreamBytes, r.DiskBytes["hub"])
	}
	if r.RawTxS <= 0 || r.RatioToRaw <= 0 || r.DiskBytesPerTx <= 0 || r.DiskBytes["ledger"] <= 0 || r.CPUSecondsPer1k <= 0 {
		t.Errorf("raw %v ratio %v disk/tx %v disk %v cpu/1k %v: a figure is missing", r.RawTxS, r.RatioToRaw, r.DiskBytesPerTx, r.DiskBytes, r.CPUSecondsPer1k)
	}
	// The half-of-peak and single-transaction phases run after the peak and
	// report the same figures; every phase's transactions are in the ledger.
	for _, ph := range []*benchPhase{r.Half, r.Single} {
		if ph == nil {
			t.Fatalf("a phase is missing: half %v single %v", r.Half, r.Single)
		}
		if ph.Sent == 0 || ph.Accepted != ph.Sent || ph.Settled != ph.Accepted || ph.AckSamples == 0 || ph.AckP99Ms < ph.AckP50Ms {
			t.Errorf("phase %s: sent %d accepted %d settled %d, %d ack samples", ph.Name, ph.Sent, ph.Accepted, ph.Settled, ph.AckSamples)
		}
	}
	if r.Single.Batch != 1 || r.Single.AckSamples != int(r.Single.Sent) {
		t.Errorf("single phase: batch %d, %d requests for %d transactions", r.Single.Batch, r.Single.AckSamples, r.Single.Sent)
	}
	if r.RawDefaultTxS <= 0 || r.RatioToRawDefault <= 0 || r.MaxRSSBytes <= 0 {
		t.Errorf("raw default %v ratio %v max rss %v: a figure is missing", r.RawDefaultTxS, r.RatioToRawDefault, r.MaxRSSBytes)
	}
	if len(r.Soak) != 1 || r.Soak[0].Settled == 0 || r.Soak[0].AckP99Ms < r.Soak[0].AckP50Ms || r.Soak[0].WALBytes <= 0 || r.Soak[0].IndexBytes <= 0 {
		t.Fatalf("soak rows %+v, want one minute with figures", r.Soak)
	}
	if want := r.Settled + r.Half.Settled + r.Single.Settled + r.Soak[0].Settled; r.SettledTotal != want || r.VerifiedEntries != want {
		t.Errorf("settled %d in all, verified %d, phases add up to %d", r.SettledTotal, r.VerifiedEntries, want)
	}
	if len(r.Targets) != 7 {
		t.Errorf("%d targets reported, want 7 (DESIGN.md §11 and issue 14): %+v", len(r.Targets), r.Targets)
	}
}

func TestParseBenchID(t *testing.T) {
	p := &benchProvider{idx: 3, rng: rand.New(rand.NewPCG(1, 2))}
	for _, c := range []struct {
		id     string
		prov   int
		req    uint64
		wantOK bool
	}{
		{"b3-17-42", 3, 17, true},
		{"b0-0-0", 0, 0, true},
		{"b3-17", 0, 0, false},
		{"x3-17-1", 0, 0, false},
		{"b-1-2-3", 0, 0, false},
		{"", 0, 0, false},
	} {
		prov, req, ok := parseBenchID(c.id)
		if ok != c.wantOK || (ok && (prov != c.prov || req != c.req)) {
			t.Errorf("parseBenchID(%q) = %d, %d, %v", c.id, prov, req, ok)
		}
	}
	// What the generator writes, the watcher reads back.
	body := p.appendTx(nil, 123456, 7)
	var tx struct{ ID string }
	if err := json.Unmarshal(body, &tx); err != nil {
		t.Fatalf("generated %s: %v", body, err)
	}
	if prov, req, ok := parseBenchID(tx.ID); !ok || prov != 3 || req != 123456 {
		t.Errorf("round trip of %q = %d, %d, %v", tx.ID, prov, req, ok)
	}
}

// TestBenchCluster: `tally bench --cluster` runs the same load on a 3-hub
// loopback cluster with R3 streams (issue 11: the cluster figure next to the
// single-node one), settles everything and verifies the ledger.
func TestBenchCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-hub cluster")
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"bench", "--cluster", "--duration", "2s", "--rate", "1000", "--providers", "2", "--batch", "10",
		"--half", "0", "--single", "0", "--raw", "1s", "--json"}, &out, &errb)
	if err != nil {
		t.Fatalf("bench --cluster: %v\n%s", err, errb.String())
	}
	var r benchResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("bench --json output: %v\n%s", err, out.String())
	}
	t.Logf("cluster: hubs %d R%d, sent %d settled %d (%.0f tx/s), ack p99 %.2fms", r.Hubs, r.Replicas, r.Sent, r.Settled, r.SettledTxS, r.AckP99Ms)
	if r.Hubs != 3 || r.Replicas != 3 {
		t.Errorf("hubs %d replicas %d, want a 3-hub cluster with R3 streams", r.Hubs, r.Replicas)
	}
	if r.Sent == 0 || r.Accepted != r.Sent || r.Settled != r.Accepted {
		t.Errorf("sent %d, accepted %d, settled %d: every fresh transaction must be accepted and settled", r.Sent, r.Accepted, r.Settled)
	}
	if !r.Verified {
		t.Errorf("ledger not verified (%d entries)", r.VerifiedEntries)
	}
}
