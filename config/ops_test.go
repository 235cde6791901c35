package config

import (
	"strings"
	"testing"
	"time"

	"github.com/tally-mesh/tally/alerts"
)

func TestOpsBlocks(t *testing.T) {
	c, err := Parse([]byte(`
roles = ["hub", "ingest"]
alerts {
  interval        = "1s"
  hub_unreachable = "10s"
  disk_free_ratio = 0.1
  cert_files      = ["tls/node.crt"]
  webhook "am" {
    url     = "http://127.0.0.1:9093/hook"
    format  = "alertmanager"
    retries = 3
    backoff = "2s"
  }
}
sla "acme" {
  ack_p99         = "250ms"
  availability    = 0.999
  max_reject_rate = 0.01
}
anomaly {
  sensitivity = 5
  history     = 120
}
`), "/etc/tally/node.hcl")
	if err != nil {
		t.Fatal(err)
	}
	a := c.Alerts
	if !a.Enabled || a.Interval != time.Second || a.Thresholds.HubUnreachable != 10*time.Second || a.Thresholds.DiskFreeRatio != 0.1 ||
		a.Thresholds.SettleLagBatches != alerts.DefaultThresholds().SettleLagBatches || a.CertFiles[0] != "/etc/tally/tls/node.crt" {
		t.Fatalf("alerts %+v", a)
	}
	if w := a.Webhooks[0]; w.Name != "am" || w.Format != alerts.FormatAlertmanager || w.Retries != 3 || w.Backoff != 2*time.Second {
		t.Fatalf("webhook %+v", w)
	}
	if s := c.SLAs[0]; s.Party != "acme" || s.AckP99 != 250*time.Millisecond || s.Availability != 0.999 || s.MaxRejectRate != 0.01 {
		t.Fatalf("sla %+v", s)
	}
	if c.Anomaly.Sensitivity != 5 || c.Anomaly.History != 120 || c.Anomaly.Warmup != 30 || !c.Anomaly.Enabled {
		t.Fatalf("anomaly %+v", c.Anomaly)
	}
}

func TestOpsBlocksBad(t *testing.T) {
	_, err := Parse([]byte(`
roles = ["hub", "ingest"]
alerts {
  wal_budget_ratio = 1.5
  webhook "x" {
    url    = "ftp://example"
    format = "teams"
  }
}
sla "acme" {
  availability = 99.9
}
anomaly {
  warmup = 500
}
`), "node.hcl")
	if err == nil {
		t.Fatal("bad ops blocks accepted")
	}
	for _, want := range []string{"node.hcl:4: alerts.wal_budget_ratio = 1.5", "alerts.webhook.x.url", "alerts.webhook.x.format", "node.hcl:11: sla.acme.availability = 99.9", "anomaly.warmup = 500"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
