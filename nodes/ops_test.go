package nodes

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	alert "github.com/tally-mesh/tally/alerts"
	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/ops/anomaly"
	"github.com/tally-mesh/tally/ops/sla"
	"github.com/tally-mesh/tally/wire"
)

// TestOpsEndToEnd runs one node with an SLA and anomaly detection on real
// traffic: an amount far outside the provider's baseline raises an anomaly
// (state in TALLY_ALERTS, record in TALLY_ANOMALIES, gauge at 1), a rejected
// transaction breaks the partner's max reject rate (sla state), and the
// windows land in TALLY_SLA.
func TestOpsEndToEnd(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MetricsListen = "127.0.0.1:0"
	cfg.Providers = []config.Provider{{Name: "p1"}}
	cfg.SLAs = []sla.Target{{Party: "p1", AckP99: 10 * time.Second, MaxRejectRate: 0.001, MinRequests: 1}}
	cfg.Anomaly.AmountWarmup = 50
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Alerts.Interval = 200 * time.Millisecond
	cfg.Alerts.SLAWindow = time.Second // below the config minimum: a test only
	n, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subj := wire.NewSubjects(cfg.Prefix)
	tx := func(id, amount string) string {
		return fmt.Sprintf(`{"id":%q,"type":"bet","amount":%q,"currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, id, amount)
	}
	var batch []string
	for i := range 80 {
		batch = append(batch, tx(fmt.Sprintf("n-%d", i), fmt.Sprintf("%d.00", 5+i%20)))
	}
	send := func(body string, want string) {
		t.Helper()
		m, err := nc.Request(subj.In("p1"), []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(m.Data), want) {
			t.Fatalf("answer %s, want %s", m.Data, want)
		}
	}
	send("["+strings.Join(batch, ",")+"]", wire.StatusAccepted)
	send(tx("huge", "900000000.00"), wire.StatusAccepted)
	send(tx("bad", "1.001"), wire.StatusRejected)

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	firing := func(kind, key string) error {
		st, err := js.Stream(ctx, alert.StreamName(subj))
		if err != nil {
			return err
		}
		m, err := st.GetLastMsgForSubject(ctx, subj.Alert(kind))
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		a, ok, err := alert.Decode(subj, m.Subject, m.Header, m.Data)
		if err != nil || !ok || a.State != alert.Firing || a.Key() != key || a.Node != cfg.NodeID {
			return fmt.Errorf("%s: last %+v %v %v", kind, a, ok, err)
		}
		return nil
	}
	natstest.Eventually(t, 30*time.Second, func() error { return firing(alert.KindAnomaly, "provider=p1 series=amount") })
	natstest.Eventually(t, 30*time.Second, func() error { return firing(alert.KindSLA, "provider=p1") })
	natstest.Eventually(t, 30*time.Second, func() error {
		st, err := js.Stream(ctx, anomaly.StreamName(subj))
		if err != nil {
			return err
		}
		m, err := st.GetLastMsgForSubject(ctx, anomaly.Subject(subj, "p1"))
		if err != nil {
			return err
		}
		var r anomaly.Record
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Series != anomaly.SeriesAmount || r.Value != 9e8 {
			return fmt.Errorf("record %s %v", m.Data, err)
		}
		return nil
	})
	natstest.Eventually(t, 30*time.Second, func() error {
		if v, _ := value(scrape(t, n.MetricsAddr()), "tally_alerts_firing", "kind", alert.KindAnomaly); v != 1 {
			return fmt.Errorf("tally_alerts_firing{kind=anomaly} = %v", v)
		}
		return nil
	})
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour) // not a month: no flake at a month's end
	var ws []sla.Window
	natstest.Eventually(t, 30*time.Second, func() error {
		ws, err = sla.Load(ctx, js, subj, "p1", from, to)
		if err != nil {
			return err
		}
		var acc, rej uint64
		for _, w := range ws {
			acc, rej = acc+w.Accepted, rej+w.Rejected
		}
		if acc != 81 || rej != 1 {
			return fmt.Errorf("windows hold %d accepted, %d rejected; want 81, 1", acc, rej)
		}
		return nil
	})
}

// TestSettleEventBecomesState: a one-shot gap event on tally.alert.gap for a
// partition this node settles becomes a gap state, which resolves once the
// partition has nothing left to settle; an event for a partition the node
// does not settle is ignored.
func TestSettleEventBecomesState(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Settle.Partitions = []int{0, 1}
	cfg.Alerts.Interval = 200 * time.Millisecond
	n, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subj := wire.NewSubjects(cfg.Prefix)
	// The events are core NATS: one published before the node's
	// subscription is in place (a slow start on a loaded machine) is lost,
	// so they are published again, at most once a second, until the first
	// state shows.
	var published time.Time
	publish := func() {
		if time.Since(published) < time.Second {
			return
		}
		published = time.Now()
		for _, p := range []int{3, 1} {
			if err := nc.Publish(subj.Alert(wire.AlertGap), fmt.Appendf(nil, `{"partition":%d,"node":"edge-9","provider":"p1","have":4,"next":9}`, p)); err != nil {
				t.Fatal(err)
			}
		}
		nc.Flush()
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var states []string
	natstest.Eventually(t, 20*time.Second, func() error {
		if len(states) == 0 {
			publish()
		}
		states = nil
		st, err := js.Stream(ctx, alert.StreamName(subj))
		if err != nil {
			return err
		}
		c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj.Alert(alert.KindGap)}, InactiveThreshold: 5 * time.Second})
		if err != nil {
			return err
		}
		b, err := c.FetchNoWait(100)
		if err != nil {
			return err
		}
		for m := range b.Messages() {
			a, ok, _ := alert.Decode(subj, m.Subject(), m.Headers(), m.Data())
			if ok {
				states = append(states, a.Key()+"/"+a.State)
			}
		}
		if len(states) < 2 {
			return fmt.Errorf("gap states so far %q", states)
		}
		return nil
	})
	if len(states) != 2 || states[0] != "partition=1/firing" || states[1] != "partition=1/resolved" {
		t.Fatalf("gap states %q, want partition=1 firing then resolved", states)
	}
}
