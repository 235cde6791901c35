package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/wire"
)

// The studio (the provider's own party) gets 10%, the operator the rest.
const testRules = `
ruleset "test" {
  effective  = "2020-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "all" {
    share "studio" {
      party   = "${provider}"
      percent = "10"
    }
    remainder = "operator"
  }
}
`

const pw = "correct horse battery"

// env is a running node with the console on and four accounts:
// admin (admin), viewer (viewer), alice (partner of prov-a), bob (partner of prov-b).
type env struct {
	t    *testing.T
	node *nodes.Node
	base string
	nc   *nats.Conn
	dir  string
	cfg  config.Config
	logs *syncBuffer // the node's log, at info
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T) *env {
	t.Helper()
	return startWith(t, nil)
}

// startWith is start with the config changed by set (nil: none) before the
// node starts.
func startWith(t *testing.T, set func(*config.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.hcl")
	if err := os.WriteFile(rules, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.DataDir = dir
	c.Hub.Port = 0
	c.Hub.SyncAlways = false
	c.Settle.Rules = rules
	c.Settle.SegmentMaxAge = 20 * time.Millisecond
	c.Settle.ConsoleListen = "127.0.0.1:0"
	c.Roles = []string{config.RoleHub, config.RoleIngest, config.RoleSettle}
	if set != nil {
		set(&c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	users := c.ConsoleUsersPath()
	for _, u := range []struct {
		name, role string
		parties    []string
	}{{"admin", console.RoleAdmin, nil}, {"viewer", console.RoleViewer, nil},
		{"alice", console.RolePartner, []string{"prov-a"}}, {"bob", console.RolePartner, []string{"prov-b"}}} {
		if err := console.AddUser(users, u.name, u.role, u.parties, pw); err != nil {
			t.Fatal(err)
		}
	}
	logs := &syncBuffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: logs})
	n, err := nodes.Start(context.Background(), c, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return &env{t: t, node: n, base: n.ConsoleURL(), nc: nc, dir: dir, cfg: c, logs: logs}
}

// send sends one bet of provider and waits for its answer.
func (e *env) send(provider, id, amount string) {
	e.t.Helper()
	if err := e.trySend(provider, id, amount); err != nil {
		e.t.Fatal(err)
	}
}

// trySend is send for other goroutines than the test's.
func (e *env) trySend(provider, id, amount string) error {
	tx := fmt.Sprintf(`{"id":%q,"type":"bet","amount":%q,"currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, id, amount)
	msg, err := e.nc.Request(wire.NewSubjects("").In(provider), []byte(tx), 10*time.Second)
	if err != nil {
		return err
	}
	var a wire.Answer
	if err := json.Unmarshal(msg.Data, &a); err != nil || a.Status != wire.StatusAccepted {
		return fmt.Errorf("send %s: %s", tx, msg.Data)
	}
	return nil
}

// waitSettled waits until the balances hold party's currency amount.
func (e *env) waitSettled(party, amount string) {
	e.t.Helper()
	natstest.Eventually(e.t, 20*time.Second, func() error {
		bs, err := e.node.Balances()
		if err != nil {
			return err
		}
		for _, b := range bs {
			if b.Party == party && b.Formatted() == amount {
				return nil
			}
		}
		return fmt.Errorf("balances %v: want %s %s", bs, party, amount)
	})
}

// client is a logged-in session (cookie and CSRF token) or a token.
type client struct {
	e       *env
	cookie  string
	csrf    string
	bearer  string
	setCook *http.Cookie
}

func (e *env) login(name string) *client {
	e.t.Helper()
	res, body := e.do(http.MethodPost, "/v1/login", `{"name":"`+name+`","password":"`+pw+`"}`, map[string]string{"Content-Type": "application/json"})
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", name, res.StatusCode, body)
	}
	var a struct{ CSRF string }
	if err := json.Unmarshal(body, &a); err != nil {
		e.t.Fatal(err)
	}
	var ck *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "tally_session" {
			ck = c
		}
	}
	if ck == nil {
		e.t.Fatal("login set no session cookie")
	}
	return &client{e: e, cookie: ck.Value, csrf: a.CSRF, setCook: ck}
}

func (e *env) do(method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	hc := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res, b
}

func (c *client) headers(extra map[string]string) map[string]string {
	h := map[string]string{}
	if c.cookie != "" {
		h["Cookie"] = "tally_session=" + c.cookie
	}
	if c.bearer != "" {
		h["Authorization"] = "Bearer " + c.bearer
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func (c *client) get(path string) (int, []byte) {
	c.e.t.Helper()
	res, b := c.e.do(http.MethodGet, path, "", c.headers(nil))
	return res.StatusCode, b
}

func (c *client) getJSON(path string, v any) {
	c.e.t.Helper()
	st, b := c.get(path)
	if st != http.StatusOK {
		c.e.t.Fatalf("GET %s: %d %s", path, st, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.e.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// sse reads a live feed until match returns true for an event, or the
// deadline passes.
func (c *client) sse(path string, within time.Duration, match func(event, data string) bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.e.base+path, nil)
	for k, v := range c.headers(nil) {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if match(event, strings.TrimPrefix(line, "data: ")) {
				return nil
			}
		}
	}
	return fmt.Errorf("feed ended without the event: %v", sc.Err())
}
