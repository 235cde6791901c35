package nodes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/config"
)

// The hub cluster (issue 11, docs/deploy.md): every hub process runs the
// embedded nats-server with the same cluster name, routes to the other hubs
// and its own server name (node_id), so the three form one JetStream cluster
// (a Raft meta group plus one Raft group per stream) and TALLY_TX and
// TALLY_LEDGER are replicated on all three. A hub may also listen for edges
// connecting as leaf nodes (hub.leafnodes).

// clusterOptions adds the route and leafnode listeners of the hub role to o.
func clusterOptions(c config.Config, o *server.Options) error {
	if cl := c.Hub.Cluster; cl != nil {
		tc, err := tlsConfig(cl.TLS, true)
		if err != nil {
			return fmt.Errorf("hub.cluster.tls: %w", err)
		}
		o.Cluster = server.ClusterOpts{
			Name:     cl.Name,
			Host:     cl.Host,
			Port:     listenPort(cl.Port),
			Username: cl.User,
			Password: cl.Password,
		}
		if tc != nil {
			o.Cluster.TLSConfig, o.Cluster.TLSTimeout = tc, 2
		}
		for _, r := range cl.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return fmt.Errorf("hub.cluster.routes %q: %w", r, err)
			}
			if cl.User != "" {
				u.User = url.UserPassword(cl.User, cl.Password)
			}
			o.Routes = append(o.Routes, u)
		}
	}
	if ln := c.Hub.LeafNodes; ln != nil {
		tc, err := tlsConfig(ln.TLS, true)
		if err != nil {
			return fmt.Errorf("hub.leafnodes.tls: %w", err)
		}
		o.LeafNode.Host, o.LeafNode.Port = ln.Host, listenPort(ln.Port)
		o.LeafNode.NoAdvertise = ln.NoAdvertise
		o.JetStreamDomain = ln.Domain // edges reach this JetStream as $JS.<domain>.API across the leaf link
		for _, u := range ln.Users {
			// nil permissions: an edge forwards batches into JetStream and
			// serves replay, like a node user.
			o.LeafNode.Users = append(o.LeafNode.Users, &server.User{Username: u.Name, Password: u.Password})
		}
		if tc != nil {
			o.LeafNode.TLSConfig, o.LeafNode.TLSTimeout = tc, 2
		}
	}
	return nil
}

// listenPort maps "port 0 picks a free one" to nats-server's -1 (0 means the
// default port or "off" there).
func listenPort(p int) int {
	if p == 0 {
		return -1
	}
	return p
}

// tlsConfig builds a TLS config from PEM files (nil when none are set). A
// server side with a CA verifies its peers' certificates (mutual TLS); the
// CA also verifies the server when this side dials (routes, leaf remotes),
// as nats-server's own config parser does.
func tlsConfig(t config.TLSFiles, serverSide bool) (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: t.Cert, KeyFile: t.Key, CaFile: t.CA,
		Verify: serverSide && t.CA != "",
	})
	if err != nil {
		return nil, err
	}
	tc.RootCAs = tc.ClientCAs
	return tc, nil
}

// clusterWaitMax bounds how long a hub waits for its cluster to elect a
// JetStream meta leader and place the streams: the other hubs may be
// starting too (or be down: then start-up fails and the operator sees why).
const clusterWaitMax = 5 * time.Minute

// clusterAttemptMax bounds one attempt: while no meta leader answers, a
// JetStream API request would otherwise wait the client's 5 s default.
const clusterAttemptMax = 2 * time.Second

// ensureOnCluster runs ensure until it succeeds. On a single hub it runs once.
// On a cluster the first attempts fail while the meta group has no leader or
// too few peers for R3 placement, or when two hubs create the same stream at
// once; those answers are retried (bounded by clusterWaitMax and ctx), every
// other error returns at once.
func ensureOnCluster(ctx context.Context, c config.Config, log hclog.Logger, ensure func(context.Context) error) error {
	if c.Hub.Cluster == nil {
		return ensure(ctx)
	}
	deadline := time.Now().Add(clusterWaitMax)
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, clusterAttemptMax)
		err := ensure(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("cluster streams ready", "attempts", attempt)
			}
			return nil
		}
		if !clusterNotReady(err) || time.Now().After(deadline) {
			return fmt.Errorf("cluster %s: %w", c.Hub.Cluster.Name, err)
		}
		if attempt == 1 || attempt%20 == 0 {
			log.Info("waiting for the cluster to place the streams", "attempt", attempt, "error", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %s: %w (last: %v)", c.Hub.Cluster.Name, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// JetStream API error codes that mean "the cluster is still forming".
const (
	jsNoPeers          = 10005 // no suitable peers for placement
	jsClusterNotActive = 10006
	jsClusterNotAvail  = 10008 // JetStream system temporarily unavailable
	jsClusterNotLeader = 10009
	jsInsufficient     = 10023 // insufficient resources
	jsStreamNameExist  = 10058 // another hub created it a moment ago
)

func clusterNotReady(err error) bool {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode {
		case jsNoPeers, jsClusterNotActive, jsClusterNotAvail, jsClusterNotLeader, jsInsufficient, jsStreamNameExist:
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}
