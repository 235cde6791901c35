package alerts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Webhook body formats.
const (
	FormatSlack        = "slack"        // {"text": "..."}: Slack incoming webhooks (and Mattermost, Teams' Slack-compatible hooks)
	FormatAlertmanager = "alertmanager" // Alertmanager's webhook receiver payload, version "4"
)

// Webhook defaults.
const (
	DefaultWebhookRetries    = 5
	DefaultWebhookBackoff    = time.Second
	DefaultWebhookBackoffMax = time.Minute
	DefaultWebhookTimeout    = 5 * time.Second
	DefaultWebhookQueue      = 256
)

// WebhookConfig is one webhook sink (config alerts.webhook "<name>").
type WebhookConfig struct {
	Name       string
	URL        string
	Format     string        // FormatSlack or FormatAlertmanager
	Retries    int           // attempts after the first; 0 = DefaultWebhookRetries, <0 = none
	Backoff    time.Duration // wait before the first retry, doubled each retry; 0 = DefaultWebhookBackoff
	BackoffMax time.Duration // 0 = DefaultWebhookBackoffMax
	Timeout    time.Duration // one attempt; 0 = DefaultWebhookTimeout
	QueueMax   int           // transitions waiting for delivery; 0 = DefaultWebhookQueue
}

// Webhook delivers transitions to one HTTP endpoint, one at a time and in
// order, on its own goroutine; a full queue drops (counted), never blocks
// the manager. A 2xx answer is delivered; 408, 429, 5xx and transport
// errors are retried with exponential back-off (Retry-After honoured up to
// BackoffMax); any other status is given up at once.
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
	log    hclog.Logger
	q      chan Alert
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	delivered, failed, dropped, attempts atomic.Uint64
}

// NewWebhook starts a webhook sink.
func NewWebhook(cfg WebhookConfig, log hclog.Logger) *Webhook {
	if cfg.Retries == 0 {
		cfg.Retries = DefaultWebhookRetries
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultWebhookBackoff
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultWebhookBackoffMax
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	if cfg.QueueMax <= 0 {
		cfg.QueueMax = DefaultWebhookQueue
	}
	if cfg.Format == "" {
		cfg.Format = FormatSlack
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhook{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, log: log.With("webhook", cfg.Name),
		q: make(chan Alert, cfg.QueueMax), ctx: ctx, cancel: cancel}
	w.wg.Add(1)
	go w.run()
	return w
}

// Notify queues a transition.
func (w *Webhook) Notify(a Alert) {
	select {
	case w.q <- a:
	default:
		w.dropped.Add(1)
		w.log.Warn("webhook queue full; transition dropped", "kind", a.Kind, "state", a.State)
	}
}

// Stats: transitions delivered, given up, dropped (queue full), and HTTP
// attempts made.
func (w *Webhook) Stats() (delivered, failed, dropped, attempts uint64) {
	return w.delivered.Load(), w.failed.Load(), w.dropped.Load(), w.attempts.Load()
}

// Close stops delivery (an attempt in flight is cancelled). Idempotent.
func (w *Webhook) Close() {
	w.cancel()
	w.wg.Wait()
}

func (w *Webhook) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.ctx.Done():
			return
		case a := <-w.q:
			w.deliver(a)
		}
	}
}

func (w *Webhook) deliver(a Alert) {
	body, err := Body(w.cfg.Format, w.cfg.Name, a)
	if err != nil {
		w.failed.Add(1)
		w.log.Error("webhook body", "error", err)
		return
	}
	wait := w.cfg.Backoff
	for attempt := 0; ; attempt++ {
		retry, after, err := w.post(body)
		if err == nil {
			w.delivered.Add(1)
			if attempt > 0 {
				w.log.Info("webhook delivered after retries", "kind", a.Kind, "state", a.State, "attempts", attempt+1)
			}
			return
		}
		if !retry || attempt >= w.cfg.Retries {
			w.failed.Add(1)
			w.log.Error("webhook gave up", "kind", a.Kind, "state", a.State, "attempts", attempt+1, "error", err)
			return
		}
		d := wait
		if after > 0 {
			d = min(after, w.cfg.BackoffMax)
		}
		w.log.Debug("webhook retrying", "error", err, "in", d)
		t := time.NewTimer(d)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, w.cfg.BackoffMax)
	}
}

// post makes one attempt: retry says whether a failure is worth retrying,
// after is the server's Retry-After.
func (w *Webhook) post(body []byte) (retry bool, after time.Duration, err error) {
	w.attempts.Add(1)
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tally-alerts")
	resp, err := w.client.Do(req)
	if err != nil {
		return w.ctx.Err() == nil, 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, 0, nil
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		after = time.Duration(s) * time.Second
	}
	retry = resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	return retry, after, fmt.Errorf("webhook answered %s", resp.Status)
}

// Body renders a transition in a webhook format.
func Body(format, receiver string, a Alert) ([]byte, error) {
	switch format {
	case FormatSlack, "":
		return json.Marshal(map[string]string{"text": slackText(a)})
	case FormatAlertmanager:
		return json.Marshal(alertmanagerMessage(receiver, a))
	}
	return nil, fmt.Errorf("unknown webhook format %q (use %s or %s)", format, FormatSlack, FormatAlertmanager)
}

func slackText(a Alert) string {
	icon := ":red_circle:"
	if a.State == Resolved {
		icon = ":large_green_circle:"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s *%s* `%s` on %s", icon, strings.ToUpper(a.State), a.Kind, a.Node)
	if k := a.Key(); k != "" {
		fmt.Fprintf(&b, " (%s)", k)
	}
	if a.Summary != "" {
		b.WriteString(": " + a.Summary)
	}
	fmt.Fprintf(&b, "\nsince %s", a.Since.UTC().Format(time.RFC3339))
	if a.Until != nil {
		fmt.Fprintf(&b, ", resolved %s after %s", a.Until.UTC().Format(time.RFC3339), a.Until.Sub(a.Since).Round(time.Second))
	}
	return b.String()
}

// amMessage is Alertmanager's webhook payload (version 4), as documented
// for webhook_config receivers.
type amMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []amAlert         `json:"alerts"`
}

type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

func alertmanagerMessage(receiver string, a Alert) amMessage {
	labels := map[string]string{"alertname": a.Kind, "node": a.Node, "source": "tally"}
	for k, v := range a.Labels {
		labels[k] = v
	}
	ann := map[string]string{"summary": a.Summary}
	if len(a.Details) > 0 {
		if b, err := json.Marshal(a.Details); err == nil {
			ann["details"] = string(b)
		}
	}
	var ends time.Time // zero: still firing
	if a.Until != nil {
		ends = a.Until.UTC()
	}
	fp := sha256.Sum256([]byte(a.Node + "\x00" + a.Kind + "\x00" + a.Key()))
	group := map[string]string{"alertname": a.Kind}
	return amMessage{
		Version: "4", GroupKey: fmt.Sprintf("{}:{alertname=%q}", a.Kind), Status: a.State, Receiver: receiver,
		GroupLabels: group, CommonLabels: labels, CommonAnnotations: ann,
		Alerts: []amAlert{{Status: a.State, Labels: labels, Annotations: ann, StartsAt: a.Since.UTC(), EndsAt: ends,
			Fingerprint: hex.EncodeToString(fp[:8])}},
	}
}
