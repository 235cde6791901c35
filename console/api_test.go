package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
)

// TestOpenAPIMatchesRoutes: every /v1 route the console serves is in
// openapi.json with its method, and the document names no other.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q, want 3.x", doc.OpenAPI)
	}
	var inDoc []string
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			inDoc = append(inDoc, strings.ToUpper(m)+" "+p)
		}
	}
	served := console.Routes()
	sort.Strings(inDoc)
	sort.Strings(served)
	if !slices.Equal(inDoc, served) {
		t.Fatalf("openapi.json and the routes differ:\n document: %v\n served:   %v", inDoc, served)
	}
}

// issueStatement signs a statement for party (signStatement) and takes it
// through the console's review to issued (admin submits, the approver
// "reviewer" approves, admin issues), so partners see it.
func issueStatement(t *testing.T, e *env, party string) {
	t.Helper()
	signStatement(t, e, party)
	_ = console.AddUser(e.cfg.ConsoleUsersPath(), "reviewer", console.RoleApprover, nil, pw) // once per env
	admin, reviewer := e.login("admin"), e.login("reviewer")
	var rs []console.StatementReview
	admin.getJSON("/v1/statement-reviews?party="+party+"&state=unsubmitted", &rs)
	for _, r := range rs {
		base := fmt.Sprintf("/v1/statement-reviews/%s/%d/", party, r.Seq)
		for _, step := range []struct {
			c      *client
			action string
		}{{admin, "submit"}, {reviewer, "approve"}, {admin, "issue"}} {
			if st, b := step.c.post(base+step.action, `{}`); st != http.StatusOK {
				t.Fatalf("%s %s: %d %s", step.action, base, st, b)
			}
		}
	}
}

// signStatement writes a signed statement for party the way `tally
// statements` does (statement.Chain.Issue with the ledger key).
func signStatement(t *testing.T, e *env, party string) {
	t.Helper()
	signer, _, err := store.LoadOrCreateKey(e.cfg.KeyPath(), e.cfg.Settle.Origin)
	if err != nil {
		t.Fatal(err)
	}
	ch := &statement.Chain{Party: party, Dir: e.cfg.StatementsDir() + "/" + party}
	s := &statement.Statement{Format: 1, Party: party, Currency: "EUR", Period: "2026-11",
		Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Opening: "0.00", Closing: "1.00"}
	if _, err := ch.Issue(s, signer); err != nil {
		t.Fatal(err)
	}
}

// TestPartnerScope: a partner reaches nothing of another partner's parties
// by any route, guessed id or parameter; the table must name every route.
func TestPartnerScope(t *testing.T) {
	e := start(t)
	e.send("prov-a", "a-1", "100.00")
	e.send("prov-b", "b-1", "200.00")
	e.waitSettled("prov-a", "10.00")
	e.waitSettled("prov-b", "20.00")
	issueStatement(t, e, "prov-a")
	issueStatement(t, e, "prov-b")
	alice := e.login("alice")

	// bob's things, asked for by alice: each must answer 403 or 404 and name
	// nothing of prov-b.
	cases := []struct {
		route, method, path string
		want                []int
	}{
		{"POST /v1/login", "", "", nil}, // public: covered by TestLoginSessionCSRF
		{"GET /v1/openapi.json", "", "", nil},
		{"POST /v1/logout", "", "", nil}, // acts only on the caller's own session
		{"GET /v1/me", "GET", "/v1/me", []int{200}},
		{"GET /v1/balances", "GET", "/v1/balances?party=prov-b", []int{404}},
		{"GET /v1/balances", "GET", "/v1/balances", []int{200}},
		{"GET /v1/balances", "GET", "/v1/balances?currency=EUR", []int{200}},
		{"GET /v1/activity", "GET", "/v1/activity?party=prov-b", []int{404}},
		{"GET /v1/activity", "GET", "/v1/activity", []int{200}},
		{"GET /v1/totals", "GET", "/v1/totals?party=prov-b", []int{404}},
		{"GET /v1/totals", "GET", "/v1/totals", []int{200}},
		{"GET /v1/stream", "GET", "/v1/stream?party=prov-b", []int{404}},
		{"GET /v1/stats", "GET", "/v1/stats", []int{403}},
		{"GET /v1/exceptions", "GET", "/v1/exceptions", []int{403}},
		{"GET /v1/statements", "GET", "/v1/statements?party=prov-b", []int{404}},
		{"GET /v1/statements", "GET", "/v1/statements", []int{200}},
		{"GET /v1/statements/{party}/{seq}/{format}", "GET", "/v1/statements/prov-b/1/note", []int{404}},
		{"GET /v1/statements/{party}/{seq}/{format}", "GET", "/v1/statements/prov-b/1/csv", []int{404}},
		{"GET /v1/statements/{party}/{seq}/{format}", "GET", "/v1/statements/prov-b/1/json", []int{404}},
		{"GET /v1/statements/{party}/{seq}/{format}", "GET", "/v1/statements/prov%2Db/1/note", []int{404}},
		{"GET /v1/statements/{party}/{seq}/{format}", "GET", "/v1/statements/prov-a/..%2F..%2Fprov-b/note", []int{404}},
		{"GET /v1/transactions/{provider}/{id}", "GET", "/v1/transactions/prov-b/b-1", []int{404}},
		{"GET /v1/transactions/{provider}/{id}", "GET", "/v1/transactions/prov-b/no-such-id", []int{404}},
		{"GET /v1/users", "GET", "/v1/users", []int{403}},
		// dash.go and reconcile.go (TestDashScope covers the posts and pages)
		{"GET /v1/ggr", "GET", "/v1/ggr", []int{403}},
		{"GET /v1/ggr", "GET", "/v1/ggr?provider=prov-b", []int{403}},
		{"GET /v1/revenue", "GET", "/v1/revenue?party=prov-b", []int{404}},
		{"GET /v1/revenue", "GET", "/v1/revenue?party=prov-b&period=2026-11", []int{404}},
		{"GET /v1/revenue", "GET", "/v1/revenue", []int{200}},
		{"GET /v1/revenue", "GET", "/v1/revenue?period=2026-11-01", []int{200}},
		{"GET /v1/alerts", "GET", "/v1/alerts", []int{403}},
		{"GET /v1/sla", "GET", "/v1/sla", []int{403}},
		{"GET /v1/reconciliations", "GET", "/v1/reconciliations?provider=prov-b", []int{403}},
		{"POST /v1/reconciliations", "", "", nil}, // TestDashScope
		{"GET /v1/reconciliations/{provider}/{seq}/{format}", "GET", "/v1/reconciliations/prov-b/1/note", []int{403}},
		{"POST /v1/reconciliations/{provider}/{seq}/replay", "POST", "/v1/reconciliations/prov-b/1/replay", []int{403}},
		// The workflow (cases_test.go TestCaseScope covers every action).
		{"GET /v1/cases", "GET", "/v1/cases", []int{404}},
		{"GET /v1/cases/{id}", "GET", "/v1/cases/x-0-0-0", []int{404}},
		{"POST /v1/cases/{id}/{action}", "", "", nil},
		{"GET /v1/statement-reviews", "GET", "/v1/statement-reviews?party=prov-b", []int{404}},
		{"POST /v1/statement-reviews/{party}/{seq}/{action}", "", "", nil},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.route] = true
		if c.path == "" {
			continue
		}
		st, body := alice.get(c.path)
		if !slices.Contains(c.want, st) {
			t.Errorf("alice %s: status %d, want %v: %s", c.path, st, c.want, body)
		}
		if strings.Contains(string(body), "prov-b") || strings.Contains(string(body), "b-1") {
			t.Errorf("alice %s: the answer names bob's party or transaction: %s", c.path, body)
		}
	}
	for _, r := range console.Routes() {
		if !covered[r] {
			t.Errorf("route %s is not in the scope table", r)
		}
	}
	// What alice does see is hers: her balance, her statement, her transaction.
	var bs []map[string]string
	alice.getJSON("/v1/balances", &bs)
	if len(bs) != 1 || bs[0]["party"] != "prov-a" || bs[0]["amount"] != "10.00" {
		t.Fatalf("alice's balances: %v", bs)
	}
	var ss []console.StatementItem
	alice.getJSON("/v1/statements", &ss)
	if len(ss) != 1 || ss[0].Party != "prov-a" {
		t.Fatalf("alice's statements: %+v", ss)
	}
	if st, body := alice.get(ss[0].Note); st != 200 || !strings.Contains(string(body), `"party":"prov-a"`) {
		t.Fatalf("alice's note: %d %s", st, body)
	}
	if st, body := alice.get(ss[0].CSV); st != 200 || !strings.HasPrefix(string(body), "party,") {
		t.Fatalf("alice's csv: %d %s", st, body)
	}
	// The UI's printable statement has the same scope.
	if st, body := alice.get("/statements/prov-a/1"); st != 200 || !strings.Contains(string(body), `id="closing">1.00<`) {
		t.Fatalf("alice's printable statement: %d %s", st, body)
	}
	for _, p := range []string{"/statements/prov-b/1", "/statements/prov-b/2", "/statements/operator/1"} {
		if st, body := alice.get(p); st != 404 || strings.Contains(string(body), "prov-b") {
			t.Errorf("alice %s: %d %s", p, st, body)
		}
	}
	// The check page echoes what alice typed, and nothing of the entry.
	if st, body := alice.get("/check?provider=prov-b&id=b-1"); st != 200 || !strings.Contains(string(body), "No such transaction in your scope") ||
		strings.Contains(string(body), "Shares") || strings.Contains(string(body), "Included") {
		t.Errorf("alice checks bob's transaction: %d %s", st, body)
	}
	if st, body := alice.get("/v1/transactions/prov-a/a-1"); st != 200 || !strings.Contains(string(body), `"a-1"`) {
		t.Fatalf("alice's transaction: %d %s", st, body)
	}
	// The live feed: alice's carries nothing of prov-b while both providers settle.
	seenA := make(chan error, 1)
	go func() {
		seenA <- alice.sse("/v1/stream", 20*time.Second, func(ev, data string) bool {
			if strings.Contains(data, "prov-b") || ev == "stats" {
				t.Errorf("alice's feed: %s %s", ev, data)
			}
			return ev == "entries" && strings.Contains(data, `"a-2"`)
		})
	}()
	time.Sleep(300 * time.Millisecond) // let the feed open: entries before it are /v1/activity's
	e.send("prov-b", "b-2", "300.00")
	e.send("prov-a", "a-2", "400.00")
	if err := <-seenA; err != nil {
		t.Fatalf("alice's feed never showed a-2: %v", err)
	}
	// Operators see both.
	admin := e.login("admin")
	admin.getJSON("/v1/balances", &bs)
	var parties []string
	for _, b := range bs {
		parties = append(parties, b["party"])
	}
	if !slices.Contains(parties, "prov-a") || !slices.Contains(parties, "prov-b") || !slices.Contains(parties, "operator") {
		t.Fatalf("admin's balances: %v", bs)
	}
	if st, _ := admin.get("/v1/transactions/prov-b/b-1"); st != 200 {
		t.Fatalf("admin reads bob's transaction: %d", st)
	}
}

// TestUnauthenticated: every route but the public ones answers 401 without
// a session or token, and with a wrong token.
func TestUnauthenticated(t *testing.T) {
	e := start(t)
	anon := &client{e: e}
	forged := &client{e: e, bearer: "tally_forged"}
	stale := &client{e: e, cookie: "not-a-session"}
	for _, p := range []string{"/", "/check?provider=p&id=x", "/statements/p/1"} {
		res, _ := e.do("GET", p, "", nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
			t.Errorf("GET %s without a session: %d to %q, want 303 to /login", p, res.StatusCode, res.Header.Get("Location"))
		}
	}
	pathOf := regexp.MustCompile(`\{[a-z]+\}`)
	for _, r := range console.Routes() {
		method, path, _ := strings.Cut(r, " ")
		if path == "/v1/login" || path == "/v1/openapi.json" {
			continue
		}
		path = pathOf.ReplaceAllString(path, "x")
		for _, c := range []*client{anon, forged, stale} {
			res, body := e.do(method, path, "", c.headers(nil))
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"unauthorized"`) {
				t.Errorf("%s %s as %+v: %d %s", method, path, c, res.StatusCode, body)
			}
		}
	}
}

// TestLoginSessionCSRF: the session cookie's attributes, CSRF on a
// state-changing request, logout ending the session, JSON-only login.
func TestLoginSessionCSRF(t *testing.T) {
	e := start(t)
	c := e.login("viewer")
	ck := c.setCook
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/", ck)
	}
	if st, _ := c.get("/v1/me"); st != 200 {
		t.Fatalf("me: %d", st)
	}
	// The access log names the account and the status of every request.
	if logs := e.logs.String(); !regexp.MustCompile(`console\.access: request: method=GET path=/v1/me status=200 user=viewer client=127\.0\.0\.1`).MatchString(logs) {
		t.Fatalf("no access log line for GET /v1/me:\n%s", logs)
	}
	// Logout without, then with a wrong CSRF token: refused, session alive.
	for _, tok := range []string{"", "wrong"} {
		res, body := e.do("POST", "/v1/logout", "", c.headers(map[string]string{"X-CSRF-Token": tok}))
		if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"csrf"`) {
			t.Fatalf("logout with token %q: %d %s", tok, res.StatusCode, body)
		}
	}
	if st, _ := c.get("/v1/me"); st != 200 {
		t.Fatalf("session ended by a refused logout: %d", st)
	}
	res, _ := e.do("POST", "/v1/logout", "", c.headers(map[string]string{"X-CSRF-Token": c.csrf}))
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if st, _ := c.get("/v1/me"); st != 401 {
		t.Fatalf("after logout: %d, want 401", st)
	}
	// A form-encoded login (what a cross-site form can send) is refused.
	res, _ = e.do("POST", "/v1/login", "name=viewer&password=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("form login: %d", res.StatusCode)
	}
	// Wrong password: one stable answer for a wrong password and an unknown account.
	for _, body := range []string{`{"name":"viewer","password":"wrong password!"}`, `{"name":"nobody","password":"wrong password!"}`} {
		res, b := e.do("POST", "/v1/login", body, map[string]string{"Content-Type": "application/json"})
		if res.StatusCode != 401 || !strings.Contains(string(b), `"bad_login"`) {
			t.Fatalf("bad login %s: %d %s", body, res.StatusCode, b)
		}
	}
	// The UI's form login needs its double-submit token.
	res, b := e.do("POST", "/login", "name=viewer&password="+pw, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if res.StatusCode != http.StatusForbidden || len(res.Cookies()) == 0 || strings.Contains(res.Header.Get("Set-Cookie"), "tally_session") {
		t.Fatalf("form login without its token: %d %v %s", res.StatusCode, res.Cookies(), b)
	}
}

// TestLoginRateLimit: repeated failures on one account are refused with
// 429 before the password is even checked, also with the right password.
func TestLoginRateLimit(t *testing.T) {
	e := start(t)
	var limited bool
	for i := 0; i < 12 && !limited; i++ {
		res, _ := e.do("POST", "/v1/login", `{"name":"bob","password":"wrong password!"}`, map[string]string{"Content-Type": "application/json"})
		limited = res.StatusCode == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatal("12 failed logins in a row were never rate limited")
	}
	res, b := e.do("POST", "/v1/login", `{"name":"bob","password":"`+pw+`"}`, map[string]string{"Content-Type": "application/json"})
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(b), `"rate_limited"`) {
		t.Fatalf("right password while limited: %d %s", res.StatusCode, b)
	}
}

// TestUsersFileAndTokens: the users file holds argon2id hashes and token
// hashes only; a token authenticates as its account, with its scope.
func TestUsersFileAndTokens(t *testing.T) {
	e := start(t)
	secret, err := console.AddToken(e.cfg.ConsoleUsersPath(), "alice-ci", "alice")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.cfg.ConsoleUsersPath())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), pw) || strings.Contains(string(raw), secret) {
		t.Fatal("the users file holds a password or token in clear")
	}
	if n := strings.Count(string(raw), `"$argon2id$v=19$`); n != 4 {
		t.Fatalf("%d argon2id hashes in the users file, want 4", n)
	}
	e.send("prov-b", "b-1", "200.00")
	e.waitSettled("prov-b", "20.00")
	tok := &client{e: e, bearer: secret}
	var me console.Identity
	tok.getJSON("/v1/me", &me)
	if me.Name != "alice" || me.Via != "token" {
		t.Fatalf("token identity %+v", me)
	}
	if st, _ := tok.get("/v1/transactions/prov-b/b-1"); st != 404 {
		t.Fatalf("alice's token reads bob's transaction: %d", st)
	}
	// A token needs no CSRF token: it is not an ambient credential.
	res, _ := e.do("POST", "/v1/logout", "", tok.headers(nil))
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout with a token: %d", res.StatusCode)
	}
}

// TestOperatorViews: stats, exceptions, activity, totals, the live counter
// and a transaction with its inclusion proof against a signed checkpoint.
func TestOperatorViews(t *testing.T) {
	e := start(t)
	e.send("prov-a", "a-1", "100.00")
	e.waitSettled("prov-a", "10.00")
	// An over-reversal: a rollback larger than its bet is an exception.
	tx := `{"id":"r-1","type":"rollback","amount":"999.00","currency":"EUR","parent":"a-1","occurred_at":"2026-11-01T10:00:00Z"}`
	if m, err := e.nc.Request("tally.in.prov-a", []byte(tx), 10*time.Second); err != nil || !strings.Contains(string(m.Data), "accepted") {
		t.Fatalf("rollback: %v %s", err, m.Data)
	}
	v := e.login("viewer")
	var xs []map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for len(xs) == 0 && time.Now().Before(deadline) {
		v.getJSON("/v1/exceptions", &xs)
		if len(xs) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if len(xs) != 1 || xs[0]["kind"] != "over_reversal" || xs[0]["id"] != "r-1" {
		t.Fatalf("exceptions: %v", xs)
	}
	var tr console.Transaction
	deadline = time.Now().Add(20 * time.Second)
	for tr.ProofStatus != "ok" && time.Now().Before(deadline) {
		v.getJSON("/v1/transactions/prov-a/a-1", &tr)
		if tr.ProofStatus != "ok" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if tr.ProofStatus != "ok" || tr.Proof == nil || tr.Entry.ID != "a-1" || len(tr.Entry.Shares) != 2 || !strings.Contains(tr.Proof.Receipt, "c2sp.org/tlog-proof") {
		t.Fatalf("transaction: %+v", tr)
	}
	var acts []console.FeedEntry
	deadline = time.Now().Add(20 * time.Second)
	for len(acts) == 0 && time.Now().Before(deadline) { // the feed polls the ledger
		v.getJSON("/v1/activity", &acts)
		if len(acts) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if len(acts) != 1 || acts[0].ID != "a-1" {
		t.Fatalf("activity: %+v", acts)
	}
	var tots []console.Total
	v.getJSON("/v1/totals", &tots)
	if len(tots) != 3 { // prov-a's volume, its studio share, the operator's share
		t.Fatalf("totals: %+v", tots)
	}
	// The live counter moves: a stats event with more entries than before.
	var once sync.Once
	err := v.sse("/v1/stream", 20*time.Second, func(ev, data string) bool {
		if ev != "stats" {
			return false
		}
		var s console.Stats
		if json.Unmarshal([]byte(data), &s) != nil {
			return false
		}
		if s.Settle.Entries == 1 {
			go once.Do(func() {
				if err := e.trySend("prov-a", "a-2", "50.00"); err != nil {
					t.Error(err)
				}
			})
		}
		return s.Settle.Entries >= 2
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := v.get("/v1/users"); st != 403 {
		t.Fatalf("viewer lists users: %d", st)
	}
	var us []console.User
	e.login("admin").getJSON("/v1/users", &us)
	if len(us) != 4 || us[0].Password != "" {
		t.Fatalf("users: %+v", us)
	}
}
