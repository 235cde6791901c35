package console

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
)

// apiRoutes is every /v1 route; openapi.yaml describes exactly these
// (TestOpenAPIMatchesRoutes).
func apiRoutes() []route {
	return append([]route{
		{"POST", "/v1/login", true, (*Console).login},
		{"POST", "/v1/logout", false, (*Console).logout},
		{"GET", "/v1/me", false, (*Console).me},
		{"GET", "/v1/balances", false, (*Console).balances},
		{"GET", "/v1/activity", false, (*Console).activity},
		{"GET", "/v1/totals", false, (*Console).totals},
		{"GET", "/v1/stream", false, (*Console).stream},
		{"GET", "/v1/stats", false, (*Console).stats},
		{"GET", "/v1/exceptions", false, (*Console).exceptions},
		{"GET", "/v1/statements", false, (*Console).statements},
		{"GET", "/v1/statements/{party}/{seq}/{format}", false, (*Console).statementFile},
		{"GET", "/v1/transactions/{provider}/{id}", false, (*Console).transaction},
		{"GET", "/v1/users", false, (*Console).listUsers},
		{"GET", "/v1/openapi.json", true, (*Console).openAPI},
	}, append(dashRoutes(), caseRoutes()...)...) // dash.go, cases_api.go
}

// loginRequest is POST /v1/login's body.
type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// loginAnswer is POST /v1/login's answer (and GET /v1/me's).
type loginAnswer struct {
	Identity
	CSRF string `json:"csrf,omitempty"` // send as X-CSRF-Token on every state-changing request
}

func (c *Console) login(w http.ResponseWriter, r *http.Request, _ Identity) {
	// A JSON body cannot be sent cross-site without a CORS preflight, which
	// the console never grants: this is the login's CSRF protection.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		fail(w, http.StatusUnsupportedMediaType, CodeBadRequest, "send the login as Content-Type: application/json")
		return
	}
	var req loginRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Name == "" || req.Password == "" {
		fail(w, http.StatusBadRequest, CodeBadRequest, `send {"name": ..., "password": ...}`)
		return
	}
	id, ok := c.checkLogin(w, r, req.Name, req.Password)
	if !ok {
		return
	}
	sid, s := c.sessions.create(id.Name, c.now())
	setSessionCookie(w, sid)
	setUser(w, id.Name)
	id.Via = "session"
	writeJSON(w, loginAnswer{Identity: id, CSRF: s.csrf})
}

// checkLogin applies the rate limits and checks the password; on failure
// it has answered.
func (c *Console) checkLogin(w http.ResponseWriter, r *http.Request, name, pw string) (Identity, bool) {
	if !c.byIP.allow(clientIP(r)) || !c.byUser.allow(name) {
		w.Header().Set("Retry-After", "30")
		fail(w, http.StatusTooManyRequests, CodeRateLimited, "too many login attempts; wait and try again")
		c.log.Warn("login rate limited", "client", clientIP(r), "user", name)
		return Identity{}, false
	}
	id, ok := c.users.Authenticate(name, pw)
	if !ok {
		c.log.Warn("login refused", "client", clientIP(r), "user", name)
		fail(w, http.StatusUnauthorized, CodeBadLogin, "wrong account or password")
		return Identity{}, false
	}
	c.log.Info("login", "client", clientIP(r), "user", name, "role", id.Role)
	return id, true
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ Identity) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.sessions.drop(ck.Value)
	}
	clearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

func (c *Console) me(w http.ResponseWriter, r *http.Request, id Identity) {
	a := loginAnswer{Identity: id}
	if id.Via == "session" {
		_, _, a.CSRF, _ = c.authenticate(r)
	}
	writeJSON(w, a)
}

// visibleBalances is the node's balances in id's scope (and party, when set).
func (c *Console) visibleBalances(id Identity, party, currency string) ([]settle.Balance, error) {
	all, err := c.o.Node.Balances()
	if err != nil {
		return nil, err
	}
	out := []settle.Balance{}
	for _, b := range all {
		if id.Sees(b.Party) && (party == "" || b.Party == party) && (currency == "" || b.Currency == currency) {
			out = append(out, b)
		}
	}
	return out, nil
}

func (c *Console) balances(w http.ResponseWriter, r *http.Request, id Identity) {
	party, ok := scopeParty(w, r, id)
	if !ok {
		return
	}
	bs, err := c.visibleBalances(id, party, r.URL.Query().Get("currency"))
	if err != nil {
		c.internal(w, err)
		return
	}
	writeJSON(w, bs)
}

// limitParam parses ?limit= (default def, at most max).
func limitParam(w http.ResponseWriter, r *http.Request, def, max int) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		fail(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("limit=%s: use 1-%d", quote(s), max))
		return 0, false
	}
	return n, true
}

func (c *Console) activity(w http.ResponseWriter, r *http.Request, id Identity) {
	party, ok := scopeParty(w, r, id)
	if !ok {
		return
	}
	limit, ok := limitParam(w, r, 100, feedKeep)
	if !ok {
		return
	}
	es, _ := c.feed.since(0, id, feedKeep)
	out := []FeedEntry{}
	for i := len(es) - 1; i >= 0 && len(out) < limit; i-- { // newest first
		if party == "" || hasParty(es[i], party) {
			out = append(out, es[i])
		}
	}
	writeJSON(w, out)
}

func hasParty(e FeedEntry, party string) bool {
	for _, s := range e.Shares {
		if s.Party == party {
			return true
		}
	}
	return false
}

func (c *Console) totals(w http.ResponseWriter, r *http.Request, id Identity) {
	party, ok := scopeParty(w, r, id)
	if !ok {
		return
	}
	writeJSON(w, c.feed.totalsFor(id, party))
}

// Stats is GET /v1/stats and the live feed's "stats" event.
type Stats struct {
	At         string          `json:"at"`
	Settle     settle.Counters `json:"settle"`
	Lag        uint64          `json:"lag"`                  // forwarded batches not yet settled
	TxPerSec   float64         `json:"tx_per_s"`             // entries settled per second since the previous sample
	Partitions []uint32        `json:"partitions,omitempty"` // ledger partitions on this node
}

func (c *Console) stats(w http.ResponseWriter, r *http.Request, id Identity) {
	if !operatorOnly(w, id) {
		return
	}
	st := c.o.Node.Stats()
	ps := c.o.Ledger.Partitions()
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	writeJSON(w, Stats{At: c.now().UTC().Format(time.RFC3339Nano), Settle: st.Counters, Lag: st.Lag, Partitions: ps})
}

func (c *Console) exceptions(w http.ResponseWriter, r *http.Request, id Identity) {
	if !operatorOnly(w, id) {
		return
	}
	limit, ok := limitParam(w, r, 100, 10000)
	if !ok {
		return
	}
	xs, err := c.o.Node.Exceptions(limit)
	if err != nil {
		c.internal(w, err)
		return
	}
	if kind := r.URL.Query().Get("kind"); kind != "" {
		out := xs[:0]
		for _, x := range xs {
			if x.Kind == kind {
				out = append(out, x)
			}
		}
		xs = out
	}
	if xs == nil {
		xs = []settle.Exception{}
	}
	writeJSON(w, xs)
}

// StatementItem is one issued statement in GET /v1/statements.
type StatementItem struct {
	Party    string `json:"party"`
	Seq      int    `json:"seq"`
	Period   string `json:"period"`
	Currency string `json:"currency"`
	Opening  string `json:"opening"`
	Closing  string `json:"closing"`
	Hash     string `json:"hash"`
	Note     string `json:"note"` // URL of the signed note
	CSV      string `json:"csv"`  // URL of the CSV
	JSON     string `json:"json"` // URL of the statement's JSON
}

// statementParties lists the parties with a statements directory in id's scope.
func (c *Console) statementParties(id Identity, party string) ([]string, error) {
	if party != "" {
		return []string{party}, nil
	}
	des, err := os.ReadDir(c.o.StatementsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range des {
		p, err := url.PathUnescape(de.Name())
		if err != nil || !de.IsDir() || !id.Sees(p) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// chain loads party's statements, checked against the verifier key.
func (c *Console) chain(party string) (*statement.Chain, error) {
	if c.verifier == nil {
		return nil, errors.New("the console has no verifier key to check statements with")
	}
	return statement.Load(c.o.StatementsDir, party, c.verifier)
}

func (c *Console) statements(w http.ResponseWriter, r *http.Request, id Identity) {
	party, ok := scopeParty(w, r, id)
	if !ok {
		return
	}
	parties, err := c.statementParties(id, party)
	if err != nil {
		c.internal(w, err)
		return
	}
	out := []StatementItem{}
	for _, p := range parties {
		ch, err := c.chain(p)
		if err != nil {
			c.internal(w, err)
			return
		}
		for _, is := range ch.Issued {
			if id.Partner() && !c.released(p, is.Seq, is.Hash) { // partners see issued statements only (statements_review.go)
				continue
			}
			s := is.Statement
			base := fmt.Sprintf("/v1/statements/%s/%d/", url.PathEscape(p), is.Seq)
			out = append(out, StatementItem{Party: p, Seq: is.Seq, Period: s.Period, Currency: s.Currency,
				Opening: s.Opening, Closing: s.Closing, Hash: is.Hash, Note: base + "note", CSV: base + "csv", JSON: base + "json"})
		}
	}
	writeJSON(w, out)
}

// issued finds party's statement seq in id's scope; on failure it has answered.
func (c *Console) issued(w http.ResponseWriter, r *http.Request, id Identity) (*statement.Issued, bool) {
	party, s := r.PathValue("party"), r.PathValue("seq")
	seq, err := strconv.Atoi(s)
	if !id.Sees(party) || err != nil || seq < 1 || strconv.Itoa(seq) != s {
		notFound(w, "statement")
		return nil, false
	}
	ch, err := c.chain(party)
	if err != nil {
		c.internal(w, err)
		return nil, false
	}
	if seq > len(ch.Issued) || (id.Partner() && !c.released(party, seq, ch.Issued[seq-1].Hash)) {
		notFound(w, "statement")
		return nil, false
	}
	return &ch.Issued[seq-1], true
}

func (c *Console) statementFile(w http.ResponseWriter, r *http.Request, id Identity) {
	is, ok := c.issued(w, r, id)
	if !ok {
		return
	}
	name := strings.TrimSuffix(filepath.Base(is.Path), ".note")
	switch r.PathValue("format") {
	case "note":
		attachment(w, "text/plain; charset=utf-8", name+".note", is.Note)
	case "csv":
		b, err := os.ReadFile(strings.TrimSuffix(is.Path, ".note") + ".csv")
		if err != nil {
			c.internal(w, err)
			return
		}
		attachment(w, "text/csv; charset=utf-8", name+".csv", b)
	case "json":
		w.Header().Set("Content-Type", "application/json")
		w.Write(is.Statement.Canonical())
	default:
		notFound(w, "statement format "+quote(r.PathValue("format"))+" (use note, csv or json)")
	}
}

// attachment answers b as a download named name.
func attachment(w http.ResponseWriter, contentType, name string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Write(b)
}

// Transaction is GET /v1/transactions/{provider}/{id}.
type Transaction struct {
	Entry       audit.EntryView       `json:"entry"`
	Proof       *audit.InclusionProof `json:"proof,omitempty"`
	ProofStatus string                `json:"proof_status"` // "ok", or "not_signed": no signed checkpoint covers the entry yet
	VerifierKey string                `json:"verifier_key,omitempty"`
}

func (c *Console) transaction(w http.ResponseWriter, r *http.Request, id Identity) {
	tx, err := c.lookupTx(id, r.PathValue("provider"), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound(w, "transaction")
	case err != nil:
		c.internal(w, err)
	default:
		writeJSON(w, tx)
	}
}

// entryVisible: a partner sees a whole entry (the proof covers all of it)
// when one of its parties has a share in it.
func entryVisible(e store.Entry, id Identity) bool {
	for _, s := range e.Shares {
		if id.Sees(s.Party) {
			return true
		}
	}
	return false
}

func (c *Console) listUsers(w http.ResponseWriter, r *http.Request, id Identity) {
	if !id.AtLeast(RoleAdmin) {
		fail(w, http.StatusForbidden, CodeForbidden, "admin accounts only")
		return
	}
	writeJSON(w, c.users.List())
}

//go:embed openapi.json
var openAPIDoc []byte

func (c *Console) openAPI(w http.ResponseWriter, r *http.Request, _ Identity) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
}

// Routes lists the API's routes as "METHOD /path" (for the OpenAPI test and docs).
func Routes() []string {
	var out []string
	for _, r := range apiRoutes() {
		out = append(out, r.method+" "+r.path)
	}
	return out
}
