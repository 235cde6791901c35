package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

// TestProviderIdentity runs the embedded hub with per-provider credentials
// and shows that a provider can publish only as itself: its publish on
// another provider's subject is refused by the server and never reaches the
// WAL, it cannot take other providers' requests or read their answers, and
// anonymous or wrong credentials cannot connect at all.
func TestProviderIdentity(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Hub.Port = 0
	cfg.Hub.SyncAlways = false // durability is not under test
	cfg.Roles = []string{config.RoleHub, config.RoleIngest}
	cfg.Providers = []config.Provider{
		{Name: "p1", NATSPassword: "p1-password"},
		{Name: "p2", NATSNkey: pub},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	url := n.ClientURL()
	s := wire.NewSubjects("")
	tx := []byte(`{"id":"i-1","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`)

	var mu sync.Mutex
	var asyncErrs []string
	onErr := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		asyncErrs = append(asyncErrs, err.Error())
		mu.Unlock()
	})
	p1, err := nats.Connect(url, nats.UserInfo("p1", "p1-password"), nats.CustomInboxPrefix(ProviderInbox("p1")), onErr)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()

	// Its own subject works.
	if a := request(t, p1, s.In("p1"), tx); a.Status != wire.StatusAccepted {
		t.Fatalf("p1 as itself: %+v", a)
	}
	// Another provider's subject: the server refuses the publish.
	if _, err := p1.Request(s.In("p2"), tx, 500*time.Millisecond); err == nil {
		t.Fatal("p1 published as p2 and got an answer")
	}
	// Taking other providers' requests or answers: refused subscriptions.
	for _, subj := range []string{s.InAll(), "_INBOX.>", ProviderInbox("p2") + ".>"} {
		sub, _ := p1.SubscribeSync(subj)
		p1.Flush()
		if _, err := sub.NextMsg(300 * time.Millisecond); err == nil {
			t.Errorf("p1 received a message on %s", subj)
		}
	}
	natstest.Eventually(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		all := strings.Join(asyncErrs, "\n")
		for _, want := range []string{`publish to "tally.in.p2"`, `subscription to "tally.in.*"`, `subscription to "_INBOX.>"`, `subscription to "_INBOX.p2.>"`} {
			if !strings.Contains(strings.ToLower(all), strings.ToLower(want)) {
				return errors.New("no permissions violation for " + want + " in:\n" + all)
			}
		}
		return nil
	})
	if st := n.Stats().Ingest; st.Committed != 1 {
		t.Errorf("WAL committed %d records, want only p1's 1", st.Committed)
	}

	// p2 with its nkey, as itself.
	p2, err := nats.Connect(url, nats.Nkey(pub, kp.Sign), nats.CustomInboxPrefix(ProviderInbox("p2")))
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if a := request(t, p2, s.In("p2"), tx); a.Status != wire.StatusAccepted || a.EdgeSeq != 1 {
		t.Errorf("p2 as itself: %+v", a)
	}
	// Without the private inbox prefix the answer cannot be received.
	p2plain, err := nats.Connect(url, nats.Nkey(pub, kp.Sign), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer p2plain.Close()
	if _, err := p2plain.Request(s.In("p2"), tx, 500*time.Millisecond); err == nil {
		t.Error("answer received on the shared _INBOX prefix")
	}

	for name, opts := range map[string][]nats.Option{
		"anonymous":      nil,
		"wrong password": {nats.UserInfo("p1", "guess-guess")},
	} {
		if nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(0))...); err == nil {
			nc.Close()
			t.Errorf("%s connection accepted", name)
		}
	}
}

func request(t *testing.T, nc *nats.Conn, subj string, body []byte) wire.Answer {
	t.Helper()
	m, err := nc.Request(subj, body, 5*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subj, err)
	}
	var a wire.Answer
	if err := json.Unmarshal(m.Data, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestExternalClusterPermissions runs an ingest-only node against a plain
// nats-server configured with exactly the permissions docs/ingest.md tells
// operators of an external cluster to set: the edge user may take provider
// requests, answer them, forward to TALLY_TX and serve replay, and nothing
// else is needed.
func TestExternalClusterPermissions(t *testing.T) {
	s := wire.NewSubjects("")
	srv := natstest.Run(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "studio-1", Password: "studio-1-password", Permissions: ProviderPermissions(s, "studio-1")},
			{Username: "edge-eu-1", Password: "edge-eu-1-password", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{"tally.tx.edge-eu-1.*", "$JS.API.STREAM.INFO.TALLY_TX",
					"$KV.TALLY_PROVIDERS.studio-1", "$JS.API.STREAM.INFO.KV_TALLY_PROVIDERS", "$JS.API.DIRECT.GET.KV_TALLY_PROVIDERS.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"tally.in.*", "tally.edge.edge-eu-1.replay", "_INBOX.>"}},
				Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute},
			}},
			{Username: "admin", Password: "admin-password"},
		}
	})
	admin, err := nats.Connect(srv.ClientURL(), nats.UserInfo("admin", "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ajs, _ := jetstream.New(admin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := wire.EnsureStreams(ctx, ajs, s, wire.StreamOptions{Partitions: 4, MaxMsgBytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := ajs.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: s.ClaimBucket(), History: 1}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.NodeID = "edge-eu-1"
	cfg.DataDir = t.TempDir()
	cfg.Roles = []string{config.RoleIngest}
	cfg.NATS = config.NATS{URL: srv.ClientURL(), User: "edge-eu-1", Password: "edge-eu-1-password"}
	cfg.Providers = []config.Provider{{Name: "studio-1"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	p, err := nats.Connect(srv.ClientURL(), nats.UserInfo("studio-1", "studio-1-password"), nats.CustomInboxPrefix(ProviderInbox("studio-1")))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 1; i <= 20; i++ {
		tx := fmt.Appendf(nil, `{"id":"x-%d","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, i)
		if a := request(t, p, s.In("studio-1"), tx); a.Status != wire.StatusAccepted {
			t.Fatalf("tx %d: %+v", i, a)
		}
	}
	natstest.Eventually(t, 20*time.Second, func() error {
		if st := n.Stats().Ingest; st.Forwarded != 20 {
			return fmt.Errorf("forwarded %d", st.Forwarded)
		}
		return nil
	})
	b, _ := json.Marshal(wire.ReplayRequest{Provider: "studio-1", From: 1, To: 20})
	m, err := admin.Request(s.Replay("edge-eu-1"), b, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep wire.ReplayReply
	if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Published != 20 || rep.Error != "" {
		t.Fatalf("replay through the edge's permissions: %s, %v", m.Data, err)
	}
}
