package ingest

import (
	"testing"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// TestStrictDialectsOverNATSAndHTTP: in every dialect, over NATS and HTTP,
// invalid UTF-8 ids get invalid_utf8 (never duplicate of a repaired id),
// duplicate fields get duplicate_field with the id echoed, and only the
// valid transactions reach the stream.
func TestStrictDialectsOverNATSAndHTTP(t *testing.T) {
	n, base, s, js := httpNode(t, nil)
	nc := natstest.Connect(t, s)
	canon := func(id, amount string) string {
		return `{"id":"` + id + `","type":"bet",` + amount + `,"currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`
	}
	minor := func(id, amount string) string {
		return `{"tx_id":"` + id + `","kind":"BET",` + amount + `,"currency_code":"EUR","ts_ms":1793527200000}`
	}
	type tc struct {
		provider, ctype, body string
		want                  []string // status or code per answer
		ids                   []string // echoed id per answer
	}
	cases := []tc{
		{"p1", "", canon("u\ufffd", `"amount":"1.00"`), []string{"accepted"}, []string{"u\ufffd"}},
		{"p1", "", canon("u\xff", `"amount":"1.00"`), []string{"invalid_utf8"}, []string{""}},
		{"p1", "", canon(`u\ud800`, `"amount":"1.00"`), []string{"invalid_utf8"}, []string{""}},
		{"p1", "", canon("d1", `"amount":"1.00","amount":"900.00"`), []string{"duplicate_field"}, []string{"d1"}},
		{"p1", "application/x-ndjson", canon("u\xfe", `"amount":"1.00"`) + "\n" + canon("d2", `"amount":"1.00","amount":"900.00"`) + "\n" + canon("n1", `"amount":"1.00"`) + "\n",
			[]string{"invalid_utf8", "duplicate_field", "accepted"}, []string{"", "d2", "n1"}},
		{"p3", "", minor("m\ufffd", `"amount_minor":100`), []string{"accepted"}, []string{"m\ufffd"}},
		{"p3", "", minor("m\xff", `"amount_minor":100`), []string{"invalid_utf8"}, []string{""}},
		{"p3", "", minor("md", `"amount_minor":100,"amount_minor":90000`), []string{"duplicate_field"}, []string{"md"}},
		{"p2", "text/csv", "id,type,amount,currency,occurred_at\nc\ufffd,bet,1.00,EUR,2026-11-01T10:00:00Z\nc\xff,bet,1.00,EUR,2026-11-01T10:00:00Z\n",
			[]string{"accepted", "invalid_utf8"}, []string{"c\ufffd", ""}},
		{"p2", "text/csv", "id,type,amount,amount,currency,occurred_at\ncd,bet,1.00,900.00,EUR,2026-11-01T10:00:00Z\n", []string{"duplicate_field"}, []string{""}},
	}
	codeOf := func(a wire.Answer) string {
		if a.Status == wire.StatusRejected {
			return a.Code
		}
		return a.Status
	}
	check := func(via string, c tc, as []wire.Answer) {
		t.Helper()
		if len(as) != len(c.want) {
			t.Errorf("%s %s %q: %d answers, want %d: %+v", via, c.provider, c.body, len(as), len(c.want), as)
			return
		}
		for i, a := range as {
			want := c.want[i]
			if via == "nats" && want == "accepted" {
				want = "duplicate" // HTTP went first with the same ids
			}
			if codeOf(a) != want || a.ID != c.ids[i] {
				t.Errorf("%s %s %q answer %d: %+v, want %s id %q", via, c.provider, c.body, i, a, want, c.ids[i])
			}
		}
	}
	for _, c := range cases {
		r := post(t, base, c.provider, "tok-"+c.provider, c.ctype, c.body)
		as := r.answers
		if as == nil {
			as = []wire.Answer{r.answer}
			if want := map[string]int{"accepted": 200, "invalid_utf8": 400, "duplicate_field": 422}[c.want[0]]; r.status != want {
				t.Errorf("http %q: status %d, want %d", c.body, r.status, want)
			}
		}
		check("http", c, as)
	}
	for _, c := range cases {
		if c.ctype != "" { // NATS requests carry no content type in this test: JSON dialects only
			continue
		}
		check("nats", c, []wire.Answer{ask(t, nc, c.provider, []byte(c.body))})
	}
	// Only the valid ones were stored and forwarded, with their ids as sent.
	waitForwarded(t, n, 4)
	v := readStream(t, js)
	v.checkComplete(t, map[string]int{"p1": 2, "p2": 1, "p3": 1})
	accepted := map[string]bool{"u\ufffd": true, "n1": true, "m\ufffd": true, "c\ufffd": true}
	for k, rec := range v.records {
		tx, e := txn.Decode(rec, txn.Limits{})
		if e != nil {
			t.Fatalf("record %s: %v", k, e)
		}
		if !accepted[tx.ID] || tx.Currency.Format(tx.Amount) != "1.00" {
			t.Errorf("record %s holds a transaction that was not accepted: %s", k, rec)
		}
	}
}
