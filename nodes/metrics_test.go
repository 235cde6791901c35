package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/metrics"
	"github.com/tally-mesh/tally/wire"
)

var httpClient = &http.Client{Timeout: 10 * time.Second}

// scrape fetches /metrics and parses the text format.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the series of family name whose labels include all of
// labels (name=value pairs); ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// sum adds the values of every series of a family.
func sum(fams map[string]*dto.MetricFamily, name string) float64 {
	var s float64
	for _, m := range fams[name].GetMetric() {
		s += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return s
}

func readyz(t *testing.T, addr string) (int, metrics.Readiness) {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r metrics.Readiness
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("/readyz body %q: %v", b, err)
	}
	return resp.StatusCode, r
}

func check(r metrics.Readiness, name string) (metrics.Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return metrics.Check{}, false
}

// TestMetricsScrape starts a real node (embedded hub, ingest WAL, settle) with
// metrics_listen, scrapes it, sends traffic and checks that every counter moved
// by exactly what was sent, then checks /healthz and /readyz.
func TestMetricsScrape(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MetricsListen = "127.0.0.1:0"
	cfg.Providers = []config.Provider{{Name: "studio-a"}, {Name: "studio-b"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	addr := n.MetricsAddr()
	if addr == "" {
		t.Fatal("metrics_listen set but no metrics address")
	}

	before := scrape(t, addr)
	for _, name := range []string{
		"tally_ingest_requests_total", "tally_ingest_ack_seconds", "tally_wal_bytes", "tally_wal_budget_bytes",
		"tally_forward_backlog_records", "tally_forward_oldest_seconds", "tally_settle_lag_batches",
		"tally_settled_entries_total", "tally_settle_partitions", "go_goroutines", "go_memstats_heap_alloc_bytes",
		"process_open_fds",
	} {
		if before[name] == nil {
			t.Errorf("family %s missing before traffic", name)
		}
	}
	if v, ok := value(before, "tally_ingest_requests_total", "provider", "studio-a", "status", "accepted"); !ok || v != 0 {
		t.Errorf("configured provider's series not initialised at zero: %v %v", v, ok)
	}
	if v, _ := value(before, "tally_settle_partitions"); int(v) != len(cfg.SettlePartitions()) {
		t.Errorf("tally_settle_partitions = %v, want %d", v, len(cfg.SettlePartitions()))
	}

	// Traffic: studio-a 5 accepted, 2 duplicates, 1 rejected; studio-b 3
	// accepted; one request for a provider not configured here.
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subj := wire.NewSubjects(cfg.Prefix)
	tx := func(id, amount string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"type":"bet","amount":%q,"currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, id, amount)
	}
	type req struct {
		provider string
		body     []byte
		want     string
	}
	var reqs []req
	for i := range 5 {
		reqs = append(reqs, req{"studio-a", tx(fmt.Sprintf("a-%d", i), "1.00"), wire.StatusAccepted})
	}
	reqs = append(reqs,
		req{"studio-a", tx("a-0", "1.00"), wire.StatusDuplicate},
		req{"studio-a", tx("a-1", "1.00"), wire.StatusDuplicate},
		req{"studio-a", tx("a-bad", "1.001"), wire.StatusRejected},
	)
	for i := range 3 {
		reqs = append(reqs, req{"studio-b", tx(fmt.Sprintf("b-%d", i), "2.00"), wire.StatusAccepted})
	}
	for _, r := range reqs {
		m, err := nc.Request(subj.In(r.provider), r.body, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var a wire.Answer
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Fatal(err)
		}
		if a.Status != r.want {
			t.Fatalf("%s %s: answer %+v, want %s", r.provider, r.body, a, r.want)
		}
	}
	const accepted = 8

	// Settlement is asynchronous: wait (bounded) until the scrape shows every
	// accepted transaction in the ledger and nothing left to forward.
	var after map[string]*dto.MetricFamily
	natstest.Eventually(t, 30*time.Second, func() error {
		after = scrape(t, addr)
		if got := sum(after, "tally_settled_entries_total"); got != accepted {
			return fmt.Errorf("tally_settled_entries_total sums to %v, want %d", got, accepted)
		}
		if got := sum(after, "tally_settled_total"); got != accepted {
			return fmt.Errorf("tally_settled_total sums to %v, want %d", got, accepted)
		}
		// Caught up: the lag gauges come back to 0 (refreshed from the
		// consumer's info, not its creation-time snapshot).
		if _, ok := after["tally_settle_lag_seconds"]; !ok {
			return fmt.Errorf("no tally_settle_lag_seconds family")
		}
		if lb, ls := sum(after, "tally_settle_lag_batches"), sum(after, "tally_settle_lag_seconds"); lb != 0 || ls != 0 {
			return fmt.Errorf("lag %v batches, %v s after settling", lb, ls)
		}
		if v, _ := value(after, "tally_forward_backlog_records"); v != 0 {
			return fmt.Errorf("forward backlog %v", v)
		}
		return nil
	})

	delta := func(name string, labels ...string) float64 {
		b, _ := value(before, name, labels...)
		a, ok := value(after, name, labels...)
		if !ok {
			t.Errorf("no series %s %v after traffic", name, labels)
		}
		return a - b
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"tally_ingest_requests_total", []string{"provider", "studio-a", "status", "accepted"}, 5},
		{"tally_ingest_requests_total", []string{"provider", "studio-a", "status", "duplicate"}, 2},
		{"tally_ingest_requests_total", []string{"provider", "studio-a", "status", "rejected"}, 1},
		{"tally_ingest_requests_total", []string{"provider", "studio-b", "status", "accepted"}, 3},
		{"tally_settled_total", []string{"provider", "studio-a", "currency", "EUR"}, 5},
		{"tally_settled_total", []string{"provider", "studio-b", "currency", "EUR"}, 3},
		{"tally_ingest_requests_total", []string{"provider", "studio-b", "status", "rejected"}, 0},
		{"tally_ingest_ack_seconds", nil, float64(len(reqs))}, // one observation per answered request
		{"tally_ingest_rejected_total", []string{"code", "too_many_decimals"}, 1},
	} {
		if got := delta(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if fams := after["tally_ingest_requests_total"]; len(fams.GetMetric()) != 6 {
		// studio-a and studio-b × 3 statuses.
		t.Errorf("tally_ingest_requests_total has %d series, want 6: %v", len(fams.GetMetric()), fams)
	}
	// An edge subscribes only to the providers it serves (docs/ingest.md,
	// "Topologies"): a request for another has no responder and no series.
	if _, err := nc.Request(subj.In("ghost"), tx("g-1", "1.00"), 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("request for an unserved provider: %v, want no responders", err)
	}
	if again := scrape(t, addr); len(again["tally_ingest_requests_total"].GetMetric()) != 6 {
		t.Errorf("an unserved provider's request made a series: %v", again["tally_ingest_requests_total"])
	}
	for _, store := range []string{metrics.StoreWAL, metrics.StoreIndex, metrics.StoreLedger} {
		if v, _ := value(after, "tally_fsync_seconds", "store", store); v < 1 {
			t.Errorf("tally_fsync_seconds{store=%q} has %v observations, want at least 1", store, v)
		}
	}
	if v, _ := value(after, "tally_wal_bytes"); v <= 0 {
		t.Errorf("tally_wal_bytes = %v after accepting transactions", v)
	}
	if v, _ := value(after, "tally_settle_segments_total", "partition", "0"); v < 0 {
		t.Errorf("segments %v", v)
	}

	resp, err := httpClient.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %s", resp.Status)
	}
	code, r := readyz(t, addr)
	if code != http.StatusOK || !r.Ready {
		t.Errorf("/readyz = %d %+v, want 200 ready", code, r)
	}
	for _, name := range []string{"wal", "hub", "partitions"} {
		if c, ok := check(r, name); !ok || !c.OK {
			t.Errorf("/readyz check %s = %+v (present %v), want ok", name, c, ok)
		}
	}
}

// TestReadyzHubDown runs a hub, a settle node and an edge (ingest) as three
// nodes over TCP, each with its own metrics server, and stops the hub: the
// settle node's /readyz turns 503 naming the hub check, while the edge stays
// ready because it keeps buffering in its WAL within its budget.
func TestReadyzHubDown(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"hub", "settle-1", "edge-1"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hubCfg := testConfig(t, filepath.Join(root, "hub"))
	hubCfg.NodeID = "hub-1"
	hubCfg.Roles = []string{config.RoleHub}
	hub, err := Start(context.Background(), hubCfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	if hub.MetricsAddr() != "" {
		t.Fatalf("metrics server without metrics_listen: %s", hub.MetricsAddr())
	}

	role := func(id, r string) *Node {
		c := testConfig(t, filepath.Join(root, id))
		c.NodeID = id
		c.Roles = []string{r}
		c.NATS.URL = hub.ClientURL()
		c.MetricsListen = "127.0.0.1:0"
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		n, err := Start(context.Background(), c, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	st := role("settle-1", config.RoleSettle)
	edge := role("edge-1", config.RoleIngest)

	for _, n := range []*Node{st, edge} {
		if code, r := readyz(t, n.MetricsAddr()); code != http.StatusOK || !r.Ready {
			t.Fatalf("/readyz with the hub up = %d %+v", code, r)
		}
	}
	if err := hub.Close(); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 15*time.Second, func() error {
		code, r := readyz(t, st.MetricsAddr())
		c, _ := check(r, "hub")
		if code != http.StatusServiceUnavailable || r.Ready || c.OK {
			return fmt.Errorf("settle /readyz with the hub down = %d %+v", code, r)
		}
		if p, ok := check(r, "partitions"); !ok || !p.OK {
			return fmt.Errorf("partitions check = %+v: only the hub check should fail", p)
		}
		return nil
	})
	code, r := readyz(t, edge.MetricsAddr())
	c, _ := check(r, "hub")
	if code != http.StatusOK || !c.OK || !strings.Contains(c.Detail, "buffering") {
		t.Errorf("edge /readyz with the hub down = %d %+v, want 200 and the hub check ok (buffering)", code, r)
	}
	// /metrics keeps serving while the hub is away.
	if fams := scrape(t, edge.MetricsAddr()); fams["tally_wal_bytes"] == nil {
		t.Error("edge /metrics lost tally_wal_bytes with the hub down")
	}
}
