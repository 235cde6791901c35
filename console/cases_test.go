package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/ops/anomaly"
	"github.com/tally-mesh/tally/recon"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// jsPoster stands in for the operator log (settle/oplog, wired by the lead
// after merge): it publishes each correction to a real JetStream stream
// on the node's hub with Nats-Msg-Id = the correction id, as oplog.Post
// does, and answers the stream sequence. Nothing else is faked.
type jsPoster struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	mu     sync.Mutex
	fail   error // when set, PostCorrection fails with it
}

const testOplog = "TESTOPLOG"

func newPoster(t *testing.T, e *env) *jsPoster {
	t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: testOplog, Subjects: []string{"testoplog"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	p := &jsPoster{js: js, stream: st}
	e.node.SetCorrectionPoster(p)
	return p
}

// posted is a correction as the stand-in stores it: the SEAM payload's fields.
type posted struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Currency   string            `json:"currency"`
	Amount     string            `json:"amount"`
	OccurredAt time.Time         `json:"occurred_at"`
	Meta       map[string]string `json:"meta"`
}

func (p *jsPoster) PostCorrection(ctx context.Context, c console.Correction) (uint64, error) {
	p.mu.Lock()
	err := p.fail
	p.mu.Unlock()
	if err != nil {
		return 0, err
	}
	b, _ := json.Marshal(posted{ID: c.ID, Type: "correction", Currency: c.Currency, Amount: c.Amount, OccurredAt: c.OccurredAt, Meta: c.Meta()})
	m := nats.NewMsg("testoplog")
	m.Data = b
	ack, err := p.js.PublishMsg(ctx, m, jetstream.WithMsgID(c.ID))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// all reads every correction the stand-in holds, in order.
func (p *jsPoster) all(t *testing.T) []posted {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := p.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []posted
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := p.stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var c posted
		if err := json.Unmarshal(m.Data, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func (e *env) addUser(name, role string, parties ...string) {
	e.t.Helper()
	if err := console.AddUser(e.cfg.ConsoleUsersPath(), name, role, parties, pw); err != nil {
		e.t.Fatal(err)
	}
}

// post sends a JSON body with the session's CSRF token (or the bearer token).
func (c *client) post(path, body string) (int, []byte) {
	c.e.t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if c.csrf != "" {
		h["X-CSRF-Token"] = c.csrf
	}
	res, b := c.e.do(http.MethodPost, path, body, c.headers(h))
	return res.StatusCode, b
}

// act posts a case action and decodes the answer; want is the status.
func (c *client) act(caseID, action, body string, want int) console.Case {
	c.e.t.Helper()
	st, b := c.post("/v1/cases/"+caseID+"/"+action, body)
	if st != want {
		c.e.t.Fatalf("%s %s: %d %s, want %d", action, caseID, st, b, want)
	}
	var cs console.Case
	if st == http.StatusOK {
		if err := json.Unmarshal(b, &cs); err != nil {
			c.e.t.Fatal(err)
		}
	}
	return cs
}

// errCode posts an action that must be refused with status and code.
func (c *client) refused(caseID, action, body string, status int, code string) {
	c.e.t.Helper()
	st, b := c.post("/v1/cases/"+caseID+"/"+action, body)
	var ae struct{ Code string }
	_ = json.Unmarshal(b, &ae)
	if st != status || ae.Code != code {
		c.e.t.Fatalf("%s %s: %d %s, want %d %s", action, caseID, st, b, status, code)
	}
}

// overReversal makes the engine record an over_reversal exception: a bet
// of 100.00 and a rollback of 200.00 naming it. It returns the case's id.
func (e *env) overReversal(n int) string {
	e.t.Helper()
	bet, rb := fmt.Sprintf("bet-%d", n), fmt.Sprintf("rb-%d", n)
	e.send("prov-a", bet, "100.00")
	tx := fmt.Sprintf(`{"id":%q,"type":"rollback","parent":%q,"amount":"200.00","currency":"EUR","occurred_at":"2026-11-01T10:00:01Z"}`, rb, bet)
	msg, err := e.nc.Request(wire.NewSubjects("").In("prov-a"), []byte(tx), 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	var a wire.Answer
	if err := json.Unmarshal(msg.Data, &a); err != nil || a.Status != wire.StatusAccepted {
		e.t.Fatalf("send %s: %s", tx, msg.Data)
	}
	admin := e.login("admin")
	var id string
	natstest.Eventually(e.t, 20*time.Second, func() error {
		var cs []console.Case
		admin.getJSON("/v1/cases?source=exception", &cs)
		for _, c := range cs {
			if c.TxID == rb {
				if c.Kind != "over_reversal" || c.State != console.StateOpen || c.Revision != 0 || c.Provider != "prov-a" {
					return fmt.Errorf("case %+v", c)
				}
				id = c.ID
				return nil
			}
		}
		return fmt.Errorf("no case for %s in %d cases", rb, len(cs))
	})
	return id
}

// workflowEnv is a node with the workflow's accounts: olga (operator),
// paul and quinn (approvers), plus start's admin, viewer, alice and bob.
func workflowEnv(t *testing.T) (*env, *jsPoster) {
	e := start(t)
	e.addUser("olga", console.RoleOperator)
	e.addUser("paul", console.RoleApprover)
	e.addUser("quinn", console.RoleApprover)
	return e, newPoster(t, e)
}

const smallLines = `{"currency":"EUR","lines":[{"party":"prov-a","amount":"12.50"},{"party":"operator","amount":"-12.50"}],"reason":"refund the over-reversal's excess"}`

// TestCaseTransitions walks a case through every transition: open →
// proposed → rejected → proposed → approved → posted, with the refusals on
// the way (role, maker-checker, CSRF, stale revision, bad input, wrong
// state), and checks the posted correction's fields (SEAM.md).
func TestCaseTransitions(t *testing.T) {
	e, poster := workflowEnv(t)
	id := e.overReversal(1)
	olga, paul, quinn, viewer := e.login("olga"), e.login("paul"), e.login("quinn"), e.login("viewer")

	viewer.refused(id, "propose", smallLines, 403, console.CodeForbidden)
	// CSRF: a session's state change without the header.
	if res, b := e.do(http.MethodPost, "/v1/cases/"+id+"/propose", smallLines, olga.headers(map[string]string{"Content-Type": "application/json"})); res.StatusCode != 403 || !strings.Contains(string(b), console.CodeCSRF) {
		t.Fatalf("propose without CSRF token: %d %s", res.StatusCode, b)
	}
	for _, bad := range []string{
		`{"currency":"EUR","lines":[{"party":"prov-a","amount":"12.5"}],"reason":"x"}`,   // not the currency's decimals
		`{"currency":"EUR","lines":[{"party":"prov-a","amount":"+12.50"}],"reason":"x"}`, // not as the ledger writes it
		`{"currency":"EUR","lines":[{"party":"prov-a","amount":"0.00"}],"reason":"x"}`,   // zero
		`{"currency":"EUR","lines":[{"party":"a=b","amount":"1.00"}],"reason":"x"}`,      // "=" in a party
		`{"currency":"EUR","lines":[{"party":"a","amount":"1.00"},{"party":"a","amount":"-1.00"}],"reason":"x"}`,
		`{"currency":"XXX","lines":[{"party":"a","amount":"1.00"}],"reason":"x"}`,           // unknown currency
		`{"currency":"EUR","lines":[{"party":"a","amount":"1.00"}],"reason":""}`,            // no reason
		`{"currency":"EUR","lines":[],"reason":"x"}`,                                        // no lines
		`{"currency":"EUR","lines":[{"party":"a","amount":"1.00"}],"reason":"x","extra":1}`, // unknown field
	} {
		olga.refused(id, "propose", bad, 400, console.CodeBadRequest)
	}
	olga.refused(id, "approve", `{}`, 403, console.CodeForbidden) // not proposed and not an approver
	paul.refused(id, "approve", `{}`, 409, console.CodeWrongState)

	cs := olga.act(id, "propose", smallLines, 200)
	if cs.State != console.StateProposed || cs.Proposal.By != "olga" || cs.Proposal.ApprovalsRequired != 1 || cs.Proposal.N != 1 ||
		cs.Proposal.Net != "0.00" || cs.Proposal.Size != "12.50" || cs.Revision == 0 || len(cs.History) != 1 {
		t.Fatalf("proposed: %+v", cs)
	}
	olga.refused(id, "propose", smallLines, 409, console.CodeWrongState)
	paul.refused(id, "reject", `{}`, 400, console.CodeBadRequest) // a rejection needs a reason
	paul.refused(id, "approve", fmt.Sprintf(`{"revision":%d}`, cs.Revision-1), 409, console.CodeStale)
	cs = paul.act(id, "reject", `{"reason":"the studio's share is 10%, not all of it"}`, 200)
	if cs.State != console.StateRejected || len(cs.History) != 2 || cs.History[1].By != "paul" || cs.History[1].From != "proposed" {
		t.Fatalf("rejected: %+v", cs)
	}
	// A second proposal: paul (an approver) proposes; he cannot approve it.
	lines := `{"currency":"EUR","lines":[{"party":"prov-a","amount":"10.00"},{"party":"operator","amount":"-10.00"}],"reason":"the studio's 10%"}`
	cs = paul.act(id, "propose", lines, 200)
	if cs.Proposal.N != 2 || cs.Proposal.By != "paul" {
		t.Fatalf("second proposal: %+v", cs.Proposal)
	}
	paul.refused(id, "approve", `{}`, 403, console.CodeMakerChecker)
	paul.refused(id, "reject", `{"reason":"x"}`, 403, console.CodeMakerChecker)
	if got := poster.all(t); len(got) != 0 {
		t.Fatalf("posted before approval: %+v", got)
	}
	cs = quinn.act(id, "approve", fmt.Sprintf(`{"revision":%d}`, cs.Revision), 200)
	if cs.State != console.StatePosted || cs.Posted == nil || cs.Posted.CorrectionID != "adj-"+id+"-2" || cs.Posted.Seq != 1 {
		t.Fatalf("approved: %+v", cs)
	}
	got := poster.all(t)
	if len(got) != 1 {
		t.Fatalf("posted %d corrections, want 1", len(got))
	}
	want := map[string]string{"exception": id, "proposed_by": "paul", "approved_by": "quinn", "approvals_required": "1",
		"reason": "the studio's 10%", "lines": "prov-a=10.00;operator=-10.00"}
	p := got[0]
	if p.ID != "adj-"+id+"-2" || p.Currency != "EUR" || p.Amount != "0.00" || !p.OccurredAt.Equal(cs.Approvals[0].At) || fmt.Sprint(p.Meta) != fmt.Sprint(want) {
		t.Fatalf("posted %+v, want meta %v", p, want)
	}
	// History: who and when for every transition.
	var acts []string
	for _, h := range cs.History {
		if h.By == "" || h.At.IsZero() {
			t.Fatalf("event without who or when: %+v", h)
		}
		acts = append(acts, h.Action+":"+h.By+":"+h.To)
	}
	if s := strings.Join(acts, " "); s != "propose:olga:proposed reject:paul:rejected propose:paul:proposed approve:quinn:approved post:quinn:posted" {
		t.Fatalf("history %s", s)
	}
	// The same state from GET, and through another listing.
	var again console.Case
	viewer.getJSON("/v1/cases/"+id, &again)
	if again.State != console.StatePosted || again.Revision != cs.Revision {
		t.Fatalf("GET after post: %+v", again)
	}
	var posteds []console.Case
	viewer.getJSON("/v1/cases?state=posted", &posteds)
	if len(posteds) != 1 || posteds[0].ID != id {
		t.Fatalf("state=posted lists %+v", posteds)
	}
	olga.refused(id, "dismiss", `{"reason":"x"}`, 409, console.CodeWrongState)
	quinn.refused(id, "post", `{}`, 409, console.CodeWrongState)
	olga.refused("x-0-0-0", "dismiss", `{"reason":"x"}`, 404, console.CodeNotFound)
	olga.refused(id, "frobnicate", `{}`, 404, console.CodeNotFound)
}

// TestCaseDismissAndPostRetry: a case dismissed with a reason; a post that
// fails leaves the case approved with the error, and action post retries
// it under the same correction id.
func TestCaseDismissAndPostRetry(t *testing.T) {
	e, poster := workflowEnv(t)
	a, b := e.overReversal(1), e.overReversal(2)
	olga, paul := e.login("olga"), e.login("paul")
	olga.refused(a, "dismiss", `{}`, 400, console.CodeBadRequest)
	cs := olga.act(a, "dismiss", `{"reason":"the provider confirmed the rollback was a test"}`, 200)
	if cs.State != console.StateDismissed || cs.Dismissed == "" {
		t.Fatalf("dismissed: %+v", cs)
	}
	olga.refused(a, "propose", smallLines, 409, console.CodeWrongState)

	olga.act(b, "propose", smallLines, 200)
	poster.mu.Lock()
	poster.fail = fmt.Errorf("oplog unreachable")
	poster.mu.Unlock()
	paul.refused(b, "approve", `{}`, 502, console.CodeUnavailable)
	var cs2 console.Case
	paul.getJSON("/v1/cases/"+b, &cs2)
	if cs2.State != console.StateApproved || !strings.Contains(cs2.PostError, "oplog unreachable") {
		t.Fatalf("after a failed post: %+v", cs2)
	}
	poster.mu.Lock()
	poster.fail = nil
	poster.mu.Unlock()
	olga.refused(b, "post", `{}`, 403, console.CodeForbidden)
	cs = paul.act(b, "post", `{}`, 200)
	if cs.State != console.StatePosted || cs.PostError != "" || cs.Posted.CorrectionID != "adj-"+b+"-1" {
		t.Fatalf("after the retry: %+v", cs)
	}
	if got := poster.all(t); len(got) != 1 || got[0].ID != "adj-"+b+"-1" {
		t.Fatalf("posted %+v", got)
	}
}

// TestCaseDualApproval: above settle.console_dual_approval_above (10000 by
// default) a proposal needs two distinct approvers, neither the proposer.
func TestCaseDualApproval(t *testing.T) {
	e, poster := workflowEnv(t)
	id := e.overReversal(1)
	olga, paul, admin := e.login("olga"), e.login("paul"), e.login("admin")
	// 10000.00 exactly is not above the threshold; 10000.01 is.
	cs := paul.act(id, "propose", `{"currency":"EUR","lines":[{"party":"prov-a","amount":"10000.01"},{"party":"operator","amount":"-10000.01"}],"reason":"large"}`, 200)
	if cs.Proposal.ApprovalsRequired != 2 || cs.Proposal.Size != "10000.01" {
		t.Fatalf("proposal %+v", cs.Proposal)
	}
	paul.refused(id, "approve", `{}`, 403, console.CodeMakerChecker) // the proposer
	cs = admin.act(id, "approve", `{}`, 200)
	if cs.State != console.StateProposed || len(cs.Approvals) != 1 {
		t.Fatalf("after one approval: %+v", cs)
	}
	admin.refused(id, "approve", `{}`, 403, console.CodeMakerChecker) // the same approver twice
	olga.refused(id, "approve", `{}`, 403, console.CodeForbidden)     // an operator
	if got := poster.all(t); len(got) != 0 {
		t.Fatalf("posted after one of two approvals: %+v", got)
	}
	e.addUser("rita", console.RoleApprover)
	cs = e.login("rita").act(id, "approve", `{}`, 200)
	if cs.State != console.StatePosted {
		t.Fatalf("after two approvals: %+v", cs)
	}
	got := poster.all(t)
	if len(got) != 1 || got[0].Meta["approved_by"] != "admin,rita" || got[0].Meta["approvals_required"] != "2" || got[0].Amount != "0.00" {
		t.Fatalf("posted %+v", got)
	}

	// At the threshold: one approval.
	id2 := e.overReversal(2)
	cs = olga.act(id2, "propose", `{"currency":"EUR","lines":[{"party":"prov-a","amount":"10000.00"}],"reason":"at the threshold"}`, 200)
	if cs.Proposal.ApprovalsRequired != 1 || cs.Proposal.Net != "10000.00" {
		t.Fatalf("proposal at the threshold %+v", cs.Proposal)
	}
	cs = paul.act(id2, "approve", `{}`, 200)
	if cs.State != console.StatePosted {
		t.Fatalf("at the threshold, after one approval: %+v", cs)
	}
	if got := poster.all(t); len(got) != 2 || got[1].Amount != "10000.00" {
		t.Fatalf("posted %+v", got)
	}
}

// TestCaseApproveRace: two approvers approve the same proposal at the same
// moment; exactly one wins (compare-and-set on the KV revision), the other
// is refused, and the correction is posted once.
func TestCaseApproveRace(t *testing.T) {
	e, poster := workflowEnv(t)
	olga, paul, quinn := e.login("olga"), e.login("paul"), e.login("quinn")
	const rounds = 3
	for r := 1; r <= rounds; r++ {
		id := e.overReversal(r)
		cs := olga.act(id, "propose", smallLines, 200)
		body := fmt.Sprintf(`{"revision":%d}`, cs.Revision)
		var wg sync.WaitGroup
		var sts [2]int
		var bodies [2][]byte
		start := make(chan struct{})
		for i, c := range []*client{paul, quinn} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				sts[i], bodies[i] = c.postNoFatal("/v1/cases/"+id+"/approve", body)
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for i := range sts {
			switch sts[i] {
			case 200:
				won++
			case 409:
				if !strings.Contains(string(bodies[i]), console.CodeStale) {
					t.Fatalf("round %d: the loser's answer %s", r, bodies[i])
				}
			default:
				t.Fatalf("round %d: %d %s", r, sts[i], bodies[i])
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d approvals won (%v %s %s)", r, won, sts, bodies[0], bodies[1])
		}
		var got console.Case
		olga.getJSON("/v1/cases/"+id, &got)
		if got.State != console.StatePosted || len(got.Approvals) != 1 {
			t.Fatalf("round %d: %+v", r, got)
		}
	}
	if got := poster.all(t); len(got) != rounds {
		t.Fatalf("%d corrections posted, want %d", len(got), rounds)
	}
}

// postNoFatal is post for other goroutines than the test's.
func (c *client) postNoFatal(path, body string) (int, []byte) {
	req, err := http.NewRequest(http.MethodPost, c.e.base+path, strings.NewReader(body))
	if err != nil {
		return 0, []byte(err.Error())
	}
	for k, v := range c.headers(map[string]string{"Content-Type": "application/json", "X-CSRF-Token": c.csrf}) {
		req.Header.Set(k, v)
	}
	res, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestCaseScope: a partner gets 404 on every workflow route, for a real
// case id as for a made-up one, and never sees the queue.
func TestCaseScope(t *testing.T) {
	e, _ := workflowEnv(t)
	id := e.overReversal(1)
	issueStatement(t, e, "prov-a")
	alice := e.login("alice")
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/cases"},
		{"GET", "/v1/cases?state=open"},
		{"GET", "/v1/cases/" + id},
		{"GET", "/v1/cases/x-0-0-0"},
		{"POST", "/v1/cases/" + id + "/propose"},
		{"POST", "/v1/cases/" + id + "/approve"},
		{"POST", "/v1/cases/" + id + "/reject"},
		{"POST", "/v1/cases/" + id + "/dismiss"},
		{"POST", "/v1/cases/" + id + "/post"},
		{"GET", "/v1/statement-reviews"},
		{"GET", "/v1/statement-reviews?party=prov-a"},
		{"POST", "/v1/statement-reviews/prov-a/1/submit"},
		{"POST", "/v1/statement-reviews/prov-a/1/approve"},
		{"POST", "/v1/statement-reviews/prov-a/1/issue"},
		{"GET", "/cases"},
		{"GET", "/cases/" + id},
		{"GET", "/reviews"},
	} {
		var st int
		var b []byte
		if c.method == "GET" {
			st, b = alice.get(c.path)
		} else {
			st, b = alice.post(c.path, `{"reason":"x"}`)
		}
		if st != 404 {
			t.Errorf("alice %s %s: %d %s, want 404", c.method, c.path, st, b)
		}
		if strings.Contains(string(b), id) || strings.Contains(string(b), "over_reversal") {
			t.Errorf("alice %s %s names the case: %s", c.method, c.path, b)
		}
	}
}

// TestStatementReview: draft → approved → issued with maker-checker; a
// partner sees the statement only once issued; payouts may pay it once
// approved (StatementPayable).
func TestStatementReview(t *testing.T) {
	e, _ := workflowEnv(t)
	signStatement(t, e, "prov-a")
	olga, paul, quinn, alice := e.login("olga"), e.login("paul"), e.login("quinn"), e.login("alice")
	kv := casesKV(t, e)
	alsoHidden := func(when string) {
		t.Helper()
		var items []console.StatementItem
		alice.getJSON("/v1/statements", &items)
		if len(items) != 0 {
			t.Fatalf("%s: alice sees %+v", when, items)
		}
		for _, f := range []string{"note", "csv", "json"} {
			if st, _ := alice.get("/v1/statements/prov-a/1/" + f); st != 404 {
				t.Fatalf("%s: alice gets the %s: %d", when, f, st)
			}
		}
	}
	payable := func(want bool, state string) {
		t.Helper()
		var rs []console.StatementReview
		olga.getJSON("/v1/statement-reviews", &rs)
		if len(rs) != 1 {
			t.Fatalf("reviews %+v", rs)
		}
		ok, got, err := console.StatementPayable(context.Background(), kv, "prov-a", 1, rs[0].Hash)
		if err != nil || ok != want || got != state || rs[0].State != state {
			t.Fatalf("payable %v %q %v (listed %q), want %v %q", ok, got, err, rs[0].State, want, state)
		}
	}
	review := func(c *client, action, body string, want int, code string) {
		t.Helper()
		st, b := c.post("/v1/statement-reviews/prov-a/1/"+action, body)
		if st != want || (code != "" && !strings.Contains(string(b), `"`+code+`"`)) {
			t.Fatalf("%s: %d %s, want %d %s", action, st, b, want, code)
		}
	}
	alsoHidden("unsubmitted")
	payable(false, console.ReviewUnsubmitted)
	review(olga, "approve", `{}`, 403, console.CodeForbidden)
	review(paul, "approve", `{}`, 409, console.CodeWrongState)
	review(paul, "submit", `{}`, 200, "")
	alsoHidden("draft")
	payable(false, console.ReviewDraft)
	review(paul, "approve", `{}`, 403, console.CodeMakerChecker)
	review(olga, "issue", `{}`, 409, console.CodeWrongState)
	review(quinn, "reject", `{"reason":"closing does not match the report"}`, 200, "")
	review(olga, "submit", `{}`, 200, "")
	review(quinn, "approve", `{}`, 200, "")
	alsoHidden("approved")
	payable(true, console.ReviewApproved)
	review(olga, "issue", `{}`, 200, "")
	payable(true, console.ReviewIssued)
	var items []console.StatementItem
	alice.getJSON("/v1/statements", &items)
	if len(items) != 1 || items[0].Period != "2026-11" {
		t.Fatalf("alice after issue: %+v", items)
	}
	if st, _ := alice.get("/v1/statements/prov-a/1/note"); st != 200 {
		t.Fatalf("alice's issued note: %d", st)
	}
	review(olga, "issue", `{}`, 409, console.CodeWrongState)
	review(olga, "submit", `{}`, 409, console.CodeWrongState)
	if st, _ := olga.post("/v1/statement-reviews/prov-a/2/submit", `{}`); st != 404 {
		t.Fatalf("submit of a statement that does not exist: %d", st)
	}
}

func casesKV(t *testing.T, e *env) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), console.CasesBucket(wire.DefaultPrefix))
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestCaseSources: reconciliation breaks (a kept, signed reconciliation
// under <data>/reconciliations; only a period's latest run counts) and
// anomaly records (TALLY_ANOMALIES) are cases like exceptions: listed with
// stable ids, readable by id, worked by the same workflow.
func TestCaseSources(t *testing.T) {
	e, _ := workflowEnv(t)
	// Reconciliation: run 1 has two missing rows, run 2 (the same period,
	// after the provider corrected its report) one.
	keepRecon(t, e, []string{"m-1", "m-2"}, []string{"m-2"})
	// Anomaly: one record as the detector publishes it.
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	subj := wire.NewSubjects("")
	if err := anomaly.EnsureStream(context.Background(), js, subj, 1); err != nil {
		t.Fatal(err)
	}
	det := anomaly.Detection{Provider: "prov-b", Series: anomaly.SeriesVolume, Direction: "drop_to_zero", At: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC), Summary: "prov-b volume dropped to zero"}
	if err := anomaly.Publish(context.Background(), js, subj, "node-1", det); err != nil {
		t.Fatal(err)
	}

	viewer, olga := e.login("viewer"), e.login("olga")
	var rc []console.Case
	viewer.getJSON("/v1/cases?source=reconciliation", &rc)
	if len(rc) != 1 || rc[0].ID != "r-2-missing-1-prov-a" || rc[0].TxID != "m-2" || rc[0].Kind != "missing" || rc[0].Provider != "prov-a" {
		t.Fatalf("reconciliation cases %+v", rc)
	}
	var an []console.Case
	viewer.getJSON("/v1/cases?source=anomaly", &an)
	if len(an) != 1 || an[0].ID != "a-1" || an[0].Provider != "prov-b" || an[0].Kind != "volume_drop_to_zero" || an[0].Summary != det.Summary {
		t.Fatalf("anomaly cases %+v", an)
	}
	var one console.Case
	viewer.getJSON("/v1/cases/r-2-missing-1-prov-a", &one)
	if one.TxID != "m-2" || one.State != console.StateOpen {
		t.Fatalf("by id: %+v", one)
	}
	// r-1-…: a superseded run's break is not listed, but an old link to it
	// still reads it.
	viewer.getJSON("/v1/cases/r-1-missing-1-prov-a", &one)
	if one.TxID != "m-1" {
		t.Fatalf("superseded break by id: %+v", one)
	}
	for _, missing := range []string{"r-2-missing-2-prov-a", "r-3-missing-1-prov-a", "a-2", "a-01", "r-2-missing-1-prov-b"} {
		if st, b := viewer.get("/v1/cases/" + missing); st != 404 {
			t.Errorf("%s: %d %s", missing, st, b)
		}
	}
	cs := olga.act("r-2-missing-1-prov-a", "dismiss", `{"reason":"the provider re-sent m-2; the edge replayed it"}`, 200)
	if cs.State != console.StateDismissed || cs.Source != console.SourceReconciliation || cs.TxID != "m-2" {
		t.Fatalf("dismissed break %+v", cs)
	}
	cs = olga.act("a-1", "dismiss", `{"reason":"planned maintenance at prov-b"}`, 200)
	if cs.State != console.StateDismissed || cs.Source != console.SourceAnomaly {
		t.Fatalf("dismissed anomaly %+v", cs)
	}
	var dismissed []console.Case
	viewer.getJSON("/v1/cases?state=dismissed", &dismissed)
	if len(dismissed) != 2 {
		t.Fatalf("dismissed %+v", dismissed)
	}
}

// keepRecon keeps one signed reconciliation result of prov-a for 2026-11
// per list of missing ids, in order (each supersedes the one before).
func keepRecon(t *testing.T, e *env, runs ...[]string) {
	t.Helper()
	signer, _, err := store.LoadOrCreateKey(e.cfg.KeyPath(), e.cfg.Settle.Origin)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := recon.Load(e.cfg.Path("reconciliations"), "prov-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ids := range runs {
		r := &recon.Result{Provider: "prov-a", Period: "2026-11", Start: "2026-11-01T00:00:00Z", End: "2026-12-01T00:00:00Z",
			CreatedAt: "2026-12-02T09:00:00Z", LedgerSizes: map[string]uint64{}, Extra: []recon.Item{}, Mismatched: []recon.Mismatch{},
			Duplicates: []recon.Duplicate{}, Rejected: []recon.Rejection{}, OutOfPeriod: []recon.Item{}, Totals: []recon.Total{}}
		for i, id := range ids {
			r.Missing = append(r.Missing, recon.Item{ID: id, Type: "bet", Amount: "5.00", Currency: "EUR", OccurredAt: "2026-11-03T10:00:00Z", Row: i + 1})
		}
		if _, err := ch.Keep(r, signer); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCaseQueueBound: settle.console_queue_breaks bounds the
// reconciliation breaks of one listing.
func TestCaseQueueBound(t *testing.T) {
	e := startWith(t, func(c *config.Config) { c.Settle.ConsoleQueueBreaks = 2 })
	keepRecon(t, e, []string{"m-1", "m-2", "m-3", "m-4"})
	var rc []console.Case
	e.login("viewer").getJSON("/v1/cases?source=reconciliation", &rc)
	if len(rc) != 2 {
		t.Fatalf("%d reconciliation cases listed with console_queue_breaks = 2: %+v", len(rc), rc)
	}
}
