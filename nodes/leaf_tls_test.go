package nodes

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/internal/testcerts"
	"github.com/tally-mesh/tally/wire"
)

// TestLeafTLS: the leaf link and an edge's provider port with TLS, end to
// end. An edge that trusts another CA never gets its leaf link up; one that
// trusts the hubs' CA does, and forwards. A provider at the edge's port is
// refused in plaintext and with a certificate of another CA, and answered
// over TLS with its own certificate.
func TestLeafTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "tally")
	rogue := testcerts.NewCA(t, "rogue")
	hubCert := ca.Server(t, "hub")
	edgeCert := ca.Server(t, "edge")

	hubDir := t.TempDir()
	hc := testConfig(t, hubDir)
	hc.NodeID = "hub-1"
	hc.Roles = []string{config.RoleHub, config.RoleSettle}
	hc.Hub.LeafNodes = &config.LeafNodes{Host: "127.0.0.1", Port: freeTCPPort(t), Domain: config.DefaultJetStreamDomain,
		Users: []config.HubUser{{Name: "edge-1", Password: "edge-1-leaf-password"}},
		TLS:   config.TLSFiles{Cert: hubCert.Cert, Key: hubCert.Key}}
	if err := hc.Validate(); err != nil {
		t.Fatal(err)
	}
	hub, err := Start(context.Background(), hc, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	leafURL := fmt.Sprintf("nats-leaf://127.0.0.1:%d", hc.Hub.LeafNodes.Port)

	edge := func(name string, trust string) (*Node, config.Config) {
		c := testConfig(t, t.TempDir())
		c.NodeID = name
		c.Roles = []string{config.RoleIngest}
		c.Leaf = &config.Leaf{Host: "127.0.0.1", Port: 0, Hubs: []string{leafURL}, User: "edge-1", Password: "edge-1-leaf-password",
			Domain: config.DefaultJetStreamDomain, TLS: config.TLSFiles{CA: trust},
			ClientTLS: config.ServerTLS{TLSFiles: config.TLSFiles{Cert: edgeCert.Cert, Key: edgeCert.Key, CA: ca.CertPEM}, ClientAuth: config.ClientAuthVerifyAndMap}}
		c.Providers = []config.Provider{{Name: "studio-a", NATSCertUser: "studio-a@example.com"}}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		n, err := Start(context.Background(), c, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return n, c
	}

	// Trusting another CA: the leaf link never comes up.
	bad, _ := edge("edge-rogue", rogue.CertPEM)
	time.Sleep(3 * time.Second) // several leaf reconnect attempts (one a second)
	if bad.LeafConnected() {
		t.Error("an edge trusting another CA got its leaf link up")
	}
	bad.Close()

	good, _ := edge("edge-1", ca.CertPEM)
	defer good.Close()
	natstest.Eventually(t, 20*time.Second, func() error {
		if !good.LeafConnected() {
			return errors.New("leaf link not up")
		}
		return nil
	})
	url := good.ClientURL()
	s := wire.NewSubjects("")
	tx := []byte(`{"id":"leaf-tls-1","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`)

	// Plaintext and foreign certificates are refused at the edge's port.
	forged := rogue.Client(t, "studio-a", "studio-a@example.com")
	for name, opts := range map[string][]nats.Option{
		"plaintext":             nil,
		"certificate of rogue":  {nats.RootCAs(ca.CertPEM), nats.ClientCert(forged.Cert, forged.Key)},
		"no client certificate": {nats.RootCAs(ca.CertPEM)},
	} {
		nc, err := nats.Connect(url, append(opts, nats.Timeout(5*time.Second), nats.MaxReconnects(0))...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected to the edge's provider port", name)
		}
	}
	studioA := ca.Client(t, "studio-a", "studio-a@example.com")
	nc, err := nats.Connect(url, nats.RootCAs(ca.CertPEM), nats.ClientCert(studioA.Cert, studioA.Key),
		nats.CustomInboxPrefix(ProviderInbox("studio-a")), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("studio-a with its certificate: %v", err)
	}
	defer nc.Close()
	natstest.Eventually(t, 20*time.Second, func() error { // the edge subscribes once its claim is confirmed over the leaf link
		_, err := nc.Request(s.In("studio-a"), []byte(`{}`), time.Second)
		if errors.Is(err, nats.ErrNoResponders) {
			return err
		}
		return nil
	})
	if a := request(t, nc, s.In("studio-a"), tx); a.Status != wire.StatusAccepted {
		t.Fatalf("studio-a over TLS at the edge: %+v", a)
	}
	natstest.Eventually(t, 30*time.Second, func() error { // forwarded over the TLS leaf link and settled at the hub
		if n := hub.Stats().Settle.Entries; n < 1 {
			return fmt.Errorf("%d settled", n)
		}
		return nil
	})
}
