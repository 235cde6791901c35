package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// The statement workflow: a statement that `tally statements` signed is
// unreviewed until an operator submits it (draft); an approver other than
// the submitter approves it (or rejects it back); an operator then issues
// it. A partner sees only issued statements, and `tally payouts run` pays
// only approved or issued ones (StatementPayable). The state lives in the
// workflow bucket under stmt.<base64url party>.<seq>, changed by
// compare-and-set like a case.

// Statement review states.
const (
	ReviewUnsubmitted = "unsubmitted" // no record: signed, not yet put up for review
	ReviewDraft       = "draft"
	ReviewApproved    = "approved"
	ReviewRejected    = "rejected"
	ReviewIssued      = "issued"
)

// StatementReview is one statement's review state.
type StatementReview struct {
	Party      string  `json:"party"`
	Seq        int     `json:"seq"`
	Period     string  `json:"period"`
	Currency   string  `json:"currency"`
	Closing    string  `json:"closing"`
	Hash       string  `json:"hash"` // the statement reviewed (hex SHA-256): a review never carries over to other content
	State      string  `json:"state"`
	CreatedBy  string  `json:"created_by,omitempty"` // who submitted it (the maker)
	ApprovedBy string  `json:"approved_by,omitempty"`
	IssuedBy   string  `json:"issued_by,omitempty"`
	History    []Event `json:"history"`
	Revision   uint64  `json:"revision"`
}

// reviews lists every signed statement (of party, when set) with its state.
func (c *Console) reviews(ctx context.Context, party, state string) ([]StatementReview, error) {
	parties, err := c.statementParties(Identity{Role: RoleViewer}, party)
	if err != nil {
		return nil, err
	}
	out := []StatementReview{}
	for _, p := range parties {
		ch, err := c.chain(p)
		if err != nil {
			return nil, err
		}
		for _, is := range ch.Issued {
			rv, err := c.loadReview(ctx, p, is.Seq)
			if err != nil {
				return nil, err
			}
			if state == "" || rv.State == state {
				out = append(out, *rv)
			}
		}
	}
	return out, nil
}

// loadReview is party's statement seq with its review state; 404 when the
// statement does not exist.
func (c *Console) loadReview(ctx context.Context, party string, seq int) (*StatementReview, error) {
	ch, err := c.chain(party)
	if err != nil {
		return nil, err
	}
	if seq < 1 || seq > len(ch.Issued) {
		return nil, refuse(404, CodeNotFound, "no such statement")
	}
	is := ch.Issued[seq-1]
	var rv StatementReview
	rev, err := c.wf.load(ctx, stmtKey(party, seq), &rv)
	if err != nil {
		return nil, err
	}
	if rev == 0 || rv.Hash != is.Hash { // no record, or one of other content: unreviewed
		rv = StatementReview{State: ReviewUnsubmitted}
		if rev != 0 {
			c.log.Warn("statement review names another hash", "party", party, "seq", seq, "review", rv.Hash, "statement", is.Hash)
		}
	}
	s := is.Statement
	rv.Party, rv.Seq, rv.Period, rv.Currency, rv.Closing, rv.Hash, rv.Revision = party, seq, s.Period, s.Currency, s.Closing, is.Hash, rev
	if rv.History == nil {
		rv.History = []Event{}
	}
	return &rv, nil
}

// review applies action (submit, approve, reject, issue) to a statement.
func (c *Console) review(ctx context.Context, who Identity, party string, seq int, action string, req reviewRequest) (*StatementReview, error) {
	rv, err := c.loadReview(ctx, party, seq)
	if err != nil {
		return nil, err
	}
	if req.Revision != nil && *req.Revision != rv.Revision {
		return nil, refuse(409, CodeStale, "the review is at revision %d, not %d: reload it", rv.Revision, *req.Revision)
	}
	need := func(role string) error {
		if !who.AtLeast(role) {
			return refuse(403, CodeForbidden, "%s needs the %s role or higher", action, role)
		}
		return nil
	}
	inState := func(states ...string) error {
		for _, s := range states {
			if rv.State == s {
				return nil
			}
		}
		return refuse(409, CodeWrongState, "statement %s %d is %s: %s needs it %s", party, seq, rv.State, action, strings.Join(states, " or "))
	}
	from, note := rv.State, ""
	switch action {
	case "submit":
		if err := need(RoleOperator); err != nil {
			return nil, err
		}
		if err := inState(ReviewUnsubmitted, ReviewRejected); err != nil {
			return nil, err
		}
		rv.State, rv.CreatedBy, rv.ApprovedBy = ReviewDraft, who.Name, ""
	case "approve", "reject":
		if err := need(RoleApprover); err != nil {
			return nil, err
		}
		if err := inState(ReviewDraft); err != nil {
			return nil, err
		}
		if rv.CreatedBy == who.Name {
			return nil, refuse(403, CodeMakerChecker, "%s submitted this statement: another identity must check it", who.Name)
		}
		if action == "approve" {
			rv.State, rv.ApprovedBy = ReviewApproved, who.Name
		} else {
			if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 1000 || !printableText(req.Reason) {
				return nil, refuse(400, CodeBadRequest, "give a reason (1-1000 printable characters)")
			}
			rv.State, note = ReviewRejected, req.Reason
		}
	case "issue":
		if err := need(RoleOperator); err != nil {
			return nil, err
		}
		if err := inState(ReviewApproved); err != nil {
			return nil, err
		}
		rv.State, rv.IssuedBy = ReviewIssued, who.Name
	default:
		return nil, refuse(404, CodeNotFound, "no action %s (use submit, approve, reject or issue)", quote(action))
	}
	rv.History = addEvent(rv.History, Event{At: c.now().UTC(), By: who.Name, Action: action, From: from, To: rv.State, Note: note})
	stored := *rv
	rev, err := c.wf.store(ctx, stmtKey(party, seq), rv.Revision, &stored)
	if errors.Is(err, errStale) {
		return nil, refuse(409, CodeStale, "statement %s %d changed meanwhile (another request won): reload it", party, seq)
	}
	if err != nil {
		return nil, err
	}
	rv.Revision = rev
	c.log.Info("statement review", "party", party, "seq", seq, "action", action, "by", who.Name, "state", rv.State)
	return rv, nil
}

// released reports whether a partner may see party's statement seq: always
// without the workflow, else only once issued.
func (c *Console) released(party string, seq int, hash string) bool {
	if c.wf == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.wf.Timeout)
	defer cancel()
	var rv StatementReview
	rev, err := c.wf.load(ctx, stmtKey(party, seq), &rv)
	if err != nil {
		c.log.Warn("statement review unreadable", "party", party, "seq", seq, "error", err)
		return false
	}
	return rev != 0 && rv.State == ReviewIssued && rv.Hash == hash
}

// StatementPayable reads a statement's review state from the workflow
// bucket: ok when it is approved or issued for exactly this hash. state is
// what was found (ReviewUnsubmitted when there is no record). `tally
// payouts run` calls it for every statement it would pay.
func StatementPayable(ctx context.Context, kv jetstream.KeyValue, party string, seq int, hash string) (ok bool, state string, err error) {
	e, err := kv.Get(ctx, stmtKey(party, seq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, ReviewUnsubmitted, nil
	}
	if err != nil {
		return false, "", err
	}
	var rv StatementReview
	if err := json.Unmarshal(e.Value(), &rv); err != nil {
		return false, "", fmt.Errorf("statement review %s %d: %w", party, seq, err)
	}
	if rv.Hash != hash {
		return false, ReviewUnsubmitted, nil
	}
	return rv.State == ReviewApproved || rv.State == ReviewIssued, rv.State, nil
}
