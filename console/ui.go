package console

import (
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/store"
)

//go:embed assets
var assets embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"pathEscape": url.PathEscape,
	"clock":      func(sec int64) string { return time.Unix(sec, 0).UTC().Format("15:04:05") },
}).ParseFS(assets, "assets/templates/*.html"))

// uiRoutes registers the web UI: pages rendered on the server, one script
// (assets/static/app.js) that follows the live feed with EventSource.
func (c *Console) uiRoutes(mux *http.ServeMux) {
	static, _ := fs.Sub(assets, "assets/static")
	files := http.FileServerFS(static)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.loginForm)
	mux.HandleFunc("POST /logout", c.page(c.logoutForm))
	mux.HandleFunc("GET /{$}", c.page(c.home))
	mux.HandleFunc("GET /check", c.page(c.checkPage))
	mux.HandleFunc("GET /statements/{party}/{seq}", c.page(c.statementPage))
	c.reconcileUI(mux)
	c.caseUIRoutes(mux) // cases_ui.go
}

// page wraps a UI page: a session (else to /login) and, for a form post,
// its CSRF field.
func (c *Console) page(h func(w http.ResponseWriter, r *http.Request, id Identity, csrf string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		id, _, csrf, ok := c.authenticate(r)
		if !ok || id.Via != "session" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		setUser(w, id.Name)
		if !safeMethod(r.Method) && !csrfOK(r, csrf) {
			fail(w, http.StatusForbidden, CodeCSRF, "the form's CSRF token is missing or stale; reload the page")
			return
		}
		h(w, r, id, csrf)
	}
}

func (c *Console) render(w http.ResponseWriter, name string, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		c.log.Error("render", "page", name, "error", err)
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.showLogin(w, "", http.StatusOK)
}

func (c *Console) showLogin(w http.ResponseWriter, msg string, status int) {
	// Login CSRF: a double-submit token, in a cookie and in the form.
	tok := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", MaxAge: 600,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, "login.html", map[string]any{"CSRF": tok, "Error": msg}); err != nil {
		c.log.Error("render login", "error", err)
	}
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	ck, err := r.Cookie(loginCookie)
	form := r.PostFormValue(csrfField)
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(form)) != 1 {
		c.showLogin(w, "The login form expired; try again.", http.StatusForbidden)
		return
	}
	name, pw := r.PostFormValue("name"), r.PostFormValue("password")
	rec := &statusOnly{header: http.Header{}}
	id, ok := c.checkLogin(rec, r, name, pw)
	if !ok {
		msg := "Wrong account or password."
		if rec.status == http.StatusTooManyRequests {
			msg = "Too many attempts; wait a minute and try again."
		}
		c.showLogin(w, msg, rec.status)
		return
	}
	sid, _ := c.sessions.create(id.Name, c.now())
	setSessionCookie(w, sid)
	setUser(w, id.Name)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// statusOnly collects checkLogin's answer for the form login.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(st int)          { s.status = st }

func (c *Console) logoutForm(w http.ResponseWriter, r *http.Request, _ Identity, _ string) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.sessions.drop(ck.Value)
	}
	clearSessionCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, id Identity, csrf string) {
	bs, err := c.visibleBalances(id, "", "")
	if err != nil {
		c.internal(w, err)
		return
	}
	recent, _ := c.feed.since(0, id, 50)
	for i, j := 0, len(recent)-1; i < j; i, j = i+1, j-1 {
		recent[i], recent[j] = recent[j], recent[i]
	}
	data := map[string]any{"Me": id, "CSRF": csrf, "Balances": bs, "Recent": recent, "Now": c.now().UTC().Format(time.RFC3339)}
	c.dashData(r, id, data)
	if id.Partner() {
		parties, _ := c.statementParties(id, "")
		var items []StatementItem
		for _, p := range parties {
			if ch, err := c.chain(p); err == nil {
				for _, is := range ch.Issued {
					if !c.released(p, is.Seq, is.Hash) { // issued statements only (statements_review.go)
						continue
					}
					s := is.Statement
					base := "/v1/statements/" + url.PathEscape(p) + "/" + strconv.Itoa(is.Seq) + "/"
					items = append(items, StatementItem{Party: p, Seq: is.Seq, Period: s.Period, Currency: s.Currency,
						Opening: s.Opening, Closing: s.Closing, Hash: is.Hash, Note: base + "note", CSV: base + "csv", JSON: base + "json"})
				}
			} else {
				c.log.Warn("statements", "party", p, "error", err)
			}
		}
		data["Statements"] = items
		c.render(w, "partner.html", data)
		return
	}
	st := c.o.Node.Stats()
	xs, err := c.o.Node.Exceptions(50)
	if err != nil {
		c.log.Warn("exceptions", "error", err)
	}
	data["Stats"] = st
	data["Exceptions"] = xs
	data["Totals"] = providerTotals(c.feed.totalsFor(id, ""))
	c.render(w, "operator.html", data)
}

// providerTotals keeps the provider volume rows (Party "") of the last minute.
func providerTotals(ts []Total) []Total {
	var out []Total
	var newest int64
	for _, t := range ts {
		newest = max(newest, t.Second)
	}
	for _, t := range ts {
		if t.Party == "" && t.Second > newest-60 {
			out = append(out, t)
		}
	}
	return out
}

func (c *Console) checkPage(w http.ResponseWriter, r *http.Request, id Identity, csrf string) {
	provider, txID := r.URL.Query().Get("provider"), r.URL.Query().Get("id")
	data := map[string]any{"Me": id, "CSRF": csrf, "Provider": provider, "ID": txID}
	if provider != "" && txID != "" {
		tx, err := c.lookupTx(id, provider, txID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			data["Error"] = "No such transaction in your scope."
		case err != nil:
			c.log.Error("check transaction", "error", err)
			data["Error"] = "The node could not read its ledger; try again."
		default:
			data["Tx"] = tx
		}
	}
	c.render(w, "check.html", data)
}

// lookupTx is the transaction route's lookup for the UI: store.ErrNotFound
// for anything outside id's scope.
func (c *Console) lookupTx(id Identity, provider, txID string) (*Transaction, error) {
	p, idx, held, found, err := c.o.Node.Lookup(provider, txID)
	if err != nil {
		return nil, err
	}
	if !found || held {
		return nil, store.ErrNotFound
	}
	e, _, err := c.o.Ledger.Entry(p, idx)
	if err != nil {
		return nil, err
	}
	if id.Partner() && !entryVisible(e, id) {
		return nil, store.ErrNotFound
	}
	out := &Transaction{Entry: audit.View(e), VerifierKey: c.o.VerifierKey}
	pr, err := audit.Prove(c.o.Ledger, p, idx)
	switch {
	case err == nil:
		out.Proof, out.ProofStatus = &pr, "ok"
	case errors.Is(err, audit.ErrNotSigned):
		out.ProofStatus = CodeNotSignedYet
	default:
		return nil, err
	}
	return out, nil
}

// statementPage is a statement as a printable page (the browser's print
// dialog makes the PDF); scoped like /v1/statements/{party}/{seq}/{format}.
func (c *Console) statementPage(w http.ResponseWriter, r *http.Request, id Identity, csrf string) {
	is, ok := c.issued(w, r, id)
	if !ok {
		return
	}
	base := "/v1/statements/" + url.PathEscape(is.Statement.Party) + "/" + strconv.Itoa(is.Seq) + "/"
	c.render(w, "statement.html", map[string]any{"Me": id, "CSRF": csrf, "S": is.Statement, "Seq": is.Seq, "Hash": is.Hash, "Base": base})
}
