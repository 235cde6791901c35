package config

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tally-mesh/tally/alerts"
	"github.com/tally-mesh/tally/ops/anomaly"
	"github.com/tally-mesh/tally/ops/sla"
)

// Alerts configures the alert manager every node runs (docs/alerts.md).
type Alerts struct {
	Enabled    bool
	Interval   time.Duration // evaluation period
	Quiet      time.Duration // one-shot events resolve after this long without a repeat
	MaxAge     time.Duration // TALLY_ALERTS max age
	MaxBytes   int64         // TALLY_ALERTS size limit
	Thresholds alerts.Thresholds
	CertFiles  []string      // PEM certificates watched for expiry (the TLS configuration's hook)
	SLAWindow  time.Duration // SLA measuring window
	Webhooks   []alerts.WebhookConfig
}

// Anomaly configures anomaly detection (docs/alerts.md, "Anomalies").
type Anomaly struct {
	Enabled bool
	anomaly.Config
}

// DefaultAlerts are the alert defaults.
func DefaultAlerts() Alerts {
	return Alerts{Enabled: true, Interval: alerts.DefaultInterval, Quiet: alerts.DefaultQuiet, MaxAge: alerts.DefaultMaxAge,
		MaxBytes: alerts.DefaultMaxBytes, Thresholds: alerts.DefaultThresholds(), SLAWindow: sla.DefaultWindow}
}

// DefaultAnomaly: on, with the detector's defaults.
func DefaultAnomaly() Anomaly {
	return Anomaly{Enabled: true, Config: anomaly.Config{Window: anomaly.DefaultWindow, History: anomaly.DefaultHistory,
		Warmup: anomaly.DefaultWarmup, Sensitivity: anomaly.DefaultSensitivity, MinVolume: anomaly.DefaultMinVolume,
		AmountWarmup: anomaly.DefaultAmountWarmup, AmountAlpha: anomaly.DefaultAmountAlpha}}
}

// AlertsFile is the alerts {…} block.
type AlertsFile struct {
	Enabled           *bool    `hcl:"enabled,optional"`
	Interval          *string  `hcl:"interval,optional"`
	Quiet             *string  `hcl:"quiet,optional"`
	MaxAge            *string  `hcl:"max_age,optional"`
	MaxBytes          *string  `hcl:"max_bytes,optional"`
	WALBudgetRatio    *float64 `hcl:"wal_budget_ratio,optional"`
	ForwardOldest     *string  `hcl:"forward_oldest,optional"`
	HubUnreachable    *string  `hcl:"hub_unreachable,optional"`
	SettleLagBatches  *int     `hcl:"settle_lag_batches,optional"`
	ConflictsPerMin   *float64 `hcl:"conflicts_per_min,optional"`
	DeadLettersPerMin *float64 `hcl:"dead_letters_per_min,optional"`
	DiskFreeRatio     *float64 `hcl:"disk_free_ratio,optional"`
	CertExpiry        *string  `hcl:"cert_expiry,optional"`
	CertFiles         []string `hcl:"cert_files,optional"`
	SLAWindow         *string  `hcl:"sla_window,optional"`

	Webhooks []WebhookFile `hcl:"webhook,block"`
}

// WebhookFile is one alerts.webhook "<name>" {…} block.
type WebhookFile struct {
	Name       string  `hcl:"name,label"`
	URL        string  `hcl:"url"`
	Format     *string `hcl:"format,optional"` // slack (default) or alertmanager
	Retries    *int    `hcl:"retries,optional"`
	Backoff    *string `hcl:"backoff,optional"`
	BackoffMax *string `hcl:"backoff_max,optional"`
	Timeout    *string `hcl:"timeout,optional"`
}

// SLAFile is one sla "<party>" {…} block: a partner's targets.
type SLAFile struct {
	Party         string   `hcl:"party,label"`
	AckP99        *string  `hcl:"ack_p99,optional"`
	Availability  *float64 `hcl:"availability,optional"`
	MaxRejectRate *float64 `hcl:"max_reject_rate,optional"`
	MinRequests   *int     `hcl:"min_requests,optional"`
}

// AnomalyFile is the anomaly {…} block.
type AnomalyFile struct {
	Enabled      *bool    `hcl:"enabled,optional"`
	Window       *string  `hcl:"window,optional"`
	History      *int     `hcl:"history,optional"`
	Warmup       *int     `hcl:"warmup,optional"`
	Sensitivity  *float64 `hcl:"sensitivity,optional"`
	MinVolume    *int     `hcl:"min_volume,optional"`
	AmountWarmup *int     `hcl:"amount_warmup,optional"`
}

func setF(v *float64, dst *float64) {
	if v != nil {
		*dst = *v
	}
}

func (l *loader) applyOps(f *File) {
	c := &l.cfg
	if a := f.Alerts; a != nil {
		if a.Enabled != nil {
			c.Alerts.Enabled = *a.Enabled
		}
		l.dur("alerts.interval", a.Interval, &c.Alerts.Interval)
		l.dur("alerts.quiet", a.Quiet, &c.Alerts.Quiet)
		l.dur("alerts.max_age", a.MaxAge, &c.Alerts.MaxAge)
		l.size("alerts.max_bytes", a.MaxBytes, &c.Alerts.MaxBytes)
		th := &c.Alerts.Thresholds
		setF(a.WALBudgetRatio, &th.WALBudgetRatio)
		l.dur("alerts.forward_oldest", a.ForwardOldest, &th.ForwardOldest)
		l.dur("alerts.hub_unreachable", a.HubUnreachable, &th.HubUnreachable)
		if a.SettleLagBatches != nil {
			if *a.SettleLagBatches < 0 {
				l.bad("alerts.settle_lag_batches", fmt.Sprint(*a.SettleLagBatches), "use a batch count, 0 for off")
			} else {
				th.SettleLagBatches = uint64(*a.SettleLagBatches)
			}
		}
		setF(a.ConflictsPerMin, &th.ConflictsPerMin)
		setF(a.DeadLettersPerMin, &th.DeadLettersPerMin)
		setF(a.DiskFreeRatio, &th.DiskFreeRatio)
		l.dur("alerts.cert_expiry", a.CertExpiry, &th.CertExpiry)
		for _, p := range a.CertFiles {
			c.Alerts.CertFiles = append(c.Alerts.CertFiles, l.path(p))
		}
		l.dur("alerts.sla_window", a.SLAWindow, &c.Alerts.SLAWindow)
		for _, w := range a.Webhooks {
			key := "alerts.webhook." + w.Name
			wc := alerts.WebhookConfig{Name: w.Name, URL: w.URL, Format: alerts.FormatSlack}
			setStr(w.Format, &wc.Format)
			setInt(w.Retries, &wc.Retries)
			l.dur(key+".backoff", w.Backoff, &wc.Backoff)
			l.dur(key+".backoff_max", w.BackoffMax, &wc.BackoffMax)
			l.dur(key+".timeout", w.Timeout, &wc.Timeout)
			c.Alerts.Webhooks = append(c.Alerts.Webhooks, wc)
		}
	}
	for _, s := range f.SLAs {
		t := sla.Target{Party: s.Party}
		if s.AckP99 != nil {
			l.dur("sla."+s.Party+".ack_p99", s.AckP99, &t.AckP99)
		}
		setF(s.Availability, &t.Availability)
		setF(s.MaxRejectRate, &t.MaxRejectRate)
		setInt(s.MinRequests, &t.MinRequests)
		c.SLAs = append(c.SLAs, t)
	}
	if a := f.Anomaly; a != nil {
		if a.Enabled != nil {
			c.Anomaly.Enabled = *a.Enabled
		}
		l.dur("anomaly.window", a.Window, &c.Anomaly.Window)
		setInt(a.History, &c.Anomaly.History)
		setInt(a.Warmup, &c.Anomaly.Warmup)
		setF(a.Sensitivity, &c.Anomaly.Sensitivity)
		setInt(a.MinVolume, &c.Anomaly.MinVolume)
		setInt(a.AmountWarmup, &c.Anomaly.AmountWarmup)
	}
}

// checkOps validates the alerts, sla and anomaly settings.
func (c Config) checkOps(bad func(key, val, fix string)) {
	a := c.Alerts
	if a.Interval < 100*time.Millisecond || a.Interval > 10*time.Minute {
		bad("alerts.interval", a.Interval.String(), `use a duration between "100ms" and "10m" such as "5s"`)
	}
	if a.Quiet < a.Interval {
		bad("alerts.quiet", a.Quiet.String(), "use at least alerts.interval, such as \"5m\"")
	}
	ratio := func(key string, v float64) {
		if v < 0 || v > 1 {
			bad(key, strconv.FormatFloat(v, 'g', -1, 64), "use a fraction between 0 and 1 (0 = off)")
		}
	}
	ratio("alerts.wal_budget_ratio", a.Thresholds.WALBudgetRatio)
	ratio("alerts.disk_free_ratio", a.Thresholds.DiskFreeRatio)
	if a.Thresholds.ConflictsPerMin < 0 {
		bad("alerts.conflicts_per_min", fmt.Sprint(a.Thresholds.ConflictsPerMin), "use a count, 0 for off")
	}
	if a.Thresholds.DeadLettersPerMin < 0 {
		bad("alerts.dead_letters_per_min", fmt.Sprint(a.Thresholds.DeadLettersPerMin), "use a count, 0 for off")
	}
	if a.SLAWindow < 10*time.Second || a.SLAWindow > time.Hour {
		bad("alerts.sla_window", a.SLAWindow.String(), `use a duration between "10s" and "1h" such as "1m"`)
	}
	names := map[string]bool{}
	for _, w := range a.Webhooks {
		key := "alerts.webhook." + w.Name
		if names[w.Name] {
			bad(key, strconv.Quote(w.Name), "name each webhook once")
		}
		names[w.Name] = true
		if len(w.URL) < 8 || (w.URL[:7] != "http://" && (len(w.URL) < 9 || w.URL[:8] != "https://")) {
			bad(key+".url", strconv.Quote(w.URL), "use an http:// or https:// URL")
		}
		if w.Format != alerts.FormatSlack && w.Format != alerts.FormatAlertmanager {
			bad(key+".format", strconv.Quote(w.Format), `use "slack" or "alertmanager"`)
		}
		if w.Retries < 0 || w.Retries > 100 {
			bad(key+".retries", fmt.Sprint(w.Retries), "use 0-100")
		}
	}
	parties := map[string]bool{}
	for _, t := range c.SLAs {
		key := "sla." + t.Party
		if parties[t.Party] {
			bad(key, strconv.Quote(t.Party), "give each party one sla block")
		}
		parties[t.Party] = true
		if t.Availability < 0 || t.Availability > 1 {
			bad(key+".availability", fmt.Sprint(t.Availability), "use a fraction such as 0.999")
		}
		if t.MaxRejectRate < 0 || t.MaxRejectRate > 1 {
			bad(key+".max_reject_rate", fmt.Sprint(t.MaxRejectRate), "use a fraction such as 0.01")
		}
		if t.MinRequests < 0 {
			bad(key+".min_requests", fmt.Sprint(t.MinRequests), "use a positive count")
		}
	}
	n := c.Anomaly
	if n.Window < time.Second {
		bad("anomaly.window", n.Window.String(), `use a duration of at least "1s" such as "1m"`)
	}
	if n.History < 5 || n.History > 10000 {
		bad("anomaly.history", fmt.Sprint(n.History), "use 5-10000 windows")
	}
	if n.Warmup < 1 || n.Warmup > n.History {
		bad("anomaly.warmup", fmt.Sprint(n.Warmup), "use 1 to anomaly.history windows")
	}
	if n.Sensitivity <= 0 {
		bad("anomaly.sensitivity", fmt.Sprint(n.Sensitivity), "use a positive robust z-score such as 6")
	}
}
