package nodes

import (
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tally-mesh/tally/config"
)

// The edge's leaf server (issue 11, docs/deploy.md). An edge node with a leaf
// block runs a small nats-server of its own: the region's providers connect
// to its port with their own users (the same users and permissions the
// embedded hub gives them, hubUsers), the ingest role connects in-process, and
// the server is a leaf node of the hub cluster. So the edge accepts and
// answers from its WAL whether or not the leaf link is up, and its forwarder
// reaches JetStream over the link.
//
// The leaf server runs without JetStream: a leaf without JetStream passes the
// JetStream API ($JS.API.>) and stream subjects through to the hub account,
// so the forwarder's JetStream context needs no domain. (A leaf with its own
// JetStream would need a domain and the forwarder jetstream.WithDomain.)

// leafReconnect is how often the leaf retries a lost link to the hubs; each
// attempt picks one of the configured hub URLs at random.
const leafReconnect = time.Second

// startLeaf runs the edge's leaf server. Like startHub it returns the
// internal user's password ("" when the server needs no credentials).
func startLeaf(c config.Config) (*server.Server, string, error) {
	lf := c.Leaf
	remote, err := leafRemote(lf)
	if err != nil {
		return nil, "", fmt.Errorf("leaf: %w", err)
	}
	o := &server.Options{
		ServerName: c.NodeID,
		Host:       lf.Host,
		Port:       listenPort(lf.Port),
		JetStream:  false, // see the package comment above: the hub's JetStream serves
		NoSigs:     true,  // tally handles signals: first drains, second aborts
		NoLog:      true,
		MaxPayload: int32(c.MaxPayload()), // the edge's request limit plus headers (config.MaxPayload); the hubs' max_payload must be at least this, or a forwarded batch could not cross the leaf link
	}
	o.LeafNode.ReconnectInterval = leafReconnect
	o.LeafNode.Remotes = []*server.RemoteLeafOpts{remote}
	if err := clientPortTLS(o, lf.ClientTLS); err != nil { // security.go
		return nil, "", fmt.Errorf("leaf.client_tls: %w", err)
	}
	internal, err := users(c, o)
	if err != nil {
		return nil, "", fmt.Errorf("leaf: %w", err)
	}
	s, err := server.NewServer(o)
	if err != nil {
		return nil, "", fmt.Errorf("leaf: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, "", fmt.Errorf("leaf: not ready after 15s (is %s:%d in use?)", lf.Host, lf.Port)
	}
	return s, internal, nil
}

// leafRemote is the link to the hub cluster: every hub URL, so the leaf
// reconnects to whichever hub is up.
func leafRemote(lf *config.Leaf) (*server.RemoteLeafOpts, error) {
	r := &server.RemoteLeafOpts{Credentials: lf.Creds}
	for _, h := range lf.Hubs {
		u, err := url.Parse(h)
		if err != nil {
			return nil, fmt.Errorf("hub %q: %w", h, err)
		}
		if lf.User != "" {
			u.User = url.UserPassword(lf.User, lf.Password)
		}
		r.URLs = append(r.URLs, u)
	}
	tc, err := tlsConfig(lf.TLS, false)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if tc != nil {
		r.TLS, r.TLSConfig, r.TLSTimeout = true, tc, 2
	}
	return r, nil
}

// LeafConnected reports whether the edge's leaf link to the hub cluster is up
// (false without a leaf server).
func (n *Node) LeafConnected() bool {
	if n.cfg.Leaf == nil || n.hub == nil {
		return false
	}
	return n.hub.NumLeafNodes() > 0
}
