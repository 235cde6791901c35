package nodes

import (
	"slices"
	"testing"

	"github.com/tally-mesh/tally/config"
)

// TestWatchedCerts: every certificate the TLS configuration names is
// watched for expiry, with alerts.cert_files, each file once.
func TestWatchedCerts(t *testing.T) {
	cfg := config.Default()
	cfg.Alerts.CertFiles = []string{"/etc/tally/extra.pem", "/etc/tally/hub.pem"}
	cfg.Hub.TLS.Cert = "/etc/tally/hub.pem"
	cfg.Ingest.HTTPTLS.Cert = "/etc/tally/http.pem"
	cfg.Settle.AuditTLS.Cert = "/etc/tally/audit.pem"
	cfg.Leaf = &config.Leaf{TLS: config.TLSFiles{Cert: "/etc/tally/leaf.pem"}}
	got := watchedCerts(cfg)
	want := []string{"/etc/tally/extra.pem", "/etc/tally/hub.pem", "/etc/tally/http.pem", "/etc/tally/audit.pem", "/etc/tally/leaf.pem"}
	if !slices.Equal(got, want) {
		t.Errorf("watched %v, want %v", got, want)
	}
	if got := watchedCerts(config.Default()); len(got) != 0 {
		t.Errorf("no TLS configured, watched %v", got)
	}
}
