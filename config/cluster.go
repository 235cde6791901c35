package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/tally-mesh/tally/wire"
)

// The production topology (issue 11, docs/deploy.md): three hub processes
// form one NATS cluster with JetStream (hub.cluster), accept edge leaf nodes
// (hub.leafnodes), and each edge runs its own small NATS server for the
// providers of its region that is a leaf node of that cluster (leaf).

// Cluster is the hub's NATS cluster: routes to the other hubs. JetStream in a
// cluster needs a unique server name (node_id) and the cluster name.
type Cluster struct {
	Name     string
	Host     string
	Port     int      // 0 picks a free port
	Routes   []string // nats-route://host:port of every hub (this one may be listed too)
	User     string   // route credentials, "" = none
	Password string
	TLS      TLSFiles
}

// DefaultJetStreamDomain is the hubs' JetStream domain when leaf edges connect.
const DefaultJetStreamDomain = "tally"

// LeafNodes is the hub's listener for edge leaf nodes.
type LeafNodes struct {
	Host        string
	Port        int
	Users       []HubUser // the edges allowed to connect as leaves
	NoAdvertise bool      // do not gossip the other hubs' leafnode URLs to edges
	TLS         TLSFiles
	// Domain is the hubs' JetStream domain (default "tally"). nats-server
	// denies the plain $JS.API across a leaf link; with a domain an edge
	// reaches the hubs' JetStream API as $JS.<domain>.API (the provider claim
	// bucket). Every hub of a cluster must have the same domain.
	Domain string
}

// Leaf is an edge's embedded NATS server: providers of the region connect to
// Host:Port; it is a leaf node of the hub cluster at Hubs.
type Leaf struct {
	Host     string
	Port     int
	Hubs     []string // nats-leaf://host:port of every hub's leafnode listener
	User     string   // leaf credentials on the hub, "" = none
	Password string
	Creds    string // or a creds file (stock nats-server with JWT accounts)
	TLS      TLSFiles
	Domain   string // the hubs' JetStream domain (hub.leafnodes.domain), default "tally"

	ClientTLS ServerTLS // the leaf server's client port (the region's providers), config/security.go
}

// TLSFiles are PEM files; all empty = plain TCP.
type TLSFiles struct {
	Cert string
	Key  string
	CA   string // verify the peer against this CA
}

// On reports whether TLS is configured.
func (t TLSFiles) On() bool { return t.Cert != "" || t.Key != "" || t.CA != "" }

// ClusterFile is the HCL shape of hub.cluster.
type ClusterFile struct {
	Name     *string  `hcl:"name,optional"` // default "tally"
	Listen   string   `hcl:"listen"`        // host:port for routes, e.g. "0.0.0.0:6222"
	Routes   []string `hcl:"routes"`        // nats-route://host:port of every hub
	User     *string  `hcl:"user,optional"` // route credentials (all hubs the same)
	Password *string  `hcl:"password,optional"`
	TLS      *TLSFile `hcl:"tls,block"`
}

// LeafNodesFile is the HCL shape of hub.leafnodes.
type LeafNodesFile struct {
	Listen      string        `hcl:"listen"` // host:port for edges, e.g. "0.0.0.0:7422"
	NoAdvertise *bool         `hcl:"no_advertise,optional"`
	Domain      *string       `hcl:"domain,optional"` // JetStream domain of the hubs, default "tally"
	Users       []HubUserFile `hcl:"user,block"`
	TLS         *TLSFile      `hcl:"tls,block"`
}

// LeafFile is the HCL shape of the edge's leaf block.
type LeafFile struct {
	Listen   string   `hcl:"listen"` // host:port for the region's providers
	Hubs     []string `hcl:"hubs"`   // nats-leaf://host:port of every hub
	User     *string  `hcl:"user,optional"`
	Password *string  `hcl:"password,optional"`
	Creds    *string  `hcl:"creds,optional"`
	Domain   *string  `hcl:"domain,optional"` // the hubs' JetStream domain, default "tally"
	TLS      *TLSFile `hcl:"tls,block"`

	ClientTLS *ServerTLSFile `hcl:"client_tls,block"` // TLS on the leaf server's client port (providers)
}

// TLSFile is a tls block: certificate, key and CA files.
type TLSFile struct {
	CertFile *string `hcl:"cert_file,optional"`
	KeyFile  *string `hcl:"key_file,optional"`
	CAFile   *string `hcl:"ca_file,optional"`
}

func (l *loader) tls(f *TLSFile) TLSFiles {
	if f == nil {
		return TLSFiles{}
	}
	var t TLSFiles
	if f.CertFile != nil {
		t.Cert = l.path(*f.CertFile)
	}
	if f.KeyFile != nil {
		t.Key = l.path(*f.KeyFile)
	}
	if f.CAFile != nil {
		t.CA = l.path(*f.CAFile)
	}
	return t
}

func (l *loader) listen(key, s string) (string, int) {
	host, port, err := splitHostPort(s)
	if err != nil {
		l.bad(key, strconv.Quote(s), `use host:port such as "0.0.0.0:6222" (port 0 picks a free one)`)
	}
	return host, port
}

// applyCluster reads hub.cluster, hub.leafnodes and leaf. A cluster makes
// streams.replicas default to 3.
func (l *loader) applyCluster(f *File) {
	c := &l.cfg
	if h := f.Hub; h != nil && h.Cluster != nil {
		cf := h.Cluster
		cl := &Cluster{Name: "tally", Routes: cf.Routes, TLS: l.tls(cf.TLS)}
		setStr(cf.Name, &cl.Name)
		setStr(cf.User, &cl.User)
		setStr(cf.Password, &cl.Password)
		cl.Host, cl.Port = l.listen("hub.cluster.listen", cf.Listen)
		c.Hub.Cluster = cl
		if f.Streams == nil || f.Streams.Replicas == nil {
			c.Streams.Replicas = 3
		}
	}
	if h := f.Hub; h != nil && h.LeafNodes != nil {
		lf := h.LeafNodes
		ln := &LeafNodes{TLS: l.tls(lf.TLS), Domain: DefaultJetStreamDomain}
		setStr(lf.Domain, &ln.Domain)
		ln.Host, ln.Port = l.listen("hub.leafnodes.listen", lf.Listen)
		if lf.NoAdvertise != nil {
			ln.NoAdvertise = *lf.NoAdvertise
		}
		for _, u := range lf.Users {
			ln.Users = append(ln.Users, HubUser(u))
		}
		c.Hub.LeafNodes = ln
	}
	if lf := f.Leaf; lf != nil {
		lv := &Leaf{Hubs: lf.Hubs, TLS: l.tls(lf.TLS), Domain: DefaultJetStreamDomain}
		setStr(lf.Domain, &lv.Domain)
		lv.Host, lv.Port = l.listen("leaf.listen", lf.Listen)
		setStr(lf.User, &lv.User)
		setStr(lf.Password, &lv.Password)
		if lf.Creds != nil {
			lv.Creds = l.path(*lf.Creds)
		}
		c.Leaf = lv
	}
}

// checkCluster validates the cluster, leafnodes and leaf settings.
func (c Config) checkCluster(bad func(key, val, fix string)) {
	if cl := c.Hub.Cluster; cl != nil {
		if !c.Has(RoleHub) {
			bad("hub.cluster", "", `a cluster block needs the "hub" role`)
		}
		if !validClusterName(cl.Name) {
			bad("hub.cluster.name", strconv.Quote(cl.Name), "use 1-64 characters from a-z A-Z 0-9 - _ (the same on every hub)")
		}
		if len(cl.Routes) == 0 {
			bad("hub.cluster.routes", "[]", `list every hub's route URL, such as ["nats-route://hub-1:6222", "nats-route://hub-2:6222", "nats-route://hub-3:6222"]`)
		}
		for _, r := range cl.Routes {
			if !validURL(r, "nats-route", "nats", "tls") {
				bad("hub.cluster.routes", strconv.Quote(r), `use nats-route://host:port (credentials come from user and password)`)
			}
		}
		if (cl.User == "") != (cl.Password == "") {
			bad("hub.cluster.password", `"…"`, "set both user and password, or neither")
		}
		if cl.Password != "" && len(cl.Password) < 8 {
			bad("hub.cluster.password", `"…"`, "use a password of at least 8 characters")
		}
		checkTLS("hub.cluster.tls", cl.TLS, bad)
		if c.Streams.Replicas > len(cl.Routes)+1 {
			bad("streams.replicas", fmt.Sprint(c.Streams.Replicas), "use at most the number of hubs")
		}
	} else if c.Has(RoleHub) && c.Streams.Replicas > 1 {
		bad("streams.replicas", fmt.Sprint(c.Streams.Replicas), "a single embedded hub holds one replica: use 1, or add a hub.cluster block")
	}
	if ln := c.Hub.LeafNodes; ln != nil {
		if !c.Has(RoleHub) {
			bad("hub.leafnodes", "", `a leafnodes block needs the "hub" role`)
		}
		for _, u := range ln.Users {
			if u.Name == "" || strings.ContainsAny(u.Name, " \t\n") {
				bad("hub.leafnodes.user", strconv.Quote(u.Name), "name a leaf user without spaces")
			}
			if len(u.Password) < 8 {
				bad("hub.leafnodes.user."+u.Name+".password", `"…"`, "use a password of at least 8 characters")
			}
		}
		checkTLS("hub.leafnodes.tls", ln.TLS, bad)
		if !wire.ValidToken(ln.Domain) {
			bad("hub.leafnodes.domain", strconv.Quote(ln.Domain), `use one subject token such as "tally"`)
		}
	}
	if lf := c.Leaf; lf != nil {
		if !c.Has(RoleIngest) || c.Has(RoleHub) {
			bad("leaf", "", `a leaf block belongs to an edge: roles = ["ingest"] (a hub is not a leaf of itself)`)
		}
		if len(lf.Hubs) == 0 {
			bad("leaf.hubs", "[]", `list every hub's leafnode URL, such as ["nats-leaf://hub-1:7422", "nats-leaf://hub-2:7422"]`)
		}
		for _, h := range lf.Hubs {
			if !validURL(h, "nats-leaf", "nats", "tls") {
				bad("leaf.hubs", strconv.Quote(h), "use nats-leaf://host:port (credentials come from user and password or creds)")
			}
		}
		if (lf.User == "") != (lf.Password == "") {
			bad("leaf.password", `"…"`, "set both user and password, or neither")
		}
		if lf.User != "" && lf.Creds != "" {
			bad("leaf.creds", strconv.Quote(lf.Creds), "give either user and password or creds, not both")
		}
		checkTLS("leaf.tls", lf.TLS, bad)
		if !wire.ValidToken(lf.Domain) {
			bad("leaf.domain", strconv.Quote(lf.Domain), `use the hubs' hub.leafnodes.domain, such as "tally"`)
		}
	}
}

func checkTLS(key string, t TLSFiles, bad func(key, val, fix string)) {
	if (t.Cert == "") != (t.Key == "") {
		bad(key, "", "set both cert_file and key_file")
	}
}

func validClusterName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func validURL(s string, schemes ...string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Port() == "" || u.User != nil {
		return false
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return true
		}
	}
	return false
}
