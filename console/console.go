package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/store"
)

// Stable error codes of the console API (the "code" of an error body).
const (
	CodeBadRequest   = "bad_request"  // a parameter is missing or malformed
	CodeUnauthorized = "unauthorized" // no valid session or token
	CodeForbidden    = "forbidden"    // the identity's role may not do this
	CodeCSRF         = "csrf"         // a state-changing session request without its CSRF token
	CodeNotFound     = "not_found"    // nothing of that name in the caller's scope
	CodeRateLimited  = "rate_limited" // too many login attempts: retry later
	CodeUnavailable  = "unavailable"  // too many live feeds open
	CodeInternal     = "internal"     // the node failed to read its state
	CodeBadLogin     = "bad_login"    // wrong account or password
	CodeNotSignedYet = "not_signed"   // (in a transaction's proof_status) no signed checkpoint covers it yet
)

// Node is what the console reads from a running settlement node:
// *settle.Node fits.
type Node interface {
	Balances() ([]settle.Balance, error)
	Stats() settle.Stats
	Exceptions(max int) ([]settle.Exception, error)
	Lookup(provider, id string) (partition uint32, index uint64, held, found bool, err error)
}

// Ledger is the live ledger the console reads: *store.Ledger fits.
type Ledger interface {
	audit.ProofSource
	Partitions() []uint32
	Head(p uint32) store.Head
	Entries(p uint32, start, end uint64, max int) ([]store.IndexedEntry, error)
}

var (
	_ Node   = (*settle.Node)(nil)
	_ Ledger = (*store.Ledger)(nil)
)

// Options configure the console.
type Options struct {
	Node          Node
	Ledger        Ledger
	Users         *Users
	StatementsDir string // <data>/statements, written by `tally statements`
	VerifierKey   string // the ledger's note verifier key: statements and checkpoints are checked against it
	Logger        hclog.Logger
	FeedInterval  time.Duration // how often the live feed polls the node (default 500 ms)
	Now           func() time.Time
	Dash          DashOptions // GGR, revenue by hour, alerts, SLA, reconciliation (dash.go)
}

// Console serves the API and the UI.
type Console struct {
	o        Options
	log      hclog.Logger
	access   hclog.Logger
	users    *Users
	verifier note.Verifier // nil without a verifier key
	sessions *sessions
	byIP     *limiters
	byUser   *limiters
	feed     *feed
	streams  chan struct{} // live feed slots
	mux      *http.ServeMux
	wf       *workflow  // exception and statement workflow (cases.go); nil = off
	balMu    sync.Mutex // guards balAt, bal: one index scan serves every open feed
	balAt    time.Time
	bal      []settle.Balance
	quit     chan struct{} // closed by StopStreams
	quitOnce sync.Once
	now      func() time.Time
	dash     *dash
}

// route is one API route; the OpenAPI test walks apiRoutes.
type route struct {
	method, path string
	public       bool // no identity needed
	h            func(c *Console, w http.ResponseWriter, r *http.Request, id Identity)
}

// New assembles a console. Close stops its live feed.
func New(o Options) (*Console, error) {
	if o.Node == nil || o.Ledger == nil || o.Users == nil {
		return nil, errors.New("console: Node, Ledger and Users are required")
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.FeedInterval <= 0 {
		o.FeedInterval = 500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{o: o, log: o.Logger, access: o.Logger.Named("access"), users: o.Users,
		sessions: &sessions{m: map[string]*session{}}, byIP: newLimiters(6*time.Second, loginPerIP),
		byUser: newLimiters(30*time.Second, loginPerUser), streams: make(chan struct{}, maxStreams), now: o.Now, quit: make(chan struct{})}
	if o.VerifierKey != "" {
		v, err := note.NewVerifier(o.VerifierKey)
		if err != nil {
			return nil, err
		}
		c.verifier = v
	}
	c.feed = newFeed(o.Ledger, o.FeedInterval, o.Logger.Named("feed"))
	c.dash = newDash(c)
	c.mux = http.NewServeMux()
	for _, rt := range apiRoutes() {
		c.mux.HandleFunc(rt.method+" "+rt.path, c.api(rt))
	}
	c.uiRoutes(c.mux)
	return c, nil
}

// StopStreams ends every open live feed (a server shutting down would
// otherwise wait for them).
func (c *Console) StopStreams() { c.quitOnce.Do(func() { close(c.quit) }) }

// Close ends the live feeds and stops the feed's poller.
func (c *Console) Close() {
	c.StopStreams()
	c.feed.close()
	c.dash.rev.close()
}

// ServeHTTP adds the security headers and the access log.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	c.mux.ServeHTTP(rec, r)
	c.access.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"user", rec.user, "client", clientIP(r), "bytes", rec.bytes, "took", time.Since(start).Round(time.Microsecond))
}

// recorder captures the status and the identity for the access log; Unwrap
// lets http.ResponseController flush the live feed through it.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
	user   string
	wrote  bool
}

func (r *recorder) WriteHeader(s int) {
	if !r.wrote {
		r.status, r.wrote = s, true
	}
	r.ResponseWriter.WriteHeader(s)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func setUser(w http.ResponseWriter, name string) {
	if rec, ok := w.(*recorder); ok {
		rec.user = name
	}
}

// api wraps an API route: identity, CSRF, no-store.
func (c *Console) api(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if rt.public {
			rt.h(c, w, r, Identity{})
			return
		}
		id, _, csrf, ok := c.authenticate(r)
		if !ok {
			fail(w, http.StatusUnauthorized, CodeUnauthorized, "log in (POST /v1/login) or send Authorization: Bearer <API token>")
			return
		}
		setUser(w, id.Name)
		if !safeMethod(r.Method) && id.Via == "session" && !csrfOK(r, csrf) {
			fail(w, http.StatusForbidden, CodeCSRF, "a state-changing request needs the session's CSRF token in the X-CSRF-Token header")
			return
		}
		rt.h(c, w, r, id)
	}
}

// apiError is an error body.
type apiError struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

func fail(w http.ResponseWriter, status int, code, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(apiError{Code: code, Reason: reason})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (c *Console) internal(w http.ResponseWriter, err error) {
	c.log.Error("console request", "error", err)
	fail(w, http.StatusInternalServerError, CodeInternal, "the node could not read its state; see its log")
}

func notFound(w http.ResponseWriter, what string) {
	fail(w, http.StatusNotFound, CodeNotFound, "no "+what+" in your scope")
}

// operatorOnly answers 403 for partner accounts.
func operatorOnly(w http.ResponseWriter, id Identity) bool {
	if id.Partner() {
		fail(w, http.StatusForbidden, CodeForbidden, "operator accounts only")
		return false
	}
	return true
}

// scopeParties narrows an optional ?party= filter to the identity's scope;
// ok is false (and 404 answered) for a party outside it.
func scopeParty(w http.ResponseWriter, r *http.Request, id Identity) (party string, ok bool) {
	party = r.URL.Query().Get("party")
	if party != "" && !id.Sees(party) {
		notFound(w, "such party")
		return "", false
	}
	return party, true
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return `"` + strings.ReplaceAll(s, `"`, `'`) + `"`
}
