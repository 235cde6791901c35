package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// caseRoutes are the workflow's /v1 routes (cases.go, statements_review.go).
func caseRoutes() []route {
	return []route{
		{"GET", "/v1/cases", false, (*Console).listCases},
		{"GET", "/v1/cases/{id}", false, (*Console).showCase},
		{"POST", "/v1/cases/{id}/{action}", false, (*Console).caseAction},
		{"GET", "/v1/statement-reviews", false, (*Console).listReviews},
		{"POST", "/v1/statement-reviews/{party}/{seq}/{action}", false, (*Console).reviewAction},
	}
}

// workflowScope answers partners 404 (the queue does not exist for them)
// and every caller 503 when the workflow is off; ok means go on.
func (c *Console) workflowScope(w http.ResponseWriter, id Identity) bool {
	if id.Partner() {
		notFound(w, "such route")
		return false
	}
	if c.wf == nil {
		fail(w, http.StatusServiceUnavailable, CodeNoWorkflow, "this node runs the console without the workflow bucket (JetStream); see docs/console.md")
		return false
	}
	return true
}

func (c *Console) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), c.wf.Timeout)
}

// answerErr answers a refused action with its status and code, anything
// else as internal.
func (c *Console) answerErr(w http.ResponseWriter, err error) {
	var ae *actionError
	if errors.As(err, &ae) {
		fail(w, ae.status, ae.code, ae.reason)
		return
	}
	c.internal(w, err)
}

func (c *Console) listCases(w http.ResponseWriter, r *http.Request, id Identity) {
	if !c.workflowScope(w, id) {
		return
	}
	limit, ok := limitParam(w, r, 200, 10000)
	if !ok {
		return
	}
	q := r.URL.Query()
	state, source := q.Get("state"), q.Get("source")
	switch state {
	case "", StateOpen, StateProposed, StateApproved, StateRejected, StatePosted, StateDismissed:
	default:
		fail(w, http.StatusBadRequest, CodeBadRequest, "state="+quote(state)+": use open, proposed, approved, rejected, posted or dismissed")
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	all, err := c.queue(ctx)
	if err != nil {
		c.internal(w, err)
		return
	}
	out := []Case{}
	for _, cs := range all {
		if (state == "" || cs.State == state) && (source == "" || cs.Source == source) && len(out) < limit {
			out = append(out, cs)
		}
	}
	writeJSON(w, out)
}

func (c *Console) showCase(w http.ResponseWriter, r *http.Request, id Identity) {
	if !c.workflowScope(w, id) {
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	cs, err := c.getCase(ctx, r.PathValue("id"))
	if err != nil {
		c.answerErr(w, err)
		return
	}
	c.inLedger(cs)
	writeJSON(w, cs)
}

// decodeBody reads a small JSON body strictly (an empty body is {}).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.ContentLength != 0 {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			fail(w, http.StatusUnsupportedMediaType, CodeBadRequest, "send the body as Content-Type: application/json")
			return false
		}
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		fail(w, http.StatusBadRequest, CodeBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

func (c *Console) caseAction(w http.ResponseWriter, r *http.Request, id Identity) {
	if !c.workflowScope(w, id) {
		return
	}
	var req caseRequest
	if !decodeBody(w, r, &req) {
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	cs, err := c.doCase(ctx, id, r.PathValue("id"), r.PathValue("action"), req)
	if err != nil {
		c.answerErr(w, err)
		return
	}
	writeJSON(w, cs)
}

// doCase runs an action and, when it leaves the case approved (the final
// approval, or action post), posts it.
func (c *Console) doCase(ctx context.Context, who Identity, caseID, action string, req caseRequest) (*Case, error) {
	cs, err := c.act(ctx, who, caseID, action, req)
	if err != nil {
		return nil, err
	}
	c.log.Info("case", "case", caseID, "action", action, "by", who.Name, "state", cs.State, "revision", cs.Revision)
	if cs.State == StateApproved && (action == "approve" || action == "post") {
		if err := c.post(ctx, who, cs); err != nil {
			return nil, err
		}
	}
	c.inLedger(cs)
	return cs, nil
}

func (c *Console) listReviews(w http.ResponseWriter, r *http.Request, id Identity) {
	if !c.workflowScope(w, id) {
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	out, err := c.reviews(ctx, r.URL.Query().Get("party"), r.URL.Query().Get("state"))
	if err != nil {
		c.answerErr(w, err)
		return
	}
	writeJSON(w, out)
}

// reviewRequest is POST /v1/statement-reviews/{party}/{seq}/{action}'s body.
type reviewRequest struct {
	Revision *uint64 `json:"revision,omitempty"`
	Reason   string  `json:"reason,omitempty"` // reject
}

func (c *Console) reviewAction(w http.ResponseWriter, r *http.Request, id Identity) {
	if !c.workflowScope(w, id) {
		return
	}
	var req reviewRequest
	if !decodeBody(w, r, &req) {
		return
	}
	seq, err := strconv.Atoi(r.PathValue("seq"))
	if err != nil || strconv.Itoa(seq) != r.PathValue("seq") || seq < 1 {
		notFound(w, "statement")
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	rv, err := c.review(ctx, id, r.PathValue("party"), seq, r.PathValue("action"), req)
	if err != nil {
		c.answerErr(w, err)
		return
	}
	writeJSON(w, rv)
}
