package nodes

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/config"
)

// Transport security and encryption at rest (issue 12, docs/security.md).
// Every TLS listener and dialer goes through tlsConfig (cluster.go), i.e.
// nats-server's GenTLSConfig: TLS 1.2 minimum, its cipher suites and curve
// preferences; with a CA and client_auth a client certificate is required.

// security is what Start derives once from the config: the at-rest key and
// the TLS configs of the HTTP listeners.
type security struct {
	key        []byte      // master key of the WAL and the index; nil = plain
	httpTLS    *tls.Config // ingest.http_tls
	auditTLS   *tls.Config // settle.audit_tls
	consoleTLS *tls.Config // settle.console_tls
}

func loadSecurity(c config.Config) (security, error) {
	var s security
	var err error
	if c.Encryption.KeyFile != "" {
		if s.key, err = config.ReadKey(c.Encryption.KeyFile); err != nil {
			return s, err
		}
	}
	if s.httpTLS, err = serverTLS(c.Ingest.HTTPTLS); err != nil {
		return s, fmt.Errorf("ingest.http_tls: %w", err)
	}
	if s.auditTLS, err = serverTLS(c.Settle.AuditTLS); err != nil {
		return s, fmt.Errorf("settle.audit_tls: %w", err)
	}
	if s.consoleTLS, err = serverTLS(c.Settle.ConsoleTLS); err != nil {
		return s, fmt.Errorf("settle.console_tls: %w", err)
	}
	return s, nil
}

// serverTLS is the TLS config of a listener (nil when off).
func serverTLS(t config.ServerTLS) (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	return tlsConfig(t.TLSFiles, t.Verify())
}

// clientPortTLS puts TLS on a nats-server's client port (the hub's, or an
// edge leaf server's): providers must connect with TLS (a plaintext client
// is refused); with client_auth they must present a certificate of ca_file,
// and with verify_and_map that certificate's identity is their NATS user.
// This process's own in-process connection needs no TLS (nats-server makes
// TLS optional for in-process clients).
func clientPortTLS(o *server.Options, t config.ServerTLS) error {
	tc, err := serverTLS(t)
	if err != nil || tc == nil {
		return err
	}
	o.TLSConfig, o.TLS, o.TLSTimeout = tc, true, 2
	o.TLSVerify = t.Verify()
	o.TLSMap = t.ClientAuth == config.ClientAuthVerifyAndMap
	return nil
}

// internalNkey replaces the internal password user by an nkey user when the
// server maps users from certificates: under verify_and_map nats-server
// authenticates every password user by its certificate, and the in-process
// connection has none; an nkey user is checked by its signature instead. It
// returns the seed, which internalAuth recognises.
func internalNkey(o *server.Options) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	o.Users = slices.DeleteFunc(o.Users, func(u *server.User) bool { return u.Username == internalUser })
	o.Nkeys = append(o.Nkeys, &server.NkeyUser{Nkey: pub})
	return string(seed), nil
}

// internalAuth is the in-process connection's credentials: the random
// password, or the nkey seed of internalNkey.
func internalAuth(secret string) nats.Option {
	if strings.HasPrefix(secret, "SU") { // a user nkey seed; the password is lowercase hex
		kp, err := nkeys.FromSeed([]byte(secret))
		if err == nil {
			pub, _ := kp.PublicKey()
			return nats.Nkey(pub, kp.Sign)
		}
	}
	return nats.UserInfo(internalUser, secret)
}

// natsTLS is how a node without a hub dials nats.url over TLS: ca_file
// verifies the server (else the system roots), cert_file and key_file are
// its client certificate.
func natsTLS(t config.TLSFiles) []nats.Option {
	var o []nats.Option
	if t.On() { // first: the options below add to this config (TLS 1.2 minimum, as theirs)
		o = append(o, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	if t.CA != "" {
		o = append(o, nats.RootCAs(t.CA))
	}
	if t.Cert != "" {
		o = append(o, nats.ClientCert(t.Cert, t.Key))
	}
	return o
}

// monitorOptions turns on nats-server's HTTP monitoring (/varz, /jsz,
// /connz …) at hub.monitor_listen; off by default.
func monitorOptions(c config.Config, o *server.Options) error {
	if c.Hub.MonitorListen == "" {
		return nil
	}
	host, port, err := splitListen(c.Hub.MonitorListen)
	if err != nil {
		return fmt.Errorf("hub.monitor_listen: %w", err)
	}
	o.HTTPHost, o.HTTPPort = host, listenPort(port)
	return nil
}

func splitListen(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	var port int
	if i <= 0 {
		return "", 0, fmt.Errorf("%q: no port", s)
	}
	if _, err := fmt.Sscanf(s[i+1:], "%d", &port); err != nil {
		return "", 0, fmt.Errorf("%q: bad port", s)
	}
	return s[:i], port, nil
}

// auditHandler requires the configured bearer tokens (scope audit:read)
// when there are any; without tokens the API is open, which config allows
// on a loopback address only.
func auditHandler(c config.Config, h http.Handler) http.Handler {
	if len(c.Settle.AuditTokens) == 0 {
		return h
	}
	return audit.RequireToken(h, auditTokens(c), config.ScopeAuditRead)
}

// MonitorAddr is the hub's NATS monitoring address ("" when off).
func (n *Node) MonitorAddr() string {
	if n.hub == nil || n.cfg.Hub.MonitorListen == "" {
		return ""
	}
	if a := n.hub.MonitorAddr(); a != nil {
		return a.String()
	}
	return ""
}

// auditTokens converts the configured tokens.
func auditTokens(c config.Config) []audit.Token {
	out := make([]audit.Token, len(c.Settle.AuditTokens))
	for i, t := range c.Settle.AuditTokens {
		out[i] = audit.Token{Name: t.Name, Secret: t.Token, Scopes: t.Scopes}
	}
	return out
}

// AuditURL is the audit API's base URL, https when settle.audit_tls is set
// ("" when the API is off).
func (n *Node) AuditURL() string {
	if n.audit == nil {
		return ""
	}
	if n.sec.auditTLS != nil {
		return "https://" + n.audit.Addr()
	}
	return "http://" + n.audit.Addr()
}
