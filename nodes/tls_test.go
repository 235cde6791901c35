package nodes

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/testcerts"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/wire"
)

// httpsClient trusts only ca.
func httpsClient(t *testing.T, ca *testcerts.CA) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// TestTransportSecurity runs a node with TLS on every port it serves —
// the hub's client port with client certificates mapped to providers
// (verify_and_map), HTTPS ingest, the audit API over HTTPS with bearer
// tokens — plus the WAL and index encrypted at rest and the hub's
// monitoring port, and checks what is refused and what works.
func TestTransportSecurity(t *testing.T) {
	ca := testcerts.NewCA(t, "tally")
	rogue := testcerts.NewCA(t, "rogue")
	srv := ca.Server(t, "hub")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "at-rest.key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t, dir)
	cfg.Roles = []string{config.RoleHub, config.RoleIngest, config.RoleSettle}
	cfg.Hub.TLS = config.ServerTLS{TLSFiles: config.TLSFiles{Cert: srv.Cert, Key: srv.Key, CA: ca.CertPEM}, ClientAuth: config.ClientAuthVerifyAndMap}
	cfg.Hub.MonitorListen = "127.0.0.1:0"
	cfg.Providers = []config.Provider{
		{Name: "studio-a", NATSCertUser: "studio-a@example.com", HTTPToken: "studio-a-http-token-0123"},
		{Name: "studio-b", NATSCertUser: "studio-b@example.com"},
	}
	cfg.Ingest.HTTPListen = "127.0.0.1:0"
	cfg.Ingest.HTTPTLS = config.ServerTLS{TLSFiles: config.TLSFiles{Cert: srv.Cert, Key: srv.Key}}
	cfg.Settle.AuditListen = "127.0.0.1:0"
	cfg.Settle.AuditTLS = config.ServerTLS{TLSFiles: config.TLSFiles{Cert: srv.Cert, Key: srv.Key}}
	cfg.Settle.AuditTokens = []config.AuditToken{
		{Name: "big4", Token: "auditor-token-0123456789", Scopes: []string{config.ScopeAuditRead}},
		{Name: "ops", Token: "console-token-0123456789", Scopes: []string{"console:read"}},
	}
	cfg.Encryption.KeyFile = keyFile
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	url := n.ClientURL()
	s := wire.NewSubjects("")
	tx := []byte(`{"id":"tls-1","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`)

	t.Run("nats", func(t *testing.T) {
		studioA := ca.Client(t, "studio-a", "studio-a@example.com")
		stranger := ca.Client(t, "stranger", "stranger@example.com")
		forged := rogue.Client(t, "studio-a", "studio-a@example.com")
		refused := []struct {
			name string
			opts []nats.Option
		}{
			{"no TLS settings (nats.go upgrades, system roots)", nil},
			{"TLS without a client certificate", []nats.Option{nats.RootCAs(ca.CertPEM)}},
			{"server from an untrusted CA", []nats.Option{nats.RootCAs(rogue.CertPEM), nats.ClientCert(studioA.Cert, studioA.Key)}},
			{"client certificate of another CA", []nats.Option{nats.RootCAs(ca.CertPEM), nats.ClientCert(forged.Cert, forged.Key)}},
			{"certificate mapped to no provider", []nats.Option{nats.RootCAs(ca.CertPEM), nats.ClientCert(stranger.Cert, stranger.Key)}},
		}
		for _, r := range refused {
			nc, err := nats.Connect(url, append(r.opts, nats.Timeout(5*time.Second), nats.MaxReconnects(0))...)
			if err == nil {
				nc.Close()
				t.Errorf("%s: connected", r.name)
			} else {
				t.Logf("%s: refused: %v", r.name, err)
			}
		}
		// nats.go upgrades to TLS when the server asks; a raw client that
		// speaks the protocol in plaintext is cut off before any PONG.
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(strings.TrimPrefix(url, "nats://"), "tls://"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		info, _ := br.ReadString('\n')
		if !strings.Contains(info, `"tls_required":true`) {
			t.Errorf("INFO does not require TLS: %s", info)
		}
		fmt.Fprintf(conn, "CONNECT {\"verbose\":false}\r\nPING\r\n")
		rest, _ := io.ReadAll(br)
		conn.Close()
		if strings.Contains(string(rest), "PONG") {
			t.Fatalf("plaintext protocol answered: %q", rest)
		}
		t.Logf("plaintext protocol: %q", rest)

		nc, err := nats.Connect(url, nats.RootCAs(ca.CertPEM), nats.ClientCert(studioA.Cert, studioA.Key), nats.CustomInboxPrefix(ProviderInbox("studio-a")))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if a := request(t, nc, s.In("studio-a"), tx); a.Status != wire.StatusAccepted {
			t.Fatalf("studio-a over mutual TLS: %+v", a)
		}
		if _, err := nc.Request(s.In("studio-b"), tx, 500*time.Millisecond); err == nil {
			t.Fatal("studio-a's certificate published as studio-b")
		}
	})

	t.Run("https ingest", func(t *testing.T) {
		body := `{"id":"tls-2","type":"bet","amount":"2.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`
		post := func(c *http.Client, scheme string) (int, string, error) {
			req, _ := http.NewRequest("POST", scheme+"://"+n.HTTPAddr()+"/v1/providers/studio-a/transactions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer studio-a-http-token-0123")
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				return 0, "", err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), nil
		}
		// Plain HTTP to the HTTPS port: Go's server answers 400 "client sent
		// an HTTP request to an HTTPS server" and nothing is accepted.
		if code, b, err := post(&http.Client{Timeout: 10 * time.Second}, "http"); err == nil && (code != http.StatusBadRequest || strings.Contains(b, "accepted")) {
			t.Fatalf("plain HTTP: %d %s", code, b)
		}
		if _, _, err := post(httpsClient(t, rogue), "https"); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("HTTPS trusting another CA: %v, want a certificate error", err)
		}
		code, b, err := post(httpsClient(t, ca), "https")
		if err != nil || code != http.StatusOK || !strings.Contains(b, `"accepted"`) {
			t.Fatalf("HTTPS: %d %s %v", code, b, err)
		}
	})

	t.Run("audit api", func(t *testing.T) {
		base := n.AuditURL() + "/v1/audit/partitions"
		if !strings.HasPrefix(base, "https://") {
			t.Fatalf("audit URL %s is not https", base)
		}
		c := httpsClient(t, ca)
		get := func(tok string) int {
			req, _ := http.NewRequest("GET", base, nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		for _, tc := range []struct {
			name, tok string
			want      int
		}{
			{"no token", "", http.StatusUnauthorized},
			{"unknown token", "auditor-token-0123456788", http.StatusUnauthorized},
			{"token without audit:read", "console-token-0123456789", http.StatusForbidden},
			{"auditor", "auditor-token-0123456789", http.StatusOK},
		} {
			if got := get(tc.tok); got != tc.want {
				t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
			}
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(strings.Replace(base, "https://", "http://", 1))
		if err == nil {
			if resp.StatusCode == http.StatusOK {
				t.Error("plain HTTP to the audit API answered 200")
			}
			resp.Body.Close()
		}
	})

	t.Run("monitor", func(t *testing.T) {
		addr := n.MonitorAddr()
		if addr == "" {
			t.Fatal("no monitoring address")
		}
		resp, err := http.Get("http://" + addr + "/varz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/varz: %d", resp.StatusCode)
		}
	})

	// At rest: once stopped, the index does not open without the key.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if x, err := settle.OpenIndex(cfg.IndexDir(), hclog.NewNullLogger()); err == nil {
		x.Close()
		t.Fatal("the settle index opened without its key")
	}
	key, _ := config.ReadKey(keyFile)
	x, err := settle.OpenIndexKey(cfg.IndexDir(), hclog.NewNullLogger(), key, 0)
	if err != nil {
		t.Fatalf("the settle index with its key: %v", err)
	}
	x.Close()
}

// TestTLSMinimumVersion: every TLS config a node builds — listeners, route
// and leaf links — refuses anything older than TLS 1.2.
func TestTLSMinimumVersion(t *testing.T) {
	ca := testcerts.NewCA(t, "tally")
	p := ca.Server(t, "hub")
	files := config.TLSFiles{Cert: p.Cert, Key: p.Key, CA: ca.CertPEM}
	for _, side := range []bool{true, false} {
		tc, err := tlsConfig(files, side)
		if err != nil {
			t.Fatal(err)
		}
		if tc.MinVersion < tls.VersionTLS12 {
			t.Errorf("tlsConfig(server %v): MinVersion %x", side, tc.MinVersion)
		}
	}
	tc, err := serverTLS(config.ServerTLS{TLSFiles: files, ClientAuth: config.ClientAuthVerify})
	if err != nil || tc.MinVersion < tls.VersionTLS12 || tc.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("serverTLS: %v, min %x, client auth %v", err, tc.MinVersion, tc.ClientAuth)
	}
}
