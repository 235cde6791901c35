package nodes

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/wire"
)

// internalUser is the NATS user of this process's own in-process connection
// when the hub requires credentials; its password is random per start and
// never leaves the process.
const internalUser = "tally-internal"

// startHub runs the embedded nats-server with JetStream in the data directory.
// When the config asks for credentials (config.Auth), the server gets one
// user per provider, one per node user and one for this process; it returns
// the internal password ("" without auth).
func startHub(c config.Config) (*server.Server, string, error) {
	port := c.Hub.Port
	if port == 0 {
		port = -1 // nats-server: -1 picks a free port (0 would mean 4222)
	}
	o := &server.Options{
		ServerName:         c.NodeID,
		Host:               c.Hub.Host,
		Port:               port,
		JetStream:          true,
		StoreDir:           c.HubDir(),
		JetStreamMaxStore:  c.Hub.MaxStore,
		JetStreamMaxMemory: 64 << 20,
		SyncAlways:         c.Hub.SyncAlways, // fsync every write: a PubAck then survives power loss
		SyncInterval:       c.Hub.SyncInterval,
		NoSigs:             true, // tally handles signals: first drains, second aborts
		NoLog:              true,
		MaxPayload:         int32(c.MaxPayload()), // one request plus headers; the forwarder fits its batches to it
	}
	if err := clientPortTLS(o, c.Hub.TLS); err != nil { // security.go
		return nil, "", fmt.Errorf("hub.tls: %w", err)
	}
	if err := monitorOptions(c, o); err != nil {
		return nil, "", err
	}
	internal, err := users(c, o)
	if err != nil {
		return nil, "", fmt.Errorf("hub: %w", err)
	}
	if err := clusterOptions(c, o); err != nil { // routes and leafnodes (cluster.go)
		return nil, "", fmt.Errorf("hub: %w", err)
	}
	s, err := server.NewServer(o)
	if err != nil {
		return nil, "", fmt.Errorf("hub: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, "", fmt.Errorf("hub: not ready after 15s (is %s:%d in use?)", c.Hub.Host, c.Hub.Port)
	}
	return s, internal, nil
}

// users sets the server's users when the config asks for credentials and
// returns the internal user's secret ("" without auth): a password, or an
// nkey seed when the client port maps users from certificates (security.go).
func users(c config.Config, o *server.Options) (string, error) {
	if !c.Auth() {
		return "", nil
	}
	internal := randomSecret()
	o.Users, o.Nkeys = hubUsers(c, internal)
	if o.TLSMap {
		return internalNkey(o)
	}
	return internal, nil
}

// ProviderPermissions is what a provider's NATS user may do: publish only on
// its own <prefix>.in.<provider>, and subscribe only to its own inbox
// _INBOX.<provider>.> (clients set nats.CustomInboxPrefix(ProviderInbox(p)),
// so no provider can read another's answers). Operators of an external NATS
// cluster set the same permissions (docs/ingest.md, "Provider identity").
func ProviderPermissions(s wire.Subjects, provider string) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{s.In(provider)}},
		Subscribe: &server.SubjectPermission{Allow: []string{ProviderInbox(provider) + ".>"}},
	}
}

// ProviderInbox is the inbox prefix a provider's client must use.
func ProviderInbox(provider string) string { return "_INBOX." + provider }

// hubUsers builds the server's users: providers restricted by
// ProviderPermissions, node users and the internal user unrestricted (nil
// permissions: tally nodes publish batches, run JetStream and serve replay).
func hubUsers(c config.Config, internal string) ([]*server.User, []*server.NkeyUser) {
	s := wire.NewSubjects(c.Prefix)
	users := []*server.User{{Username: internalUser, Password: internal}}
	var nk []*server.NkeyUser
	for _, u := range c.Hub.NodeUsers {
		users = append(users, &server.User{Username: u.Name, Password: u.Password})
	}
	for _, p := range c.Providers {
		switch {
		case p.NATSCertUser != "": // client_auth = "verify_and_map": the certificate is the credential
			users = append(users, &server.User{Username: p.NATSCertUser, Permissions: ProviderPermissions(s, p.Name)})
		case p.NATSNkey != "":
			nk = append(nk, &server.NkeyUser{Nkey: p.NATSNkey, Permissions: ProviderPermissions(s, p.Name)})
		case p.NATSPassword != "":
			name := p.NATSUser
			if name == "" {
				name = p.Name
			}
			users = append(users, &server.User{Username: name, Password: p.NATSPassword, Permissions: ProviderPermissions(s, p.Name)})
		}
	}
	return users, nk
}

func randomSecret() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic("nodes: no randomness: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
