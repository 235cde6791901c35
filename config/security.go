package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Security settings of issue 12 (docs/security.md): TLS on the provider
// ports and HTTP endpoints, secrets given by reference instead of in the
// file, bearer tokens of the audit API, encryption at rest, log format.

// Log formats.
const (
	LogText = "text"
	LogJSON = "json"
)

// Client-certificate modes of a server TLS block (client_auth).
const (
	ClientAuthNone         = "none"           // no client certificate asked for
	ClientAuthVerify       = "verify"         // a client certificate signed by ca_file is required
	ClientAuthVerifyAndMap = "verify_and_map" // required, and its identity is the NATS user (nats_cert_user)
)

// ScopeAuditRead is the scope an audit API token needs for every endpoint.
const ScopeAuditRead = "audit:read"

// DefaultKeyRotation is how often Badger makes a new data key (its own default).
const DefaultKeyRotation = 10 * 24 * time.Hour

// ServerTLS is a TLS listener: the certificate it presents and, with
// ClientAuth verify or verify_and_map, the CA its clients' certificates
// must chain to. TLS 1.2 is the minimum version.
type ServerTLS struct {
	TLSFiles
	ClientAuth string // ClientAuthNone (""), ClientAuthVerify or ClientAuthVerifyAndMap
}

// On reports whether the listener uses TLS.
func (t ServerTLS) On() bool { return t.Cert != "" }

// Verify reports whether clients must present a certificate.
func (t ServerTLS) Verify() bool {
	return t.ClientAuth == ClientAuthVerify || t.ClientAuth == ClientAuthVerifyAndMap
}

// AuditToken is one bearer token of the audit API.
type AuditToken struct {
	Name   string
	Token  string
	Scopes []string
}

// Encryption is the at-rest encryption of the edge WAL (with its dead
// letters) and the settle index: Badger's AES encryption under the master
// key in KeyFile. Badger encrypts with data keys it makes every Rotation and
// keeps, encrypted under the master key, in its KEYREGISTRY file.
type Encryption struct {
	KeyFile  string        // "" = not encrypted
	Rotation time.Duration // data key rotation
}

// ServerTLSFile is the HCL shape of a TLS listener block (hub.tls,
// leaf.client_tls, ingest.http_tls, settle.audit_tls).
type ServerTLSFile struct {
	CertFile   *string `hcl:"cert_file,optional"`
	KeyFile    *string `hcl:"key_file,optional"`
	CAFile     *string `hcl:"ca_file,optional"`
	ClientAuth *string `hcl:"client_auth,optional"` // "none" (default), "verify", "verify_and_map" (NATS ports only)
}

// AuditTokenFile is the HCL shape of settle.audit_token "<name>".
type AuditTokenFile struct {
	Name   string   `hcl:"name,label"`
	Token  string   `hcl:"token"`  // a secret: use "env:NAME" or "file:PATH"
	Scopes []string `hcl:"scopes"` // ["audit:read"]
}

// Secret references. Every password and token in the config may be given as
// a reference instead of the secret itself, so that no secret needs to live
// in the config file:
//
//	"env:NAME"  the value of environment variable NAME (must be set, non-empty)
//	"file:PATH" the contents of file PATH (relative to the config file's
//	            directory), without one trailing newline
//
// Any other value is the secret itself.
const (
	secretEnv  = "env:"
	secretFile = "file:"
)

// ResolveSecret returns the secret v refers to (v itself when it is not a
// reference); base resolves relative file paths.
func ResolveSecret(v, base string) (string, error) {
	switch {
	case strings.HasPrefix(v, secretEnv):
		name := strings.TrimPrefix(v, secretEnv)
		s, ok := os.LookupEnv(name)
		if !ok || s == "" {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		return s, nil
	case strings.HasPrefix(v, secretFile):
		p := strings.TrimPrefix(v, secretFile)
		if p != "" && !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if s == "" {
			return "", fmt.Errorf("%s is empty", p)
		}
		return s, nil
	}
	return v, nil
}

// ReadKey reads an encryption key file: exactly 16, 24 or 32 bytes (AES-128,
// -192 or -256), e.g. made with head -c 32 /dev/urandom > wal.key.
func ReadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	switch len(b) {
	case 16, 24, 32:
		return b, nil
	}
	return nil, fmt.Errorf("encryption key %s: %d bytes: use exactly 16, 24 or 32 raw bytes (head -c 32 /dev/urandom > %s)", path, len(b), filepath.Base(path))
}

func (l *loader) serverTLS(f *ServerTLSFile) ServerTLS {
	if f == nil {
		return ServerTLS{}
	}
	t := ServerTLS{TLSFiles: l.tls(&TLSFile{CertFile: f.CertFile, KeyFile: f.KeyFile, CAFile: f.CAFile})}
	setStr(f.ClientAuth, &t.ClientAuth)
	if t.ClientAuth == ClientAuthNone {
		t.ClientAuth = ""
	}
	return t
}

// applySecurity reads the keys of this file and resolves every secret
// reference (after apply and applyCluster have set the secrets).
func (l *loader) applySecurity(f *File) {
	c := &l.cfg
	setStr(f.LogFormat, &c.LogFormat)
	if f.EncryptionKeyFile != nil {
		c.Encryption.KeyFile = l.path(*f.EncryptionKeyFile)
	}
	l.dur("encryption_key_rotation", f.EncryptionKeyRotation, &c.Encryption.Rotation)
	if h := f.Hub; h != nil {
		c.Hub.TLS = l.serverTLS(h.TLS)
		setStr(h.MonitorListen, &c.Hub.MonitorListen)
	}
	if lf := f.Leaf; lf != nil && c.Leaf != nil {
		c.Leaf.ClientTLS = l.serverTLS(lf.ClientTLS)
	}
	if n := f.NATS; n != nil {
		c.NATS.TLS = l.tls(n.TLS)
	}
	if i := f.Ingest; i != nil {
		c.Ingest.HTTPTLS = l.serverTLS(i.HTTPTLS)
	}
	if s := f.Settle; s != nil {
		c.Settle.AuditTLS = l.serverTLS(s.AuditTLS)
		c.Settle.ConsoleTLS = l.serverTLS(s.ConsoleTLS)
		for _, t := range s.AuditTokens {
			c.Settle.AuditTokens = append(c.Settle.AuditTokens, AuditToken(t))
		}
	}
	for i, p := range f.Providers {
		if i < len(c.Providers) {
			setStr(p.NATSCertUser, &c.Providers[i].NATSCertUser)
		}
	}
	l.resolveSecrets()
}

// resolveSecrets replaces every secret reference by the secret.
func (l *loader) resolveSecrets() {
	c := &l.cfg
	res := func(key string, v *string) {
		s, err := ResolveSecret(*v, l.base)
		if err != nil {
			l.bad(key, strconv.Quote(*v), fmt.Sprintf("cannot read the secret (%v): set the variable, fix the file, or give the value itself", err))
			*v = ""
			return
		}
		*v = s
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		res("provider."+p.Name+".nats_password", &p.NATSPassword)
		res("provider."+p.Name+".http_token", &p.HTTPToken)
	}
	for i := range c.Hub.NodeUsers {
		u := &c.Hub.NodeUsers[i]
		res("hub.node_user."+u.Name+".password", &u.Password)
	}
	res("nats.password", &c.NATS.Password)
	if cl := c.Hub.Cluster; cl != nil {
		res("hub.cluster.password", &cl.Password)
	}
	if ln := c.Hub.LeafNodes; ln != nil {
		for i := range ln.Users {
			u := &ln.Users[i]
			res("hub.leafnodes.user."+u.Name+".password", &u.Password)
		}
	}
	if lf := c.Leaf; lf != nil {
		res("leaf.password", &lf.Password)
	}
	for i := range c.Settle.AuditTokens {
		t := &c.Settle.AuditTokens[i]
		res("settle.audit_token."+t.Name+".token", &t.Token)
	}
}

// checkSecurity validates the keys of this file.
func (c Config) checkSecurity(bad func(key, val, fix string)) {
	if c.LogFormat != LogText && c.LogFormat != LogJSON {
		bad("log_format", strconv.Quote(c.LogFormat), `use "text" or "json"`)
	}
	if c.Encryption.KeyFile != "" && c.Encryption.Rotation <= 0 {
		bad("encryption_key_rotation", c.Encryption.Rotation.String(), `use a positive duration such as "240h"`)
	}
	if m := c.Hub.MonitorListen; m != "" {
		if _, _, err := splitHostPort(m); err != nil {
			bad("hub.monitor_listen", strconv.Quote(m), `use host:port such as "127.0.0.1:8222" (port 0 picks one), or "" for off`)
		}
		if !c.Has(RoleHub) {
			bad("hub.monitor_listen", strconv.Quote(m), `the monitoring port belongs to the "hub" role`)
		}
	}
	checkServerTLS("hub.tls", c.Hub.TLS, true, bad)
	if c.Leaf != nil {
		checkServerTLS("leaf.client_tls", c.Leaf.ClientTLS, true, bad)
	}
	checkServerTLS("ingest.http_tls", c.Ingest.HTTPTLS, false, bad)
	checkServerTLS("settle.audit_tls", c.Settle.AuditTLS, false, bad)
	checkServerTLS("settle.console_tls", c.Settle.ConsoleTLS, false, bad)
	checkTLS("nats.tls", c.NATS.TLS, bad)
	mapped := c.Hub.TLS.ClientAuth == ClientAuthVerifyAndMap || (c.Leaf != nil && c.Leaf.ClientTLS.ClientAuth == ClientAuthVerifyAndMap)
	for _, p := range c.Providers {
		if p.NATSCertUser == "" {
			continue
		}
		key := "provider." + p.Name + ".nats_cert_user"
		if !mapped {
			bad(key, strconv.Quote(p.NATSCertUser), `a certificate identity needs client_auth = "verify_and_map" in hub.tls (or leaf.client_tls on an edge)`)
		}
		if p.NATSPassword != "" || p.NATSNkey != "" {
			bad(key, strconv.Quote(p.NATSCertUser), "give a provider one of nats_password, nats_nkey or nats_cert_user")
		}
	}
	names, tokens := map[string]bool{}, map[string]string{}
	for _, t := range c.Settle.AuditTokens {
		key := "settle.audit_token." + t.Name
		if t.Name == "" || strings.ContainsAny(t.Name, " \t\n") || names[t.Name] {
			bad("settle.audit_token", strconv.Quote(t.Name), "name each token once, without spaces")
		}
		names[t.Name] = true
		if len(t.Token) < 16 && t.Token != "" {
			bad(key+".token", `"…"`, "use a random token of at least 16 characters")
		}
		if other, dup := tokens[t.Token]; dup && t.Token != "" {
			bad(key+".token", `"…"`, "token "+other+" has the same value; give each auditor its own")
		}
		tokens[t.Token] = t.Name
		if len(t.Scopes) == 0 {
			bad(key+".scopes", "[]", `list the token's scopes, such as ["audit:read"]`)
		}
		for _, s := range t.Scopes {
			if !validScope(s) {
				bad(key+".scopes", strconv.Quote(s), `use scopes such as "audit:read" (the scope the audit API requires)`)
			}
		}
	}
	if a := c.Settle.AuditListen; a != "" && len(c.Settle.AuditTokens) == 0 {
		if host, _, err := splitHostPort(a); err == nil && !loopback(host) {
			bad("settle.audit_listen", strconv.Quote(a), `an audit API off loopback needs bearer tokens: add a settle.audit_token block (docs/security.md), or listen on 127.0.0.1`)
		}
	}
}

// checkServerTLS validates a TLS listener block.
func checkServerTLS(key string, t ServerTLS, nats bool, bad func(key, val, fix string)) {
	if !t.On() && (t.Key != "" || t.CA != "" || t.ClientAuth != "") {
		bad(key+".cert_file", `""`, "a TLS listener needs cert_file and key_file")
		return
	}
	checkTLS(key, t.TLSFiles, bad)
	switch t.ClientAuth {
	case "", ClientAuthVerify:
	case ClientAuthVerifyAndMap:
		if !nats {
			bad(key+".client_auth", strconv.Quote(t.ClientAuth), `verify_and_map maps NATS users; use "verify" here`)
		}
	default:
		bad(key+".client_auth", strconv.Quote(t.ClientAuth), `use "none", "verify" or "verify_and_map"`)
	}
	if t.Verify() && t.CA == "" {
		bad(key+".ca_file", `""`, "client_auth needs ca_file: the CA that signs the clients' certificates")
	}
	if !t.Verify() && t.CA != "" {
		bad(key+".ca_file", strconv.Quote(t.CA), `ca_file verifies client certificates: set client_auth = "verify", or remove it`)
	}
}

// validScope: "<area>:<verb>", lowercase letters; the audit API requires
// ScopeAuditRead, other scopes are for other endpoints (a token holding only
// those is answered 403 by the audit API).
func validScope(s string) bool {
	a, v, ok := strings.Cut(s, ":")
	lower := func(x string) bool {
		return x != "" && strings.Trim(x, "abcdefghijklmnopqrstuvwxyz_") == ""
	}
	return ok && lower(a) && lower(v)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
