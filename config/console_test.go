package config

import (
	"strings"
	"testing"
	"time"
)

// TestConsoleKeys: settle.console_tls and settle.console_max_upload load,
// default and are checked.
func TestConsoleKeys(t *testing.T) {
	c, err := Parse([]byte(`settle {
  rules              = "rules.hcl"
  console_listen     = "127.0.0.1:7390"
  console_max_upload = "2MiB"
  console_tls {
    cert_file = "/etc/tally/console.crt"
    key_file  = "/etc/tally/console.key"
  }
}
`), "t.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Settle.ConsoleMaxUpload != 2<<20 || c.Settle.ConsoleTLS.Cert != "/etc/tally/console.crt" || !c.Settle.ConsoleTLS.On() {
		t.Fatalf("console keys: %+v", c.Settle)
	}
	if d := Default(); d.Settle.ConsoleMaxUpload != DefaultConsoleMaxUpload || d.Settle.ConsoleTLS.On() {
		t.Fatalf("defaults: %+v", d.Settle)
	}
	for _, body := range []string{
		`console_max_upload = "10"`,
		`console_max_upload = "2GiB"`,
		`console_max_upload = "lots"`,
		"console_tls {\n key_file = \"k\"\n}",
		"console_tls {\n cert_file = \"c\"\n key_file = \"k\"\n client_auth = \"verify\"\n}",
	} {
		src := "settle {\n rules = \"r.hcl\"\n " + body + "\n}\n"
		if _, err := Parse([]byte(src), "t.hcl"); err == nil || !strings.Contains(err.Error(), "settle.console_") {
			t.Errorf("%s: %v, want an error naming the key", body, err)
		}
	}
}

// TestConsoleAndOplogLimits: the console's queue bounds and replay wait and
// the operator log's timeouts are config keys with defaults and checks.
func TestConsoleAndOplogLimits(t *testing.T) {
	c, err := Parse([]byte(`settle {
  rules                    = "rules.hcl"
  console_replay_wait      = "5s"
  console_queue_exceptions = 50
  console_queue_anomalies  = 60
  console_queue_breaks     = 70
  oplog_ack_wait           = "45s"
  oplog_publish_timeout    = "3s"
}
`), "t.hcl")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Settle
	if s.ConsoleReplayWait != 5*time.Second || s.ConsoleQueueExceptions != 50 || s.ConsoleQueueAnomalies != 60 || s.ConsoleQueueBreaks != 70 ||
		s.OplogAckWait != 45*time.Second || s.OplogPublishTimeout != 3*time.Second {
		t.Fatalf("loaded: %+v", s)
	}
	d := Default().Settle
	if d.ConsoleReplayWait != 2*time.Second || d.ConsoleQueueExceptions != 1000 || d.ConsoleQueueAnomalies != 200 || d.ConsoleQueueBreaks != 5000 ||
		d.OplogAckWait != 30*time.Second || d.OplogPublishTimeout != 10*time.Second {
		t.Fatalf("defaults: %+v", d)
	}
	for _, body := range []string{
		`console_replay_wait = "0s"`,
		`console_replay_wait = "1h"`,
		`console_queue_exceptions = 0`,
		`console_queue_anomalies = 1000000`,
		`console_queue_breaks = -1`,
		`oplog_ack_wait = "10ms"`,
		`oplog_publish_timeout = "later"`,
	} {
		src := "settle {\n rules = \"r.hcl\"\n " + body + "\n}\n"
		if _, err := Parse([]byte(src), "t.hcl"); err == nil || !strings.Contains(err.Error(), "settle.") {
			t.Errorf("%s: %v, want an error naming the key", body, err)
		}
	}
}
