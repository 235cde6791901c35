package nodes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

const clusterExamples = "../config/examples/cluster"

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestStockNATSServerConf parses config/examples/cluster/nats-server.conf as
// nats-server does for each of the three hubs, checks the settings tally
// depends on, then runs the three servers (on free ports instead of the
// example's fixed ones) as one JetStream cluster, creates the streams R3, and
// sends a transaction through the example edge (edge-eu.hcl) as a leaf node
// of that stock cluster: accepted at the edge, stored in TALLY_TX at the hubs.
func TestStockNATSServerConf(t *testing.T) {
	const hubs = 3
	var opts []*server.Options
	for i := range hubs {
		t.Setenv("HUB_NAME", fmt.Sprintf("hub-%d", i+1))
		t.Setenv("CLIENT_PORT", fmt.Sprint(4222+i))
		t.Setenv("ROUTE_PORT", fmt.Sprint(6222+i))
		t.Setenv("LEAF_PORT", fmt.Sprint(7422+i))
		t.Setenv("STORE_DIR", filepath.Join(t.TempDir(), "js"))
		o, err := server.ProcessConfigFile(filepath.Join(clusterExamples, "nats-server.conf"))
		if err != nil {
			t.Fatalf("parse nats-server.conf for hub-%d: %v", i+1, err)
		}
		if o.ServerName != fmt.Sprintf("hub-%d", i+1) || o.Port != 4222+i || o.Cluster.Port != 6222+i || o.LeafNode.Port != 7422+i {
			t.Fatalf("hub-%d: environment not applied: name %q ports %d/%d/%d", i+1, o.ServerName, o.Port, o.Cluster.Port, o.LeafNode.Port)
		}
		opts = append(opts, o)
	}
	o := opts[0]
	if !o.JetStream || !o.SyncAlways || o.Cluster.Name != "tally" || len(o.Routes) != hubs || int64(o.MaxPayload) < config.Default().MaxPayload() {
		t.Fatalf("conf: jetstream %v sync_always %v cluster %q routes %d max_payload %d", o.JetStream, o.SyncAlways, o.Cluster.Name, len(o.Routes), o.MaxPayload)
	}
	var leafUsers []string
	for _, u := range o.LeafNode.Users {
		leafUsers = append(leafUsers, u.Username)
	}
	if !slices.Equal(leafUsers, []string{"edge-eu", "edge-us"}) {
		t.Errorf("leafnode users %v, want the two example edges", leafUsers)
	}
	s := wire.NewSubjects(wire.DefaultPrefix)
	for _, u := range o.Users {
		switch u.Username {
		case "settle-1", "settle-2":
			if u.Permissions != nil {
				t.Errorf("%s has permissions %+v, a node needs none", u.Username, u.Permissions)
			}
		case "studio-direct":
			want := ProviderPermissions(s, "studio-direct")
			if u.Permissions == nil || !slices.Equal(u.Permissions.Publish.Allow, want.Publish.Allow) || !slices.Equal(u.Permissions.Subscribe.Allow, want.Subscribe.Allow) ||
				u.Permissions.Publish.Deny != nil || u.Permissions.Subscribe.Deny != nil {
				t.Errorf("studio-direct permissions %+v, want those of ProviderPermissions", u.Permissions)
			}
		default:
			t.Errorf("unexpected user %q", u.Username)
		}
	}

	// Run the three on free ports; the routes keep their credentials.
	var routePorts, leafURLs []string
	for range hubs {
		routePorts = append(routePorts, fmt.Sprint(freeTCPPort(t)))
	}
	var servers []*server.Server
	for i, o := range opts {
		o.Port, o.LeafNode.Port = -1, freeTCPPort(t)
		fmt.Sscan(routePorts[i], &o.Cluster.Port)
		for j, r := range o.Routes {
			r.Host = "127.0.0.1:" + routePorts[j]
		}
		o.NoLog, o.NoSigs = true, true
		leafURLs = append(leafURLs, fmt.Sprintf("nats-leaf://127.0.0.1:%d", o.LeafNode.Port))
		servers = append(servers, natstest.RunWith(t, o))
	}
	nc := natstest.Connect(t, servers[1], nats.UserInfo("settle-1", "change-me-settle-1"))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		err := wire.EnsureStreams(ctx, js, s, wire.StreamOptions{Partitions: 4, Replicas: 3, MaxMsgBytes: 8 << 20})
		if err != nil && !clusterNotReady(err) {
			t.Fatalf("ensure streams on the stock cluster: %v", err)
		}
		return err
	})

	// The example edge, pointed at the stock cluster's leafnode ports.
	cfg, err := config.Load(filepath.Join(clusterExamples, "edge-eu.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.Leaf.Port, cfg.Leaf.Hubs, cfg.Ingest.HTTPListen = t.TempDir(), 0, leafURLs, ""
	edge, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { edge.Close() })
	natstest.Eventually(t, 30*time.Second, func() error {
		if !edge.LeafConnected() {
			return errors.New("edge leaf link not up")
		}
		return nil
	})
	p, err := nats.Connect(edge.ClientURL(), nats.UserInfo("studio-eu", "change-me-studio-eu"), nats.CustomInboxPrefix(ProviderInbox("studio-eu")))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tx := []byte(`{"id":"stock-1","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`)
	// The edge subscribes to its providers once its claims are confirmed
	// over the leaf link; until then a request has no responders.
	natstest.Eventually(t, 30*time.Second, func() error {
		_, err := p.Request(s.In("studio-eu"), []byte(`{}`), time.Second)
		if errors.Is(err, nats.ErrNoResponders) {
			return err
		}
		return nil
	})
	if a := request(t, p, s.In("studio-eu"), tx); a.Status != wire.StatusAccepted {
		t.Fatalf("studio-eu at the edge: %+v", a)
	}
	if _, err := p.Request(s.In("studio-us"), tx, 500*time.Millisecond); err == nil {
		t.Error("studio-eu could publish as studio-us at the edge")
	}
	natstest.Eventually(t, 30*time.Second, func() error { // forwarded over the leaf link into the R3 stream
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, s.TxStream())
		if err != nil {
			return err
		}
		if n := st.CachedInfo().State.Msgs; n < 1 {
			return fmt.Errorf("TALLY_TX holds %d messages", n)
		}
		return nil
	})
}

// TestClusterOptions: the hub.cluster and hub.leafnodes blocks become the
// nats-server route and leafnode options, credentials in every route URL.
func TestClusterOptions(t *testing.T) {
	cfg, err := config.Load(filepath.Join(clusterExamples, "hub-2.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	var o server.Options
	if err := clusterOptions(cfg, &o); err != nil {
		t.Fatal(err)
	}
	if o.Cluster.Name != "tally" || o.Cluster.Port != 6223 || o.Cluster.Username != "route" || len(o.Routes) != 3 {
		t.Fatalf("cluster options %+v, routes %v", o.Cluster, o.Routes)
	}
	for _, r := range o.Routes {
		if pw, _ := r.User.Password(); r.User.Username() != "route" || pw != "change-me-route-password" {
			t.Errorf("route %s lacks the route credentials", r.Redacted())
		}
	}
	if o.LeafNode.Port != 7423 || len(o.LeafNode.Users) != 2 || o.LeafNode.Users[0].Username != "edge-eu" {
		t.Errorf("leafnode options %+v", o.LeafNode)
	}
	cfg.Hub.Cluster.Port = 0
	if err := clusterOptions(cfg, &o); err != nil || o.Cluster.Port != -1 {
		t.Errorf("cluster listen port 0 gave %d (%v), want -1 (a free port)", o.Cluster.Port, err)
	}
	cfg.Hub.Cluster.TLS = config.TLSFiles{Cert: "missing.pem", Key: "missing-key.pem"}
	if err := clusterOptions(cfg, &o); err == nil {
		t.Error("missing TLS files accepted")
	}

	edge, err := config.Load(filepath.Join(clusterExamples, "edge-us.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := leafRemote(edge.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.URLs) != 3 || r.URLs[0].User.Username() != "edge-us" || r.TLS {
		t.Errorf("leaf remote %+v", r)
	}
}
