package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecretReferences(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("from-a-file-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TALLY_TEST_TOKEN", "token-from-the-environment")
	src := `
roles = ["hub", "ingest"]
hub {
  node_user "edge-1" {
    password = "file:pw"
  }
}
provider "acme" {
  nats_password = "env:TALLY_TEST_TOKEN"
  http_token    = "plain-token-0123456789"
}
`
	c, err := Parse([]byte(src), filepath.Join(dir, "node.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Hub.NodeUsers[0].Password; got != "from-a-file-123" {
		t.Errorf("file: reference = %q", got)
	}
	if got := c.Providers[0].NATSPassword; got != "token-from-the-environment" {
		t.Errorf("env: reference = %q", got)
	}
	if got := c.Providers[0].HTTPToken; got != "plain-token-0123456789" {
		t.Errorf("literal = %q", got)
	}

	// Unset variable, missing file: each is a problem naming key and reference, never a secret.
	bad := strings.ReplaceAll(src, "env:TALLY_TEST_TOKEN", "env:TALLY_TEST_UNSET_VAR")
	bad = strings.ReplaceAll(bad, "file:pw", "file:nope")
	_, err = Parse([]byte(bad), filepath.Join(dir, "node.hcl"))
	for _, want := range []string{"provider.acme.nats_password", "TALLY_TEST_UNSET_VAR", "hub.node_user.edge-1.password", "file:nope"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse = %v, want it to name %s", err, want)
		}
	}
}

func TestSecurityKeys(t *testing.T) {
	tests := []struct {
		name, src, want string // want: "" = valid, else a substring of the error
	}{
		{"defaults", ``, ""},
		{"json logs", `log_format = "json"`, ""},
		{"bad log format", `log_format = "xml"`, "log_format"},
		{"monitor", "hub {\n monitor_listen = \"127.0.0.1:0\"\n}", ""},
		{"monitor no port", "hub {\n monitor_listen = \"x\"\n}", "hub.monitor_listen"},
		{"hub tls", "hub {\n tls {\n cert_file = \"c.pem\"\n key_file = \"k.pem\"\n }\n}", ""},
		{"hub tls no key", "hub {\n tls {\n cert_file = \"c.pem\"\n }\n}", "hub.tls"},
		{"verify needs ca", "hub {\n tls {\n cert_file = \"c.pem\"\n key_file = \"k.pem\"\n client_auth = \"verify\"\n }\n}", "hub.tls.ca_file"},
		{"ca without verify", "hub {\n tls {\n cert_file = \"c.pem\"\n key_file = \"k.pem\"\n ca_file = \"ca.pem\"\n }\n}", "hub.tls.ca_file"},
		{"bad client_auth", "hub {\n tls {\n cert_file = \"c.pem\"\n key_file = \"k.pem\"\n client_auth = \"maybe\"\n }\n}", "hub.tls.client_auth"},
		{"map on http", "ingest {\n http_tls {\n cert_file = \"c.pem\"\n key_file = \"k.pem\"\n ca_file = \"ca.pem\"\n client_auth = \"verify_and_map\"\n }\n}", "ingest.http_tls.client_auth"},
		{"cert user without map", "provider \"acme\" {\n nats_cert_user = \"acme@example.com\"\n}", "provider.acme.nats_cert_user"},
		{"cert user with map", "hub {\n tls {\n cert_file = \"c.pem\"\n key_file = \"k.pem\"\n ca_file = \"ca.pem\"\n client_auth = \"verify_and_map\"\n }\n}\nprovider \"acme\" {\n nats_cert_user = \"acme@example.com\"\n}", ""},
		{"audit open off loopback", "settle {\n rules = \"r.hcl\"\n audit_listen = \"0.0.0.0:7380\"\n}", "settle.audit_listen"},
		{"audit token", "settle {\n rules = \"r.hcl\"\n audit_listen = \"0.0.0.0:7380\"\n audit_token \"big4\" {\n token = \"0123456789abcdef0\"\n scopes = [\"audit:read\"]\n }\n}", ""},
		{"audit bad scope", "settle {\n rules = \"r.hcl\"\n audit_token \"big4\" {\n token = \"0123456789abcdef0\"\n scopes = [\"Audit Write\"]\n }\n}", "settle.audit_token.big4.scopes"},
		{"audit short token", "settle {\n rules = \"r.hcl\"\n audit_token \"big4\" {\n token = \"short\"\n scopes = [\"audit:read\"]\n }\n}", "settle.audit_token.big4.token"},
		{"rotation", "encryption_key_file = \"k\"\nencryption_key_rotation = \"1h\"", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			if !strings.Contains(src, "settle {") {
				src = "roles = [\"hub\", \"ingest\"]\n" + src
			}
			_, err := Parse([]byte(src), "node.hcl")
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Parse = %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Parse = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	c, err := Parse([]byte("roles = [\"hub\", \"ingest\"]\nencryption_key_file = \"keys/wal.key\"\n"), "/etc/tally/node.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Encryption.KeyFile != "/etc/tally/keys/wal.key" || c.Encryption.Rotation != DefaultKeyRotation || c.LogFormat != LogText {
		t.Errorf("encryption = %+v, log format %q", c.Encryption, c.LogFormat)
	}
	if DefaultKeyRotation != 240*time.Hour {
		t.Error("DefaultKeyRotation is documented as 240h")
	}
}

func TestReadKey(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{16, 24, 32} {
		p := filepath.Join(dir, "k")
		os.WriteFile(p, make([]byte, n), 0o600)
		if k, err := ReadKey(p); err != nil || len(k) != n {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	for _, n := range []int{0, 15, 33, 65} {
		p := filepath.Join(dir, "k")
		os.WriteFile(p, make([]byte, n), 0o600)
		if _, err := ReadKey(p); err == nil {
			t.Errorf("%d-byte key accepted", n)
		}
	}
}
