package nodes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// strictTx is a canonical transaction whose id literal is exactly lit (the
// bytes between the quotes, as sent) and whose amount member is amount
// (e.g. `"amount":"1.00"`, or two of them).
func strictTx(lit, amount string) []byte {
	return []byte(`{"id":"` + lit + `","type":"bet",` + amount + `,"currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`)
}

// strictCase is one payload and the answer it must get.
type strictCase struct {
	body     []byte
	status   string // accepted or rejected
	code     string
	echo     string // id the answer must carry
	ledgerID string // id the ledger holds for it when accepted
}

// strictCases are issue 16's items 4 and 5 for one id prefix: a valid id that
// holds U+FFFD, then byte strings that encoding/json used to repair into that
// same id (each was answered duplicate and never settled), then a payload
// with two amounts (the last one used to win).
func strictCases(pfx string) []strictCase {
	one := `"amount":"1.00"`
	cs := []strictCase{{body: strictTx(pfx+"\ufffd", one), status: wire.StatusAccepted, echo: pfx + "\ufffd", ledgerID: pfx + "\ufffd"}}
	for _, bad := range []string{"\xff", "\xfe", "\xc3", "\xed\xa0\x80", "\xef\xbf", `\ud800`, `\udfff`, `\udc00\ud800`} {
		cs = append(cs, strictCase{body: strictTx(pfx+bad, one), status: wire.StatusRejected, code: "invalid_utf8"})
	}
	cs = append(cs,
		strictCase{body: strictTx(pfx+"dup", `"amount":"1.00","amount":"900.00"`), status: wire.StatusRejected, code: "duplicate_field", echo: pfx + "dup"},
		strictCase{body: strictTx(pfx+"dup", `"amount":"900.00","\u0061mount":"1.00"`), status: wire.StatusRejected, code: "duplicate_field", echo: pfx + "dup"},
		strictCase{body: []byte(`{"id":"` + pfx + `meta","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z","meta":{"k":"1","k":"2"}}`), status: wire.StatusRejected, code: "duplicate_field", echo: pfx + "meta"},
		strictCase{body: strictTx(pfx+"ok", one), status: wire.StatusAccepted, echo: pfx + "ok", ledgerID: pfx + "ok"},
	)
	return cs
}

func checkAnswer(t *testing.T, via string, c strictCase, a wire.Answer) {
	t.Helper()
	got := a.Status
	if a.Status == wire.StatusRejected {
		got += "/" + a.Code
	}
	want := c.status
	if c.code != "" {
		want += "/" + c.code
	}
	if got != want || a.ID != c.echo {
		t.Errorf("%s %q: answer %+v, want %s with id %q", via, c.body, a, want, c.echo)
	}
}

// TestStrictInputRealNode sends the invalid UTF-8 id variants and the
// duplicate-key payloads to a real node (hub, ingest WAL, settlement, ledger)
// over NATS and over HTTP, one by one and as batches. Each variant gets
// invalid_utf8 (not duplicate), each duplicate key duplicate_field with the
// id echoed, and the ledger holds exactly the accepted transactions.
func TestStrictInputRealNode(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	const token = "strict-token-0123456789"
	cfg.Providers = []config.Provider{{Name: "studio-s", NATSPassword: "studio-s-password", HTTPToken: token}}
	cfg.Ingest.HTTPListen = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	nc, err := nats.Connect(n.ClientURL(), nats.UserInfo("studio-s", "studio-s-password"), nats.CustomInboxPrefix(ProviderInbox("studio-s")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subj := wire.NewSubjects("").In("studio-s")
	httpURL := "http://" + n.HTTPAddr() + "/v1/providers/studio-s/transactions"

	viaNATS := func(body []byte) []byte {
		msg, err := nc.Request(subj, body, 10*time.Second)
		if err != nil {
			t.Fatalf("NATS request %q: %v", body, err)
		}
		return msg.Data
	}
	viaHTTP := func(body []byte) []byte {
		req, _ := http.NewRequest("POST", httpURL, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("HTTP request %q: %v", body, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	want := map[string]bool{} // ledger ids
	for _, tr := range []struct {
		name string
		send func([]byte) []byte
	}{{"nats", viaNATS}, {"http", viaHTTP}} {
		// One request per payload.
		for _, c := range strictCases(tr.name + "-1-") {
			var a wire.Answer
			raw := tr.send(c.body)
			if err := json.Unmarshal(raw, &a); err != nil {
				t.Fatalf("%s answer %q: %v", tr.name, raw, err)
			}
			checkAnswer(t, tr.name, c, a)
			if c.ledgerID != "" {
				want[c.ledgerID] = true
			}
		}
		// The same as one batch: answers in order, matched by id as well.
		cs := strictCases(tr.name + "-b-")
		parts := make([][]byte, len(cs))
		for i, c := range cs {
			parts[i] = c.body
			if c.ledgerID != "" {
				want[c.ledgerID] = true
			}
		}
		raw := tr.send(append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']'))
		var as []wire.Answer
		if err := json.Unmarshal(raw, &as); err != nil || len(as) != len(cs) {
			t.Fatalf("%s batch answer %q: %v (%d answers for %d)", tr.name, raw, err, len(as), len(cs))
		}
		for i, c := range cs {
			checkAnswer(t, tr.name+" batch", c, as[i])
		}
	}

	// The ledger holds exactly the accepted transactions, each once.
	natstest.Eventually(t, 60*time.Second, func() error {
		if err := n.Err(); err != nil {
			t.Fatalf("node failed: %v", err)
		}
		if st := n.Stats(); st.Settle.Entries != uint64(len(want)) {
			return fmt.Errorf("settled %d of %d accepted", st.Settle.Entries, len(want))
		}
		return nil
	})
	if err := n.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	seen := map[string]int{}
	err = store.ForEachEntry(cfg.LedgerDir(), func(e store.Entry) error {
		seen[e.Tx.ID]++
		if e.Provider != "studio-s" || !want[e.Tx.ID] {
			t.Errorf("ledger holds %s/%q, which was not accepted", e.Provider, e.Tx.ID)
		}
		if a := e.Tx.Currency.Format(e.Tx.Amount); a != "1.00" {
			t.Errorf("ledger holds %q with amount %s, want 1.00 (a duplicate amount key was applied)", e.Tx.ID, a)
		}
		if strings.Contains(e.Tx.ID, "dup") || strings.Contains(e.Tx.ID, "meta") {
			t.Errorf("ledger holds %q, which was rejected", e.Tx.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("%q is in the ledger %d times, want once", id, seen[id])
		}
	}
	t.Logf("ledger: %d entries, %d accepted ids", len(seen), len(want))
}
