package console_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/internal/testcerts"
	"github.com/tally-mesh/tally/recon"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// sendTx sends one canonical transaction of provider and waits for its answer.
func (e *env) sendTx(provider, tx string) {
	e.t.Helper()
	msg, err := e.nc.Request(wire.NewSubjects("").In(provider), []byte(tx), 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	var a wire.Answer
	if err := json.Unmarshal(msg.Data, &a); err != nil || a.Status != wire.StatusAccepted {
		e.t.Fatalf("send %s: %s", tx, msg.Data)
	}
}

// gamingTraffic: prov-a has a bet of 100 and a win of 30 in game g1, a bet
// of 50 in g2 and its rollback (without a game: it counts in its parent's);
// prov-b one bet of 200 in g9. All at 2026-11-01T10:xx UTC.
func gamingTraffic(e *env) {
	e.sendTx("prov-a", `{"id":"a-1","type":"bet","amount":"100.00","currency":"EUR","game":"g1","occurred_at":"2026-11-01T10:00:00Z"}`)
	e.sendTx("prov-a", `{"id":"a-2","type":"win","amount":"30.00","currency":"EUR","game":"g1","occurred_at":"2026-11-01T10:05:00Z"}`)
	e.sendTx("prov-a", `{"id":"a-3","type":"bet","amount":"50.00","currency":"EUR","game":"g2","occurred_at":"2026-11-01T10:10:00Z"}`)
	e.sendTx("prov-b", `{"id":"b-1","type":"bet","amount":"200.00","currency":"EUR","game":"g9","occurred_at":"2026-11-01T11:00:00Z"}`)
	e.waitSettled("prov-a", "12.00") // 10 − 3 + 5
	e.sendTx("prov-a", `{"id":"a-4","type":"rollback","parent":"a-3","amount":"50.00","currency":"EUR","occurred_at":"2026-11-01T10:20:00Z"}`)
	e.waitSettled("prov-a", "7.00")
	e.waitSettled("prov-b", "20.00")
}

// TestGGRAndRevenue: GGR per provider and game, the rollback counted in its
// parent's game; each party's shares by hour; the dashboard and the portal
// show them.
func TestGGRAndRevenue(t *testing.T) {
	e := start(t)
	gamingTraffic(e)
	admin := e.login("admin")
	var g console.GGR
	natstest.Eventually(t, 10*time.Second, func() error {
		admin.getJSON("/v1/ggr?period=2026-11-01", &g)
		if len(g.ByGame) != 3 || !g.Complete {
			return fmt.Errorf("ggr not yet complete: %+v", g)
		}
		return nil
	})
	want := map[string][2]string{"prov-a|g1": {"70.00", "1"}, "prov-a|g2": {"0.00", "1"}, "prov-b|g9": {"200.00", "1"}}
	for _, r := range g.ByGame {
		w, ok := want[r.Provider+"|"+r.Game]
		if !ok || r.GGR != w[0] || fmt.Sprint(r.Bets) != w[1] || r.Currency != "EUR" {
			t.Errorf("by game %+v, want %v", r, w)
		}
		if r.Game == "g2" && r.Reversals != 1 {
			t.Errorf("the rollback of a-3 is not counted in g2: %+v", r)
		}
	}
	if len(g.ByProvider) != 2 || g.ByProvider[0].GGR != "70.00" || g.ByProvider[1].GGR != "200.00" {
		t.Errorf("by provider: %+v", g.ByProvider)
	}
	if len(g.Hours) != 2 || g.Hours[0].Hour != "2026-11-01T10:00:00Z" || g.Hours[0].Amount != "70.00" || g.Hours[1].Amount != "200.00" {
		t.Errorf("hours: %+v", g.Hours)
	}
	// Another day has none; a provider filter keeps one.
	admin.getJSON("/v1/ggr?period=2026-11-02", &g)
	if len(g.ByGame) != 0 {
		t.Errorf("2026-11-02: %+v", g.ByGame)
	}
	admin.getJSON("/v1/ggr?period=2026-11&provider=prov-b", &g)
	if len(g.ByGame) != 1 || g.ByGame[0].Provider != "prov-b" {
		t.Errorf("month, prov-b: %+v", g.ByGame)
	}
	if st, body := admin.get("/v1/ggr?period=yesterday"); st != 400 || !strings.Contains(string(body), "bad_request") {
		t.Errorf("bad period: %d %s", st, body)
	}

	// alice's revenue: her 10% of each, by hour (UTC: the rules name no zone).
	alice := e.login("alice")
	var rs []console.PartyRevenue
	alice.getJSON("/v1/revenue?period=2026-11-01", &rs)
	if len(rs) != 1 || rs[0].Party != "prov-a" || rs[0].TimeZone != "UTC" || len(rs[0].Hours) != 24 {
		t.Fatalf("alice's revenue: %+v", rs)
	}
	h := rs[0].Hours[10]
	if h.Hour != "2026-11-01T10:00:00Z" || h.Amount != "7.00" || h.Count != 4 || len(rs[0].Totals) != 1 || rs[0].Totals[0].Amount != "7.00" {
		t.Errorf("alice's 10:00: %+v totals %+v", h, rs[0].Totals)
	}
	if rs[0].Hours[11].Amount != "0.00" {
		t.Errorf("alice's 11:00 holds bob's bet: %+v", rs[0].Hours[11])
	}
	// An operator sees every party, or one.
	admin.getJSON("/v1/revenue?period=2026-11-01&party=prov-b", &rs)
	if len(rs) != 1 || rs[0].Totals[0].Amount != "20.00" {
		t.Errorf("admin, prov-b: %+v", rs)
	}

	// The dashboard shows the games and the chart; the portal the hours.
	st, body := admin.get("/?period=2026-11-01")
	for _, s := range []string{`data-game="prov-a|g1|EUR"`, `>70.00<`, `<svg class="chart"`, `id="alerts"`, `id="sla"`} {
		if st != 200 || !strings.Contains(string(body), s) {
			t.Errorf("dashboard lacks %s: %d", s, st)
		}
	}
	st, body = alice.get("/?period=2026-11-01")
	if st != 200 || !strings.Contains(string(body), `class="revenue-total">7.00 EUR<`) || strings.Contains(string(body), "prov-b") || strings.Contains(string(body), "g9") {
		t.Errorf("portal: %d %s", st, body)
	}
}

// upload posts a multipart reconciliation as c (a session: with its CSRF
// token unless noCSRF).
func (c *client) upload(provider, period, name string, report []byte, noCSRF bool) (int, []byte) {
	c.e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("provider", provider)
	mw.WriteField("period", period)
	fw, _ := mw.CreateFormFile("report", name)
	fw.Write(report)
	mw.Close()
	hdr := map[string]string{"Content-Type": mw.FormDataContentType()}
	if !noCSRF && c.csrf != "" {
		hdr["X-CSRF-Token"] = c.csrf
	}
	res, b := c.e.do(http.MethodPost, "/v1/reconciliations", buf.String(), c.headers(hdr))
	return res.StatusCode, b
}

// plantedReport has one break of each kind against gamingTraffic's prov-a:
// a-1 and a-3 (an identical duplicate) match; a-2 with another amount; a-3 twice; a-9 missing from the
// ledger; a row the decoder refuses; and a-4 left out (extra in the ledger).
const plantedReport = `{"id":"a-1","type":"bet","amount":"100.00","currency":"EUR","game":"g1","occurred_at":"2026-11-01T10:00:00Z"}
{"id":"a-2","type":"win","amount":"31.00","currency":"EUR","game":"g1","occurred_at":"2026-11-01T10:05:00Z"}
{"id":"a-3","type":"bet","amount":"50.00","currency":"EUR","game":"g2","occurred_at":"2026-11-01T10:10:00Z"}
{"id":"a-3","type":"bet","amount":"50.00","currency":"EUR","game":"g2","occurred_at":"2026-11-01T10:10:00Z"}
{"id":"a-9","type":"bet","amount":"5.00","currency":"EUR","occurred_at":"2026-11-01T12:00:00Z"}
{"id":"a-10","type":"bet","amount":"5.001","currency":"EUR","occurred_at":"2026-11-01T12:00:00Z"}
`

// TestReconcileUpload: an operator uploads a report with planted breaks;
// each is listed, the result is kept signed in recon's store (the files
// `tally reconcile` reads), listed and downloadable.
func TestReconcileUpload(t *testing.T) {
	e := startWith(t, func(c *config.Config) { c.Settle.ConsoleMaxUpload = 4 << 10 })
	gamingTraffic(e)
	admin := e.login("admin")
	st, body := admin.upload("prov-a", "2026-11", "prov-a-2026-11.jsonl", []byte(plantedReport), false)
	if st != 200 {
		t.Fatalf("upload: %d %s", st, body)
	}
	var it console.ReconItem
	if err := json.Unmarshal(body, &it); err != nil {
		t.Fatal(err)
	}
	r := it.Result
	if it.Seq != 1 || it.Provider != "prov-a" || r.Matched != 2 || len(r.Missing) != 1 || r.Missing[0].ID != "a-9" ||
		len(r.Mismatched) != 1 || r.Mismatched[0].ID != "a-2" || len(r.Duplicates) != 1 || r.Duplicates[0].ID != "a-3" ||
		len(r.Rejected) != 1 || len(r.Extra) != 1 || r.Extra[0].ID != "a-4" || it.Breaks != 5 {
		t.Fatalf("result: %+v", it)
	}
	// The result page lists each break.
	st, page := admin.get(it.Page)
	for _, s := range []string{`data-kind="missing"><td>missing</td><td>a-9<`, `data-kind="mismatched"><td>mismatched</td><td>a-2<`,
		`data-kind="duplicate"><td>duplicate</td><td>a-3<`, `data-kind="extra"><td>extra</td><td>a-4<`, `data-kind="rejected"`, `id="recon-breaks">5<`} {
		if st != 200 || !strings.Contains(string(page), s) {
			t.Errorf("result page lacks %s: %d", s, st)
		}
	}
	// Kept in recon's store, signed by the ledger key.
	vkey, err := store.ReadVerifierKey(e.cfg.LedgerDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := recon.Load(e.cfg.ReconciliationsDir(), "prov-a", v)
	if err != nil || len(ch.Kept) != 1 || ch.Kept[0].Hash != it.Hash {
		t.Fatalf("recon store: %v %+v", err, ch)
	}
	var list []console.ReconItem
	admin.getJSON("/v1/reconciliations", &list)
	if len(list) != 1 || list[0].Hash != it.Hash || list[0].Result != nil {
		t.Errorf("list: %+v", list)
	}
	st, b := admin.get(it.Note)
	if _, err := recon.Open(b, v); st != 200 || err != nil {
		t.Errorf("note: %d %v", st, err)
	}
	if st, b := admin.get(it.CSV); st != 200 || !strings.Contains(string(b), "prov-a,2026-11,missing,a-9,") {
		t.Errorf("csv: %d %s", st, b)
	}
	if st, b := admin.get(it.JSON); st != 200 || !bytes.Equal(bytes.TrimSpace(b), r.Canonical()) {
		t.Errorf("json: %d %s", st, b)
	}
	// A second run links to the first.
	st, body = admin.upload("prov-a", "2026-11", "again.jsonl", []byte(plantedReport), false)
	if err := json.Unmarshal(body, &it); st != 200 || err != nil || it.Seq != 2 || it.Result.Previous != ch.Kept[0].Hash {
		t.Errorf("second run: %d %s", st, body)
	}

	// Refusals: each with its code, nothing kept.
	viewer := e.login("viewer")
	for _, c := range []struct {
		who                    *client
		provider, period, name string
		report                 []byte
		noCSRF                 bool
		status                 int
		code                   string
	}{
		{admin, "prov-a", "2026-11", "r.jsonl", []byte(plantedReport), true, 403, "csrf"},
		{viewer, "prov-a", "2026-11", "r.jsonl", []byte(plantedReport), false, 403, "forbidden"},
		{admin, "prov-a", "november", "r.jsonl", []byte(plantedReport), false, 400, "bad_request"},
		{admin, "../prov-b", "2026-11", "r.jsonl", []byte(plantedReport), false, 400, "bad_request"},
		{admin, "prov-a", "2026-11", "big.jsonl", bytes.Repeat([]byte(plantedReport), 20), false, 413, "bad_request"},
	} {
		st, body := c.who.upload(c.provider, c.period, c.name, c.report, c.noCSRF)
		if st != c.status || !strings.Contains(string(body), `"code":"`+c.code+`"`) {
			t.Errorf("%+v: %d %s", c.provider+" "+c.period+" "+c.name, st, body)
		}
	}
	admin.getJSON("/v1/reconciliations", &list)
	if len(list) != 2 {
		t.Errorf("refused uploads were kept: %d", len(list))
	}
	for _, p := range []string{"/v1/reconciliations/prov-a/3/note", "/v1/reconciliations/prov-a/01/note", "/v1/reconciliations/prov-a/1/pdf", "/v1/reconciliations/..%2Fx/1/note"} {
		if st, _ := admin.get(p); st != 404 {
			t.Errorf("%s: %d, want 404", p, st)
		}
	}
}

// TestDashScope: a partner reaches no figure of the node and no
// reconciliation, by the API or the UI, with any guessed parameter.
func TestDashScope(t *testing.T) {
	e := start(t)
	gamingTraffic(e)
	admin := e.login("admin")
	if st, body := admin.upload("prov-b", "2026-11", "b.jsonl", []byte(`{"id":"b-1","type":"bet","amount":"200.00","currency":"EUR","game":"g9","occurred_at":"2026-11-01T11:00:00Z"}`+"\n"), false); st != 200 {
		t.Fatalf("upload: %d %s", st, body)
	}
	alice := e.login("alice")
	for _, c := range []struct {
		path string
		want int
	}{
		{"/v1/ggr?period=2026-11-01", 403}, {"/v1/ggr?provider=prov-b", 403}, {"/v1/alerts", 403}, {"/v1/sla?period=2026-11", 403},
		{"/v1/reconciliations", 403}, {"/v1/reconciliations?provider=prov-b", 403},
		{"/v1/reconciliations/prov-b/1/note", 403}, {"/v1/reconciliations/prov-b/1/csv", 403}, {"/v1/reconciliations/prov-b/1/json", 403},
		{"/v1/revenue?party=prov-b", 404}, {"/v1/revenue?party=prov-b&period=2026-11-01", 404}, {"/v1/revenue?party=prov%2Db", 404},
		{"/v1/revenue?party=operator", 404}, {"/v1/revenue?period=2026-11-01", 200},
		{"/reconcile", 404}, {"/reconcile/prov-b/1", 404}, {"/reconcile/prov-b/2", 404},
	} {
		st, body := alice.get(c.path)
		if st != c.want || strings.Contains(string(body), "prov-b") || strings.Contains(string(body), "b-1") || strings.Contains(string(body), "g9") {
			t.Errorf("alice %s: %d (want %d) %s", c.path, st, c.want, body)
		}
	}
	// POSTs: the API and the UI form.
	if st, body := alice.upload("prov-b", "2026-11", "b.jsonl", []byte("{}\n"), false); st != 403 || strings.Contains(string(body), "prov-b") {
		t.Errorf("alice uploads: %d %s", st, body)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", alice.csrf)
	mw.WriteField("provider", "prov-b")
	mw.WriteField("period", "2026-11")
	fw, _ := mw.CreateFormFile("report", "b.jsonl")
	fw.Write([]byte("{}\n"))
	mw.Close()
	res, body := e.do(http.MethodPost, "/reconcile", buf.String(), alice.headers(map[string]string{"Content-Type": mw.FormDataContentType()}))
	if res.StatusCode != 404 || strings.Contains(string(body), "prov-b") {
		t.Errorf("alice posts the form: %d %s", res.StatusCode, body)
	}
	// Nothing of alice's reached the store.
	var list []console.ReconItem
	admin.getJSON("/v1/reconciliations", &list)
	if len(list) != 1 {
		t.Errorf("reconciliations: %+v", list)
	}
	// The operator's figures, for contrast: 200 with the node's data.
	var alerts []map[string]any
	admin.getJSON("/v1/alerts", &alerts)
	var s console.SLAAnswer
	admin.getJSON("/v1/sla", &s)
	if s.Figures == nil {
		t.Errorf("sla: %+v", s)
	}
}

// TestReconcileForm: the UI's multipart form, with its CSRF field, runs a
// reconciliation and redirects to its breaks; without the field it is refused.
func TestReconcileForm(t *testing.T) {
	e := start(t)
	gamingTraffic(e)
	admin := e.login("admin")
	post := func(csrf string) (*http.Response, []byte) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		if csrf != "" {
			mw.WriteField("csrf", csrf)
		}
		mw.WriteField("provider", "prov-a")
		mw.WriteField("period", "2026-11")
		fw, _ := mw.CreateFormFile("report", "a.jsonl")
		fw.Write([]byte(plantedReport))
		mw.Close()
		return e.do(http.MethodPost, "/reconcile", buf.String(), map[string]string{"Cookie": "tally_session=" + admin.cookie, "Content-Type": mw.FormDataContentType()})
	}
	if res, body := post(""); res.StatusCode != 403 || !strings.Contains(string(body), "csrf") {
		t.Errorf("without csrf: %d %s", res.StatusCode, body)
	}
	if res, body := post("forged"); res.StatusCode != 403 {
		t.Errorf("forged csrf: %d %s", res.StatusCode, body)
	}
	res, body := post(admin.csrf)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/reconcile/prov-a/1" {
		t.Fatalf("form: %d %v %s", res.StatusCode, res.Header, body)
	}
	if st, page := admin.get("/reconcile"); st != 200 || !strings.Contains(string(page), `href="/reconcile/prov-a/1"`) {
		t.Errorf("list page: %d %s", st, page)
	}
}

// TestConsoleTLS: with settle.console_tls the console speaks only TLS, with
// the configured certificate, to a real TLS client; a plain HTTP client is
// refused.
func TestConsoleTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "console-ca")
	srv := ca.Server(t, "console")
	e := startWith(t, func(c *config.Config) {
		c.Settle.ConsoleTLS = config.ServerTLS{TLSFiles: config.TLSFiles{Cert: srv.Cert, Key: srv.Key}}
	})
	if !strings.HasPrefix(e.base, "https://") {
		t.Fatalf("console URL %s, want https", e.base)
	}
	pem, err := os.ReadFile(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	res, err := hc.Post(e.base+"/v1/login", "application/json", strings.NewReader(`{"name":"admin","password":"`+pw+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil || res.TLS.Version < tls.VersionTLS12 || !slices.ContainsFunc(res.Cookies(), func(c *http.Cookie) bool { return c.Name == "tally_session" && c.Secure }) {
		t.Fatalf("login over TLS: %d %s", res.StatusCode, b)
	}
	// A client that does not trust the CA fails the handshake; plain HTTP gets no answer.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(e.base + "/login"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted client: %v", err)
	}
	plain := "http://" + strings.TrimPrefix(e.base, "https://")
	if res, err := (&http.Client{Timeout: 5 * time.Second}).Get(plain + "/login"); err == nil && res.StatusCode == 200 {
		t.Errorf("plain HTTP was served: %d", res.StatusCode)
	}
}
