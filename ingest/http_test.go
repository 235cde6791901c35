package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

var testProviders = map[string]Provider{
	"p1": {Token: "tok-p1"},
	"p2": {Token: "tok-p2", Dialect: "csv"},
	"p3": {Token: "tok-p3", Dialect: "minor_units"},
}

func httpNode(t *testing.T, mod func(*Config)) (*Node, string, *server.Server, jetstream.JetStream) {
	t.Helper()
	s, js := hub(t)
	cfg := testConfig(t.TempDir())
	cfg.Providers = testProviders
	cfg.HTTPListen = "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	n := startNode(t, cfg, natstest.Connect(t, s), js)
	return n, "http://" + n.HTTPAddr().String(), s, js
}

type httpReply struct {
	status  int
	header  http.Header
	answer  wire.Answer   // single
	answers []wire.Answer // batch
}

func post(t *testing.T, base, provider, token, ctype, body string) httpReply {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/v1/providers/"+provider+"/transactions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := httpReply{status: resp.StatusCode, header: resp.Header}
	if bytes.HasPrefix(b, []byte("[")) {
		err = json.Unmarshal(b, &r.answers)
	} else {
		err = json.Unmarshal(b, &r.answer)
	}
	if err != nil {
		t.Fatalf("POST %s: answer %q: %v", provider, b, err)
	}
	return r
}

// TestHTTP covers the HTTP endpoint: bearer tokens per provider (401/403),
// every body form (object, array, NDJSON, CSV), answers and status codes,
// and that HTTP and NATS share one dedup index per provider.
func TestHTTP(t *testing.T) {
	n, base, s, js := httpNode(t, func(c *Config) { c.HTTPBodyBytes = 4096 })
	one := string(payload("h1", "1.00"))
	tests := []struct {
		name, provider, token, ctype, body string
		status                             int
		code                               txn.Code // single answer's code ("" = not rejected)
		statuses                           []string // batch answers
	}{
		{"no token", "p1", "", "", one, 401, txn.CodeUnauthorized, nil},
		{"unknown token", "p1", "nope", "", one, 401, txn.CodeUnauthorized, nil},
		{"another provider's token", "p1", "tok-p2", "", one, 403, txn.CodeForbidden, nil},
		{"own token for a path it does not own", "p9", "tok-p1", "", one, 403, txn.CodeForbidden, nil},
		{"accepted", "p1", "tok-p1", "application/json", one, 200, "", nil},
		{"duplicate", "p1", "tok-p1", "", one, 200, "", nil},
		{"conflict", "p1", "tok-p1", "", string(payload("h1", "2.00")), 409, txn.CodeConflict, nil},
		{"invalid", "p1", "tok-p1", "", `{"id":"x"}`, 422, txn.CodeMissingField, nil},
		{"malformed", "p1", "tok-p1", "", `{"id":`, 400, txn.CodeMalformed, nil},
		{"array", "p1", "tok-p1", "", "[" + string(payload("h2", "1.00")) + "," + one + `,{"id":"bad"}]`, 200, "", []string{"accepted", "duplicate", "rejected"}},
		{"ndjson", "p1", "tok-p1", "application/x-ndjson", string(payload("h3", "1.00")) + "\n" + string(payload("h4", "1.00")) + "\n", 200, "", []string{"accepted", "accepted"}},
		{"csv to a json dialect", "p1", "tok-p1", "text/csv", "id,type\n", 415, txn.CodeUnsupportedMedia, nil},
		{"too large", "p1", "tok-p1", "", strings.Repeat(" ", 5000) + one, 413, txn.CodeTooLarge, nil},
		{"csv", "p2", "tok-p2", "text/csv", "id,type,amount,currency,occurred_at\nc1,bet,1.00,EUR,2026-11-01T10:00:00Z\nc2,bet,1.001,EUR,2026-11-01T10:00:00Z\nc1,bet,1.00,EUR,2026-11-01T10:00:00Z\n", 200, "", []string{"accepted", "rejected", "duplicate"}},
		{"minor units", "p3", "tok-p3", "", `{"tx_id":"m1","kind":"BET","amount_minor":250,"currency_code":"EUR","ts_ms":1793527200000}`, 200, "", nil},
	}
	for _, tc := range tests {
		r := post(t, base, tc.provider, tc.token, tc.ctype, tc.body)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d (%+v %+v)", tc.name, r.status, tc.status, r.answer, r.answers)
			continue
		}
		if tc.statuses != nil {
			if len(r.answers) != len(tc.statuses) {
				t.Errorf("%s: %d answers, want %d", tc.name, len(r.answers), len(tc.statuses))
				continue
			}
			for i, s := range tc.statuses {
				if r.answers[i].Status != s {
					t.Errorf("%s: answer %d = %+v, want %s", tc.name, i, r.answers[i], s)
				}
			}
			continue
		}
		if txn.Code(r.answer.Code) != tc.code {
			t.Errorf("%s: answer %+v, want code %q", tc.name, r.answer, tc.code)
		}
		if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
	// NATS and HTTP share the dedup index: h1 over NATS is a duplicate of
	// the HTTP original, with its edge_seq.
	nc := natstest.Connect(t, s)
	if a := ask(t, nc, "p1", []byte(one)); a.Status != wire.StatusDuplicate || a.EdgeSeq != 1 {
		t.Errorf("h1 over NATS after HTTP: %+v, want duplicate 1", a)
	}
	// A provider not configured is not subscribed over NATS: no edge answers
	// it (routing by provider, docs/ingest.md "Topologies").
	if _, err := nc.Request(wire.NewSubjects("").In("p9"), payload("z", "1.00"), time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("unknown provider over NATS: %v, want no responders", err)
	}
	// Every dialect stored and forwarded the canonical form.
	waitForwarded(t, n, 6) // p1: h1 h2 h3 h4; p2: c1; p3: m1
	v := readStream(t, js)
	v.checkComplete(t, map[string]int{"p1": 4, "p2": 1, "p3": 1})
	for k, want := range map[string]string{
		"p2/1": `{"id":"c1","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`,
		"p3/1": `{"id":"m1","type":"bet","amount":"2.50","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`,
	} {
		if got := string(v.records[k]); got != want {
			t.Errorf("record %s = %s, want %s", k, got, want)
		}
	}
}

// TestHTTPBufferFull: at the budget a single HTTP transaction gets 503 with
// Retry-After and the buffer_full answer.
func TestHTTPBufferFull(t *testing.T) {
	_, base, _, _ := httpNode(t, func(c *Config) { c.BudgetBytes = 600 })
	var last httpReply
	for i := range 20 {
		last = post(t, base, "p1", "tok-p1", "", string(payload(fmt.Sprint("b", i), "1.00")))
		if last.status != 200 {
			break
		}
	}
	if last.status != 503 || last.answer.Code != string(txn.CodeBufferFull) || last.header.Get("Retry-After") == "" || last.answer.RetryAfterMs <= 0 {
		t.Fatalf("at the budget: status %d, Retry-After %q, answer %+v; want 503 buffer_full with a retry hint", last.status, last.header.Get("Retry-After"), last.answer)
	}
}

// TestHTTPOverloadSheds: with the committer's queue full (queue_max records
// waiting), an HTTP transaction is answered 503 buffer_full with a short
// retry hint without being decoded or written; once the queue has room it
// is accepted.
func TestHTTPOverloadSheds(t *testing.T) {
	n, base, _, _ := httpNode(t, nil)
	n.queued.Store(int64(n.cfg.QueueMax)) // as if QueueMax records were waiting
	r := post(t, base, "p1", "tok-p1", "", string(payload("o-1", "1.00")))
	if r.status != 503 || r.answer.Code != string(txn.CodeBufferFull) || r.answer.ID != "o-1" ||
		r.answer.RetryAfterMs != retryAfterOverload.Milliseconds() || !strings.Contains(r.answer.Reason, "queue_max") || r.header.Get("Retry-After") == "" {
		t.Fatalf("overloaded: status %d, answer %+v", r.status, r.answer)
	}
	if st := n.Stats(); st.Committed != 0 {
		t.Fatalf("a shed transaction was written: %+v", st)
	}
	n.queued.Store(0)
	if r := post(t, base, "p1", "tok-p1", "", string(payload("o-1", "1.00"))); r.status != 200 || r.answer.Status != wire.StatusAccepted {
		t.Fatalf("after the overload: status %d, answer %+v", r.status, r.answer)
	}
}
