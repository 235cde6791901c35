package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The workflow's pages (cases.go, statements_review.go): the queue, one
// case with the forms its state and the viewer's role allow, and the
// statement reviews. Every form posts with the session's CSRF field (page).
func (c *Console) caseUIRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /cases", c.page(c.casesPage))
	mux.HandleFunc("GET /cases/{id}", c.page(c.casePage))
	mux.HandleFunc("POST /cases/{id}/{action}", c.page(c.caseForm))
	mux.HandleFunc("GET /reviews", c.page(c.reviewsPage))
	mux.HandleFunc("POST /reviews/{party}/{seq}/{action}", c.page(c.reviewForm))
}

// uiScope: partners get 404 (the pages do not exist for them); without the
// workflow every caller gets 503.
func (c *Console) uiScope(w http.ResponseWriter, id Identity) bool {
	return c.workflowScope(w, id)
}

func (c *Console) casesPage(w http.ResponseWriter, r *http.Request, id Identity, csrf string) {
	if !c.uiScope(w, id) {
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	all, err := c.queue(ctx)
	if err != nil {
		c.internal(w, err)
		return
	}
	state := r.URL.Query().Get("state")
	var cs []Case
	counts := map[string]int{}
	for _, x := range all {
		counts[x.State]++
		if (state == "" || x.State == state) && len(cs) < 500 {
			cs = append(cs, x)
		}
	}
	c.render(w, "cases.html", map[string]any{"Me": id, "CSRF": csrf, "Cases": cs, "State": state, "Counts": counts,
		"States": []string{StateOpen, StateProposed, StateApproved, StateRejected, StatePosted, StateDismissed}})
}

// caseView is what case.html needs besides the case.
type caseView struct {
	Case         *Case
	CanPropose   bool
	CanCheck     bool // approve or reject
	CanDismiss   bool
	CanPost      bool
	IsProposer   bool
	HasApproved  bool
	LinesText    string
	Error        string
	NeedApproval int // approvals still missing
}

func (c *Console) showCasePage(w http.ResponseWriter, ctx context.Context, id Identity, csrf, caseID, errMsg string, status int) {
	cs, err := c.getCase(ctx, caseID)
	if err != nil {
		c.answerErr(w, err)
		return
	}
	c.inLedger(cs)
	v := caseView{Case: cs, Error: errMsg}
	v.CanPropose = id.AtLeast(RoleOperator) && (cs.State == StateOpen || cs.State == StateRejected)
	v.CanDismiss = id.AtLeast(RoleOperator) && (cs.State == StateOpen || cs.State == StateProposed || cs.State == StateRejected)
	if cs.Proposal != nil {
		v.IsProposer = cs.Proposal.By == id.Name
		for _, a := range cs.Approvals {
			v.HasApproved = v.HasApproved || a.By == id.Name
		}
		v.NeedApproval = cs.Proposal.ApprovalsRequired - len(cs.Approvals)
		v.LinesText = (Correction{Lines: cs.Proposal.Lines}).LinesMeta()
	}
	v.CanCheck = id.AtLeast(RoleApprover) && cs.State == StateProposed && !v.IsProposer && !v.HasApproved
	v.CanPost = id.AtLeast(RoleApprover) && cs.State == StateApproved
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if status != 0 {
		w.WriteHeader(status)
	}
	c.render(w, "case.html", map[string]any{"Me": id, "CSRF": csrf, "V": v})
}

func (c *Console) casePage(w http.ResponseWriter, r *http.Request, id Identity, csrf string) {
	if !c.uiScope(w, id) {
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	c.showCasePage(w, ctx, id, csrf, r.PathValue("id"), "", 0)
}

// parseLines reads the form's lines: one party=amount per line (or ";"
// between them). Nothing is rewritten: the API checks each amount.
func parseLines(s string) ([]Line, error) {
	var out []Line
	for _, raw := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ';' }) {
		l := strings.TrimSpace(raw)
		if l == "" {
			continue
		}
		party, amount, ok := strings.Cut(l, "=")
		if !ok {
			return nil, errors.New("write each line as party=amount, e.g. studio-a=12.50")
		}
		out = append(out, Line{Party: strings.TrimSpace(party), Amount: strings.TrimSpace(amount)})
	}
	return out, nil
}

func (c *Console) caseForm(w http.ResponseWriter, r *http.Request, id Identity, csrf string) {
	if !c.uiScope(w, id) {
		return
	}
	caseID, action := r.PathValue("id"), r.PathValue("action")
	req := caseRequest{Currency: r.PostFormValue("currency"), Reason: r.PostFormValue("reason")}
	if s := r.PostFormValue("revision"); s != "" {
		rev, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			fail(w, http.StatusBadRequest, CodeBadRequest, "bad revision")
			return
		}
		req.Revision = &rev
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	if action == "propose" {
		lines, err := parseLines(r.PostFormValue("lines"))
		if err != nil {
			c.showCasePage(w, ctx, id, csrf, caseID, err.Error(), http.StatusBadRequest)
			return
		}
		req.Lines = lines
	}
	if _, err := c.doCase(ctx, id, caseID, action, req); err != nil {
		var ae *actionError
		if !errors.As(err, &ae) {
			c.internal(w, err)
			return
		}
		c.showCasePage(w, ctx, id, csrf, caseID, ae.reason, ae.status)
		return
	}
	http.Redirect(w, r, "/cases/"+url.PathEscape(caseID), http.StatusSeeOther)
}

func (c *Console) reviewsPage(w http.ResponseWriter, r *http.Request, id Identity, csrf string) {
	if !c.uiScope(w, id) {
		return
	}
	c.showReviews(w, r, id, csrf, "", 0)
}

func (c *Console) showReviews(w http.ResponseWriter, r *http.Request, id Identity, csrf, errMsg string, status int) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	rs, err := c.reviews(ctx, "", "")
	if err != nil {
		c.answerErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if status != 0 {
		w.WriteHeader(status)
	}
	c.render(w, "reviews.html", map[string]any{"Me": id, "CSRF": csrf, "Reviews": rs, "Error": errMsg,
		"IsApprover": id.AtLeast(RoleApprover), "IsOperator": id.AtLeast(RoleOperator)})
}

func (c *Console) reviewForm(w http.ResponseWriter, r *http.Request, id Identity, csrf string) {
	if !c.uiScope(w, id) {
		return
	}
	seq, err := strconv.Atoi(r.PathValue("seq"))
	if err != nil || seq < 1 {
		notFound(w, "statement")
		return
	}
	req := reviewRequest{Reason: r.PostFormValue("reason")}
	if s := r.PostFormValue("revision"); s != "" {
		rev, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			fail(w, http.StatusBadRequest, CodeBadRequest, "bad revision")
			return
		}
		req.Revision = &rev
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	if _, err := c.review(ctx, id, r.PathValue("party"), seq, r.PathValue("action"), req); err != nil {
		var ae *actionError
		if !errors.As(err, &ae) {
			c.internal(w, err)
			return
		}
		c.showReviews(w, r, id, csrf, ae.reason, ae.status)
		return
	}
	http.Redirect(w, r, "/reviews", http.StatusSeeOther)
}
