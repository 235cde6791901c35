package console_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/recon"
)

// TestReconcileUploadAsksTheEdge: an upload with missing ids sends them to
// the node's edge (a real ingest node on the same hub) and shows, per id,
// what it did: o-1 (a rollback the edge accepted, held by settlement as an
// orphan, so not in the ledger) republished by the edge; ghost-1 never
// accepted; the id of a provider no edge serves held by no edge. The API
// and the page's button ask again; viewers may not.
func TestReconcileUploadAsksTheEdge(t *testing.T) {
	e := startWith(t, func(c *config.Config) { c.Providers = []config.Provider{{Name: "prov-a"}} })
	e.sendTx("prov-a", `{"id":"a-1","type":"bet","amount":"100.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`)
	e.sendTx("prov-a", `{"id":"o-1","type":"rollback","parent":"zzz","amount":"5.00","currency":"EUR","occurred_at":"2026-11-01T10:01:00Z"}`)
	e.waitSettled("prov-a", "10.00")
	admin := e.login("admin")
	report := `{"id":"a-1","type":"bet","amount":"100.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}
{"id":"o-1","type":"rollback","parent":"zzz","amount":"5.00","currency":"EUR","occurred_at":"2026-11-01T10:01:00Z"}
{"id":"ghost-1","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:02:00Z"}
`
	st, body := admin.upload("prov-a", "2026-11", "prov-a.jsonl", []byte(report), false)
	var it console.ReconItem
	if err := json.Unmarshal(body, &it); st != 200 || err != nil {
		t.Fatalf("upload: %d %s", st, body)
	}
	if got := recon.MissingIDs(it.Result); len(got) != 2 || got[0] != "o-1" || got[1] != "ghost-1" {
		t.Fatalf("missing %v, want o-1 and ghost-1", got)
	}
	if it.Replay == nil || len(it.Replay.Outcomes) != 2 || it.ReplayError != "" {
		t.Fatalf("replay %+v (%s), want 2 outcomes", it.Replay, it.ReplayError)
	}
	o1, ghost := it.Replay.Outcomes[0], it.Replay.Outcomes[1]
	if o1.ID != "o-1" || o1.Outcome != recon.ReplayRepublished || o1.Edge != e.cfg.NodeID || o1.EdgeSeq != 2 {
		t.Errorf("o-1 %+v, want republished by %s as seq 2", o1, e.cfg.NodeID)
	}
	if ghost.ID != "ghost-1" || ghost.Outcome != recon.ReplayNotAccepted || !strings.Contains(ghost.Reason, "never accepted") {
		t.Errorf("ghost-1 %+v, want not accepted", ghost)
	}
	st, page := admin.get(it.Page)
	for _, s := range []string{`data-outcome="republished"><td>o-1<`, `data-outcome="not_accepted"><td>ghost-1<`, `id="recon-replay-button"`} {
		if st != 200 || !strings.Contains(string(page), s) {
			t.Errorf("result page lacks %s: %d", s, st)
		}
	}

	// A provider no edge serves: nobody answers.
	st, body = admin.upload("prov-c", "2026-11", "prov-c.jsonl", []byte(`{"id":"c-1","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}
`), false)
	var itc console.ReconItem
	if err := json.Unmarshal(body, &itc); st != 200 || err != nil {
		t.Fatalf("upload prov-c: %d %s", st, body)
	}
	if itc.Replay == nil || len(itc.Replay.Outcomes) != 1 || itc.Replay.Outcomes[0].Outcome != recon.ReplayNoEdge {
		t.Errorf("prov-c replay %+v, want c-1 held by no edge", itc.Replay)
	}
	if _, page := admin.get(itc.Page); !strings.Contains(string(page), `data-outcome="no_edge"><td>c-1<`) || !strings.Contains(string(page), "no edge holds it") {
		t.Errorf("prov-c page does not say no edge holds c-1")
	}

	// Ask again: the API, the page's button; a viewer is refused both.
	st, body = admin.post("/v1/reconciliations/prov-a/1/replay", "")
	var again console.ReconItem
	if err := json.Unmarshal(body, &again); st != 200 || err != nil || again.Replay == nil || again.Replay.Outcomes[0].Outcome != recon.ReplayRepublished {
		t.Errorf("replay again: %d %s", st, body)
	}
	form := func(c *client) int {
		res, _ := e.do(http.MethodPost, "/reconcile/prov-a/1/replay", "csrf="+url.QueryEscape(c.csrf),
			c.headers(map[string]string{"Content-Type": "application/x-www-form-urlencoded"}))
		return res.StatusCode
	}
	if st := form(admin); st != http.StatusSeeOther {
		t.Errorf("replay button: %d, want 303", st)
	}
	viewer := e.login("viewer")
	if st, _ := viewer.post("/v1/reconciliations/prov-a/1/replay", ""); st != http.StatusForbidden {
		t.Errorf("viewer replay: %d, want 403", st)
	}
	if st := form(viewer); st != http.StatusForbidden {
		t.Errorf("viewer replay button: %d, want 403", st)
	}
}
