package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLoadProviders(t *testing.T) {
	src := `
hub {
  node_user "edge-1" { password = "edge-secret-1" }
}
ingest {
  http_listen          = "127.0.0.1:0"
  http_body_bytes      = "1MiB"
  retention            = "2h"
  gc_interval          = "10s"
  gc_batch             = 50
  retention_high_water = "100MiB"
  replay_max           = 500
}
provider "studio-1" {
  nats_password = "studio-1-secret"
  http_token    = "0123456789abcdef-1"
}
provider "agg-2" {
  dialect    = "minor_units"
  nats_user  = "agg"
  nats_nkey  = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"
}
settle { rules = "r.hcl" }
`
	c, err := Parse([]byte(src), "p.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Providers) != 2 || c.Providers[0].Name != "studio-1" || c.Providers[1].Dialect != "minor_units" || c.Providers[1].NATSUser != "agg" {
		t.Errorf("providers = %+v", c.Providers)
	}
	if len(c.Hub.NodeUsers) != 1 || c.Hub.NodeUsers[0].Name != "edge-1" || !c.Auth() {
		t.Errorf("node users = %+v, auth %v", c.Hub.NodeUsers, c.Auth())
	}
	i := c.Ingest
	if i.HTTPListen != "127.0.0.1:0" || i.RequestBytes != 1<<20 || i.Retention != 2*time.Hour || i.GCInterval != 10*time.Second ||
		i.GCBatch != 50 || i.RetentionHighWater != 100<<20 || i.ReplayMax != 500 {
		t.Errorf("ingest = %+v", i)
	}
	if d := Default(); d.Auth() || len(d.Providers) != 0 {
		t.Errorf("defaults need no credentials: auth %v", d.Auth())
	}
}

func TestProviderProblemsWithLine(t *testing.T) {
	src := `hub {
  node_user "e" { password = "short" }
}
ingest {
  retention = "0s"
  http_listen = "nowhere"
}
provider "bad.name" {}
provider "p1" {
  dialect = "xml"
  nats_password = "p1-password"
  nats_nkey = "not-a-key"
  http_token = "short"
}
provider "p2" {
  nats_user = "p1"
  nats_password = "p2-password"
}
settle { rules = "r.hcl" }
`
	_, err := Parse([]byte(src), "bad.hcl")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse = %v, want config.Errors", err)
	}
	msg := err.Error()
	for _, w := range []string{
		"bad.hcl:2: hub.node_user.e.password", "bad.hcl:5: ingest.retention", "bad.hcl:6: ingest.http_listen",
		"bad.hcl:8: provider.bad.name", "bad.hcl:10: provider.p1.dialect", "bad.hcl:12: provider.p1.nats_nkey",
		"bad.hcl:13: provider.p1.http_token", "bad.hcl:16: provider.p2.nats_user",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not mention %q:\n%s", w, msg)
		}
	}
}

// TestReservedIDs: "_tally" (wire.OpsNode, wire.OpsProvider) posts the
// system's own entries; no configured node or provider may start with "_".
func TestReservedIDs(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"node_id = \"_tally\"\nprovider \"p1\" {}\n", "node_id"},
		{"node_id = \"n1\"\nprovider \"_tally\" {}\n", "provider._tally"},
		{"node_id = \"n1\"\nprovider \"_x\" {}\n", "provider._x"},
	} {
		_, err := Parse([]byte(tc.src), "r.hcl")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("Parse(%q) = %v, want a reserved-id problem at %s", tc.src, err, tc.want)
		}
	}
	if _, err := Parse([]byte("node_id = \"n_1\"\nroles = [\"hub\"]\nprovider \"p_1\" {}\n"), "ok.hcl"); err != nil {
		t.Errorf("an inner underscore is fine: %v", err)
	}
}
