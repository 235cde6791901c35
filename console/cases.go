package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle"
)

// The exception workflow (docs/console.md, "Exceptions and approvals").
//
// One queue holds the settle index's exceptions, the breaks of the kept
// reconciliations and the anomaly detector's records. Each item has a
// stable id (its case id); its workflow state lives in a JetStream KV
// bucket (<PREFIX>_CASES, key "case.<id>") so every settle node of a
// cluster sees the same state. An item with no record in the bucket is
// open. Every change is a compare-and-set on the key's revision: of two
// requests racing from the same revision exactly one wins, the other gets
// 409 stale.
//
//	open ──propose──▶ proposed ──approve (all required)──▶ approved ──post──▶ posted
//	  │                  │  ╲──reject──▶ rejected ──propose──▶ proposed …
//	  └──dismiss──▶ dismissed ◀──dismiss── (open, proposed, rejected)

// Case states.
const (
	StateOpen      = "open"
	StateProposed  = "proposed"
	StateApproved  = "approved"
	StateRejected  = "rejected"
	StatePosted    = "posted"
	StateDismissed = "dismissed"
)

// Case sources.
const (
	SourceException      = "exception"      // the settle index (id x-<partition>-<nanos>-<i>)
	SourceReconciliation = "reconciliation" // a kept reconciliation's break (id r-<seq>-<section>-<n>-<provider>)
	SourceAnomaly        = "anomaly"        // a TALLY_ANOMALIES record (id a-<stream seq>)
)

// Error codes of the workflow routes.
const (
	CodeStale        = "stale"         // the case changed since the revision the request was based on: reload and retry
	CodeWrongState   = "wrong_state"   // the action is not allowed in the case's (or statement's) state
	CodeMakerChecker = "maker_checker" // the checker is the maker, or has already approved
	CodeNoWorkflow   = "no_workflow"   // the node runs the console without the workflow bucket
)

// DefaultDualApprovalAbove is the default of settle.console_dual_approval_above.
var DefaultDualApprovalAbove = decimal.NewFromInt(10000)

// OpsProvider is the provider (and edge node) a posted correction is
// recorded under (SEAM.md: wire.OpsProvider).
const OpsProvider = "_tally"

// Line is one party's part of an adjustment: amount with sign, in the
// currency's exponent (e.g. "12.50", "-12.50").
type Line struct {
	Party  string `json:"party"`
	Amount string `json:"amount"`
}

// Proposal is an adjustment proposed for a case.
type Proposal struct {
	N                 int       `json:"n"` // 1 for the case's first proposal: the correction's id is adj-<case>-<n>
	Currency          string    `json:"currency"`
	Lines             []Line    `json:"lines"`
	Reason            string    `json:"reason"`
	By                string    `json:"by"`
	At                time.Time `json:"at"`
	Net               string    `json:"net"`                // Σ lines
	Size              string    `json:"size"`               // max(Σ positive lines, Σ |negative lines|): what the threshold compares
	ApprovalsRequired int       `json:"approvals_required"` // 1, or 2 above the threshold, fixed when proposed
}

// Approval is one checker's approval of the current proposal.
type Approval struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Event is one transition in a case's or statement's history.
type Event struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Action string    `json:"action"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Note   string    `json:"note,omitempty"`
}

// Posted is where a case's correction went.
type Posted struct {
	CorrectionID string    `json:"correction_id"`
	Seq          uint64    `json:"seq"` // the Poster's sequence (the operator log's stream sequence)
	At           time.Time `json:"at"`
}

// LedgerPos is where a correction was settled.
type LedgerPos struct {
	Partition uint32 `json:"partition"`
	Index     uint64 `json:"index"`
}

// Case is one item of the queue with its workflow state. Revision is the
// KV revision of its record (0: no record yet, the case is open).
type Case struct {
	ID        string     `json:"id"`
	Source    string     `json:"source"`
	Kind      string     `json:"kind"`
	Provider  string     `json:"provider,omitempty"`
	TxID      string     `json:"tx_id,omitempty"`
	Summary   string     `json:"summary"`
	At        time.Time  `json:"at"`
	State     string     `json:"state"`
	Proposal  *Proposal  `json:"proposal,omitempty"`
	Approvals []Approval `json:"approvals,omitempty"` // of the current proposal
	Dismissed string     `json:"dismiss_reason,omitempty"`
	Posted    *Posted    `json:"posted,omitempty"`
	PostError string     `json:"post_error,omitempty"` // the last failed post (the case stays approved; retry with action post)
	History   []Event    `json:"history"`
	Revision  uint64     `json:"revision"`
	InLedger  *LedgerPos `json:"in_ledger,omitempty"` // filled on reads when the correction is found in the ledger
}

// Correction is an approved adjustment as it enters the ledger: exactly
// the fields of the correction payload of SEAM.md (type "correction",
// provider and node _tally). Meta gives the payload's meta map.
type Correction struct {
	ID                string    // adj-<case id>-<n>
	Currency          string    //
	Amount            string    // |Σ lines|, in the currency's exponent
	OccurredAt        time.Time // approval time (the final approval)
	Exception         string    // the case id it resolves
	ProposedBy        string    //
	ApprovedBy        []string  // distinct checkers in approval order, none the proposer
	ApprovalsRequired int       // 1 or 2, as configured when proposed
	Reason            string    //
	Lines             []Line    // in the proposal's order, each party once
}

// LinesMeta is the meta "lines" value: party=amount joined by ";".
func (c Correction) LinesMeta() string {
	parts := make([]string, len(c.Lines))
	for i, l := range c.Lines {
		parts[i] = l.Party + "=" + l.Amount
	}
	return strings.Join(parts, ";")
}

// Meta is the payload's meta map (SEAM.md).
func (c Correction) Meta() map[string]string {
	return map[string]string{
		"exception": c.Exception, "proposed_by": c.ProposedBy, "approved_by": strings.Join(c.ApprovedBy, ","),
		"approvals_required": strconv.Itoa(c.ApprovalsRequired), "reason": c.Reason, "lines": c.LinesMeta(),
	}
}

// Poster posts an approved correction to the ledger's commit path (the
// node wires the operator log, settle/oplog). seq is the position the
// poster gave it; posting the same Correction.ID twice must not apply it
// twice.
type Poster interface {
	PostCorrection(ctx context.Context, c Correction) (seq uint64, err error)
}

// WorkflowOptions turn the workflow on (Console.EnableWorkflow).
type WorkflowOptions struct {
	KV                jetstream.KeyValue  // <PREFIX>_CASES: case and statement state
	JS                jetstream.JetStream // reads the anomalies stream; nil = no anomalies
	AnomalyStream     string              // <PREFIX>_ANOMALIES (looked up on each read: it may be created later)
	ReconDir          string              // <data>/reconciliations, or ""
	Poster            Poster              // nil: approved cases stay approved until one is wired
	DualApprovalAbove decimal.Decimal     // a proposal larger than this needs two approvers
	Timeout           time.Duration       // per request to the bucket (default 10 s)
	// Queue bounds one listing of the case queue: the newest of each
	// source (settle.console_queue_*; zero fields take QueueDefaults).
	Queue QueueLimits
}

// QueueLimits bounds one listing of the case queue per source.
type QueueLimits struct {
	Exceptions int // settle exceptions
	Anomalies  int // records of the anomalies stream read back
	Breaks     int // reconciliation breaks over the kept results
}

// QueueDefaults are settle.console_queue_*'s defaults.
var QueueDefaults = QueueLimits{Exceptions: 1000, Anomalies: 200, Breaks: 5000}

// exceptionReader is the part of *settle.Node the queue reads.
type exceptionReader interface {
	ExceptionRefs(max int) ([]settle.ExceptionRef, error)
	ExceptionByID(id string) (settle.Exception, bool, error)
}

var _ exceptionReader = (*settle.Node)(nil)

type workflow struct {
	WorkflowOptions
	exceptions exceptionReader
	poster     atomic.Pointer[posterBox] // Poster, replaceable while serving (SetPoster)
}

type posterBox struct{ p Poster }

// SetPoster wires (or replaces) the Poster of a running console's
// workflow; a console without the workflow ignores it.
func (c *Console) SetPoster(p Poster) {
	if c.wf != nil {
		c.wf.poster.Store(&posterBox{p})
	}
}

func (w *workflow) getPoster() Poster {
	if b := w.poster.Load(); b != nil {
		return b.p
	}
	return nil
}

// EnableWorkflow turns on the exception queue's workflow and the statement
// workflow; call it before serving. The Node must also be able to list
// exceptions by id (*settle.Node can).
func (c *Console) EnableWorkflow(o WorkflowOptions) error {
	if o.KV == nil {
		return errors.New("console: the workflow needs its KV bucket")
	}
	er, ok := c.o.Node.(exceptionReader)
	if !ok {
		return errors.New("console: the node cannot read exceptions by id")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Queue.Exceptions <= 0 {
		o.Queue.Exceptions = QueueDefaults.Exceptions
	}
	if o.Queue.Anomalies <= 0 {
		o.Queue.Anomalies = QueueDefaults.Anomalies
	}
	if o.Queue.Breaks <= 0 {
		o.Queue.Breaks = QueueDefaults.Breaks
	}
	if o.DualApprovalAbove.IsNegative() {
		return errors.New("console: dual approval threshold below zero")
	}
	c.wf = &workflow{WorkflowOptions: o, exceptions: er}
	c.wf.poster.Store(&posterBox{o.Poster})
	return nil
}

// CasesBucket names the workflow bucket of a prefix (like the other
// buckets: the prefix upper-cased).
func CasesBucket(prefix string) string { return strings.ToUpper(prefix) + "_CASES" }

// OpenCasesBucket opens or creates the workflow bucket (history kept: 16
// revisions per key; every record also carries its own full history).
func OpenCasesBucket(ctx context.Context, js jetstream.JetStream, prefix string, replicas int) (jetstream.KeyValue, error) {
	name := CasesBucket(prefix)
	kv, err := js.KeyValue(ctx, name)
	if err == nil || !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, Description: "tally console: exception cases and statement reviews",
		History: 16, Replicas: max(replicas, 1), Storage: jetstream.FileStorage})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, name)
	}
	return kv, err
}

var caseIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)

func caseKey(id string) string { return "case." + id }

// StatementReviewKey is the workflow bucket's key of party's statement
// seq (its value: a StatementReview).
func StatementReviewKey(party string, seq int) string { return stmtKey(party, seq) }

// stmtKey is a statement's key: parties may hold any character, so base64url.
func stmtKey(party string, seq int) string {
	return "stmt." + base64.RawURLEncoding.EncodeToString([]byte(party)) + "." + strconv.Itoa(seq)
}

// errStale: a compare-and-set lost, or the request's revision is old.
var errStale = errors.New("the record changed meanwhile")

// actionError is a refused action: status, code and reason for the answer.
type actionError struct {
	status int
	code   string
	reason string
}

func (e *actionError) Error() string { return e.code + ": " + e.reason }

func refuse(status int, code, format string, a ...any) error {
	return &actionError{status: status, code: code, reason: fmt.Sprintf(format, a...)}
}

// load reads key into v; rev 0 when absent.
func (w *workflow) load(ctx context.Context, key string, v any) (rev uint64, err error) {
	e, err := w.KV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return e.Revision(), nil
}

// store writes v at key if its revision is still rev (0: create). A lost
// race is errStale.
func (w *workflow) store(ctx context.Context, key string, rev uint64, v any) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = w.KV.Create(ctx, key, b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return 0, errStale
		}
	} else {
		nrev, err = w.KV.Update(ctx, key, b, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return 0, errStale
		}
	}
	return nrev, err
}

// records reads every record under prefix ("case." or "stmt.").
func (w *workflow) records(ctx context.Context, prefix string, each func(key string, rev uint64, v []byte) error) error {
	wt, err := w.KV.WatchFiltered(ctx, []string{prefix + ">"}, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer wt.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-wt.Updates():
			if !ok {
				return errors.New("workflow bucket watch closed")
			}
			if e == nil { // the initial values are all delivered
				return nil
			}
			if err := each(e.Key(), e.Revision(), e.Value()); err != nil {
				return err
			}
		}
	}
}

// maxLines bounds a proposal.
const maxLines = 50

// partyPattern: a party as it may appear in meta.lines (no "=" or ";").
var partyPattern = regexp.MustCompile(`^[^=;\s\x00-\x1f\x7f]{1,64}$`)

// checkProposal validates a proposal's currency, lines and reason and
// returns the net (Σ) and the size (the larger side).
func checkProposal(currency string, lines []Line, reason string) (net, size decimal.Decimal, err error) {
	cur, ok := money.Lookup(currency)
	if !ok {
		return net, size, refuse(400, CodeBadRequest, "currency %s is not a known ISO 4217 code", quote(currency))
	}
	if len(lines) == 0 || len(lines) > maxLines {
		return net, size, refuse(400, CodeBadRequest, "a proposal has 1-%d lines party=amount", maxLines)
	}
	if strings.TrimSpace(reason) == "" || len(reason) > 1000 || !printableText(reason) {
		return net, size, refuse(400, CodeBadRequest, "give a reason (1-1000 printable characters)")
	}
	seen := map[string]bool{}
	var pos, neg decimal.Decimal
	for _, l := range lines {
		if !partyPattern.MatchString(l.Party) {
			return net, size, refuse(400, CodeBadRequest, "party %s: 1-64 characters, no spaces, '=' or ';'", quote(l.Party))
		}
		if seen[l.Party] {
			return net, size, refuse(400, CodeBadRequest, "party %s is named twice: one line per party", quote(l.Party))
		}
		seen[l.Party] = true
		d, err := decimal.NewFromString(l.Amount)
		// Byte-exact: the amount must already be written as the ledger
		// writes it (sign, the currency's decimals); it is never rewritten.
		if err != nil || cur.Format(d) != l.Amount || d.IsZero() {
			return net, size, refuse(400, CodeBadRequest, "line %s=%s: write a non-zero amount with exactly %d decimals (e.g. %s)",
				l.Party, quote(l.Amount), cur.Exponent, cur.Format(decimal.New(1250, -2)))
		}
		if _, err := cur.Minor(d); err != nil {
			return net, size, refuse(400, CodeBadRequest, "line %s: %v", l.Party, err)
		}
		net = net.Add(d)
		if d.IsPositive() {
			pos = pos.Add(d)
		} else {
			neg = neg.Sub(d)
		}
	}
	return net, decimal.Max(pos, neg), nil
}

func printableText(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// correction is the Correction of an approved case.
func correctionOf(cs *Case) Correction {
	p := cs.Proposal
	cur, _ := money.Lookup(p.Currency)
	net := decimal.RequireFromString(p.Net)
	by := make([]string, len(cs.Approvals))
	for i, a := range cs.Approvals {
		by[i] = a.By
	}
	at := cs.Approvals[len(cs.Approvals)-1].At
	return Correction{ID: fmt.Sprintf("adj-%s-%d", cs.ID, p.N), Currency: p.Currency, Amount: cur.Format(net.Abs()), OccurredAt: at,
		Exception: cs.ID, ProposedBy: p.By, ApprovedBy: by, ApprovalsRequired: p.ApprovalsRequired, Reason: p.Reason,
		Lines: append([]Line(nil), p.Lines...)}
}

// maxHistory bounds a record's history (the oldest events are dropped; the
// bucket keeps 16 revisions besides).
const maxHistory = 200

func addEvent(h []Event, ev Event) []Event {
	h = append(h, ev)
	if len(h) > maxHistory {
		h = h[len(h)-maxHistory:]
	}
	return h
}

// caseRequest is POST /v1/cases/{id}/{action}'s body.
type caseRequest struct {
	Revision *uint64 `json:"revision,omitempty"` // the revision the caller saw; a newer one answers 409 stale
	Currency string  `json:"currency,omitempty"` // propose
	Lines    []Line  `json:"lines,omitempty"`    // propose
	Reason   string  `json:"reason,omitempty"`   // propose, reject, dismiss
}

// act applies action to case id for identity who: one compare-and-set. It
// returns the case as stored; for a final approval the caller posts.
func (c *Console) act(ctx context.Context, who Identity, id, action string, req caseRequest) (*Case, error) {
	w := c.wf
	cs, err := c.getCase(ctx, id)
	if err != nil {
		return nil, err
	}
	if req.Revision != nil && *req.Revision != cs.Revision {
		return nil, refuse(409, CodeStale, "case %s is at revision %d, not %d: reload it", id, cs.Revision, *req.Revision)
	}
	now := c.now().UTC()
	from := cs.State
	note := ""
	need := func(role string) error {
		if !who.AtLeast(role) {
			return refuse(403, CodeForbidden, "%s needs the %s role or higher", action, role)
		}
		return nil
	}
	inState := func(states ...string) error {
		for _, s := range states {
			if cs.State == s {
				return nil
			}
		}
		return refuse(409, CodeWrongState, "case %s is %s: %s needs it %s", id, cs.State, action, strings.Join(states, " or "))
	}
	switch action {
	case "propose":
		if err := need(RoleOperator); err != nil {
			return nil, err
		}
		if err := inState(StateOpen, StateRejected); err != nil {
			return nil, err
		}
		net, size, err := checkProposal(req.Currency, req.Lines, req.Reason)
		if err != nil {
			return nil, err
		}
		cur, _ := money.Lookup(req.Currency)
		n := 1
		if cs.Proposal != nil {
			n = cs.Proposal.N + 1
		}
		required := 1
		if size.GreaterThan(w.DualApprovalAbove) {
			required = 2
		}
		cs.Proposal = &Proposal{N: n, Currency: req.Currency, Lines: req.Lines, Reason: req.Reason, By: who.Name, At: now,
			Net: cur.Format(net), Size: cur.Format(size), ApprovalsRequired: required}
		cs.Approvals, cs.State, cs.PostError = nil, StateProposed, ""
		note = fmt.Sprintf("%s %s net %s, %d approval(s) required: %s", req.Currency, (Correction{Lines: req.Lines}).LinesMeta(), cur.Format(net), required, req.Reason)
	case "approve":
		if err := need(RoleApprover); err != nil {
			return nil, err
		}
		if err := inState(StateProposed); err != nil {
			return nil, err
		}
		if cs.Proposal.By == who.Name {
			return nil, refuse(403, CodeMakerChecker, "%s proposed this adjustment: another identity must approve it", who.Name)
		}
		for _, a := range cs.Approvals {
			if a.By == who.Name {
				return nil, refuse(403, CodeMakerChecker, "%s has already approved: the second approval must come from another approver", who.Name)
			}
		}
		cs.Approvals = append(cs.Approvals, Approval{By: who.Name, At: now})
		note = fmt.Sprintf("approval %d of %d", len(cs.Approvals), cs.Proposal.ApprovalsRequired)
		if len(cs.Approvals) >= cs.Proposal.ApprovalsRequired {
			cs.State = StateApproved
		}
	case "reject":
		if err := need(RoleApprover); err != nil {
			return nil, err
		}
		if err := inState(StateProposed); err != nil {
			return nil, err
		}
		if cs.Proposal.By == who.Name {
			return nil, refuse(403, CodeMakerChecker, "%s proposed this adjustment: another identity must check it", who.Name)
		}
		if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 1000 || !printableText(req.Reason) {
			return nil, refuse(400, CodeBadRequest, "give a reason (1-1000 printable characters)")
		}
		cs.State, cs.Approvals, note = StateRejected, nil, req.Reason
	case "dismiss":
		if err := need(RoleOperator); err != nil {
			return nil, err
		}
		if err := inState(StateOpen, StateProposed, StateRejected); err != nil {
			return nil, err
		}
		if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 1000 || !printableText(req.Reason) {
			return nil, refuse(400, CodeBadRequest, "give a reason (1-1000 printable characters)")
		}
		cs.State, cs.Dismissed, note = StateDismissed, req.Reason, req.Reason
	case "post":
		if err := need(RoleApprover); err != nil {
			return nil, err
		}
		if err := inState(StateApproved); err != nil {
			return nil, err
		}
		// Nothing to store: the caller posts.
		return cs, nil
	default:
		return nil, refuse(404, CodeNotFound, "no action %s (use propose, approve, reject, dismiss or post)", quote(action))
	}
	cs.History = addEvent(cs.History, Event{At: now, By: who.Name, Action: action, From: from, To: cs.State, Note: note})
	if err := c.putCase(ctx, cs); err != nil {
		return nil, err
	}
	return cs, nil
}

// putCase stores cs at its revision (compare-and-set) and updates it.
func (c *Console) putCase(ctx context.Context, cs *Case) error {
	stored := *cs
	stored.InLedger = nil
	rev, err := c.wf.store(ctx, caseKey(cs.ID), cs.Revision, &stored)
	if errors.Is(err, errStale) {
		return refuse(409, CodeStale, "case %s changed meanwhile (another request won): reload it", cs.ID)
	}
	if err != nil {
		return err
	}
	cs.Revision = rev
	return nil
}

// post posts an approved case's correction and records it: posted once
// the Poster accepted it (the entry reaches the ledger through the normal
// commit path; reads show in_ledger when it has). A failure is recorded as
// post_error and the case stays approved.
func (c *Console) post(ctx context.Context, who Identity, cs *Case) error {
	poster := c.wf.getPoster()
	if poster == nil {
		return refuse(503, CodeUnavailable, "case %s is approved; this node has no poster wired to the ledger, so it is not posted yet", cs.ID)
	}
	corr := correctionOf(cs)
	seq, perr := poster.PostCorrection(ctx, corr)
	now := c.now().UTC()
	if perr != nil {
		c.log.Error("post correction", "case", cs.ID, "correction", corr.ID, "error", perr)
		cs.PostError = perr.Error()
		cs.History = addEvent(cs.History, Event{At: now, By: who.Name, Action: "post", From: StateApproved, To: StateApproved, Note: "failed: " + perr.Error()})
		if err := c.putCase(ctx, cs); err != nil {
			return err
		}
		return refuse(502, CodeUnavailable, "case %s is approved but posting %s failed (%v): retry with action post", cs.ID, corr.ID, perr)
	}
	cs.State, cs.PostError = StatePosted, ""
	cs.Posted = &Posted{CorrectionID: corr.ID, Seq: seq, At: now}
	cs.History = addEvent(cs.History, Event{At: now, By: who.Name, Action: "post", From: StateApproved, To: StatePosted, Note: fmt.Sprintf("%s as %d", corr.ID, seq)})
	for i := 0; i < 5; i++ { // the post is done: record it even if a racing retry moved the revision
		err := c.putCase(ctx, cs)
		if err == nil {
			return nil
		}
		var ae *actionError
		if !errors.As(err, &ae) || ae.code != CodeStale {
			return err
		}
		cur, err := c.getCase(ctx, cs.ID)
		if err != nil {
			return err
		}
		if cur.State == StatePosted {
			*cs = *cur
			return nil
		}
		cs.Revision = cur.Revision
	}
	return refuse(409, CodeStale, "case %s was posted as %s but recording it kept racing: reload it", cs.ID, corr.ID)
}
