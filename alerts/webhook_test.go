package alerts

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-mesh/tally/internal/natstest"
)

// TestWebhookRetries: a local receiver fails the first attempts with 503
// and a dropped connection; the transition arrives once it answers 200, in
// both formats.
func TestWebhookRetries(t *testing.T) {
	for _, format := range []string{FormatSlack, FormatAlertmanager} {
		t.Run(format, func(t *testing.T) {
			const failFirst = 3
			var calls atomic.Int32
			var mu sync.Mutex
			var bodies [][]byte
			var at []time.Time
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				at = append(at, time.Now())
				mu.Unlock()
				switch {
				case n == 2: // a broken connection, not an HTTP answer
					hj, _ := w.(http.Hijacker)
					c, _, _ := hj.Hijack()
					c.Close()
					return
				case n <= failFirst:
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				mu.Lock()
				bodies = append(bodies, b)
				mu.Unlock()
			}))
			defer srv.Close()
			w := NewWebhook(WebhookConfig{Name: "ops", URL: srv.URL, Format: format, Retries: 5, Backoff: 20 * time.Millisecond}, nil)
			defer w.Close()
			since := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
			until := since.Add(time.Minute)
			w.Notify(Alert{Kind: KindHubUnreachable, State: Firing, Node: "edge-1", Since: since, Summary: "hub away"})
			w.Notify(Alert{Kind: KindHubUnreachable, State: Resolved, Node: "edge-1", Since: since, Until: &until, Summary: "hub away"})
			natstest.Eventually(t, 10*time.Second, func() error {
				if d, f, _, _ := w.Stats(); d+f < 2 {
					return io.ErrNoProgress
				}
				return nil
			})
			d, f, _, attempts := w.Stats()
			if d != 2 || f != 0 || attempts != failFirst+2 {
				t.Fatalf("delivered %d failed %d attempts %d, want 2, 0, %d", d, f, attempts, failFirst+2)
			}
			mu.Lock()
			defer mu.Unlock()
			// back-off doubles: the gaps between the first failed attempts grow
			if g1, g2 := at[1].Sub(at[0]), at[2].Sub(at[1]); g1 < 20*time.Millisecond || g2 < 40*time.Millisecond {
				t.Errorf("retry gaps %s, %s: want at least 20ms then 40ms", g1, g2)
			}
			switch format {
			case FormatSlack:
				var m map[string]string
				if err := json.Unmarshal(bodies[0], &m); err != nil || m["text"] == "" || len(m) != 1 {
					t.Fatalf("slack body %s", bodies[0])
				}
			case FormatAlertmanager:
				var m struct {
					Version string `json:"version"`
					Status  string `json:"status"`
					Alerts  []struct {
						Status   string            `json:"status"`
						Labels   map[string]string `json:"labels"`
						StartsAt time.Time         `json:"startsAt"`
						EndsAt   time.Time         `json:"endsAt"`
					} `json:"alerts"`
				}
				for i, want := range []string{Firing, Resolved} {
					if err := json.Unmarshal(bodies[i], &m); err != nil {
						t.Fatal(err)
					}
					if m.Version != "4" || m.Status != want || len(m.Alerts) != 1 || m.Alerts[0].Labels["alertname"] != KindHubUnreachable || !m.Alerts[0].StartsAt.Equal(since) {
						t.Fatalf("alertmanager body %s", bodies[i])
					}
					if want == Resolved && !m.Alerts[0].EndsAt.Equal(until) {
						t.Fatalf("resolved endsAt %s", m.Alerts[0].EndsAt)
					}
				}
			}
		})
	}
}

// TestWebhookGivesUp: a 400 is not retried; a receiver down for good is
// given up after Retries.
func TestWebhookGivesUp(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	w := NewWebhook(WebhookConfig{Name: "bad", URL: srv.URL, Retries: 3, Backoff: time.Millisecond}, nil)
	defer w.Close()
	w.Notify(Alert{Kind: KindDiskLow, State: Firing, Node: "n", Since: time.Now()})
	natstest.Eventually(t, 10*time.Second, func() error {
		if _, f, _, _ := w.Stats(); f != 1 {
			return io.ErrNoProgress
		}
		return nil
	})
	if calls.Load() != 1 {
		t.Fatalf("400 tried %d times, want 1", calls.Load())
	}
	srv.Close()
	w2 := NewWebhook(WebhookConfig{Name: "down", URL: srv.URL, Retries: 2, Backoff: time.Millisecond}, nil)
	defer w2.Close()
	w2.Notify(Alert{Kind: KindDiskLow, State: Firing, Node: "n", Since: time.Now()})
	natstest.Eventually(t, 10*time.Second, func() error {
		if _, f, _, _ := w2.Stats(); f != 1 {
			return io.ErrNoProgress
		}
		return nil
	})
	if _, _, _, a := w2.Stats(); a != 3 {
		t.Fatalf("attempts %d, want 3", a)
	}
}
