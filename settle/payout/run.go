package payout

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/statement"
)

// Format is the version of the run record encoding.
const Format = 1

// Run is one payout run as recorded: who created and who approved it, the
// account paid from, and one item per statement it pays. Its canonical JSON
// is signed with the ledger key and linked to the previous run (store.go).
type Run struct {
	Format     int       `json:"format"`
	Seq        int       `json:"seq"`
	ID         string    `json:"id"`       // RUN-<seq, 6 digits>: the pain.001 MsgId
	Previous   string    `json:"previous"` // hex SHA-256 of run seq − 1; "" for the first
	Period     string    `json:"period"`
	CreatedAt  time.Time `json:"created_at"`
	Execution  string    `json:"execution_date"` // requested execution date, YYYY-MM-DD
	CreatedBy  string    `json:"created_by"`
	ApprovedBy string    `json:"approved_by"`
	Debtor     Account   `json:"debtor"`
	Items      []Item    `json:"items"`
	Totals     []Total   `json:"totals"`
}

// Item pays one statement: Amount = Due − PaidBefore, where PaidBefore is
// what earlier runs paid the party in the currency (a statement's closing,
// and so its due, is the party's balance since its first statement:
// payments are not ledger entries and do not reduce it).
type Item struct {
	EndToEndID string    `json:"end_to_end_id"` // <run id>-<item, 4 digits>
	Party      string    `json:"party"`
	Currency   string    `json:"currency"`
	Period     string    `json:"period"`
	End        time.Time `json:"end"`       // the statement's period end (UTC)
	Statement  string    `json:"statement"` // hex SHA-256 of the statement paid
	Due        string    `json:"due"`
	PaidBefore string    `json:"paid_before"`
	Amount     string    `json:"amount"`
	Creditor   Account   `json:"creditor"`
	// With a settlement currency (fx.go): the statement's foreign balances
	// revalued at the payout-time rate; Amount includes FXDifference
	// (Σ FX[].Difference), PaidBefore never does.
	FX           []ItemFX `json:"fx,omitempty"`
	FXDifference string   `json:"fx_difference,omitempty"`
}

// Total is the count and sum of a run's items in one currency.
type Total struct {
	Currency string `json:"currency"`
	Count    int    `json:"count"`
	Sum      string `json:"sum"`
}

// Candidate is a final statement that a run may pay.
type Candidate struct {
	Hash      string
	Statement *statement.Statement
}

// Skip is a statement a run does not pay, and why.
type Skip struct {
	Party     string `json:"party"`
	Currency  string `json:"currency"`
	Period    string `json:"period"`
	Statement string `json:"statement"`
	Reason    string `json:"reason"`
}

// Errors of Plan.
var (
	ErrMakerChecker = errors.New("a payout run needs an approver distinct from its creator")
	ErrProvisional  = errors.New("a provisional statement is never paid")
	ErrNothingToPay = errors.New("nothing to pay")
)

// Request is what a run is asked to do.
type Request struct {
	Period     string
	CreatedBy  string
	ApprovedBy string
	Now        time.Time // the run's creation time
	Execution  string    // YYYY-MM-DD; "" for Now's date (UTC)
	Banks      *Banks
	// Rates revalue a statement's foreign balances at Now (fx.go); a
	// statement with FX lines is refused without them.
	Rates *fx.Table
}

// Plan builds the next run after prior (the runs recorded so far, oldest
// first) from the candidates: for each final statement not paid by an
// earlier run, of a party with bank details, the amount still due. It is
// pure: nothing is written. A provisional candidate is refused (the run is
// not built); equal or empty created-by and approved-by are refused; a run
// that would pay nothing is refused with ErrNothingToPay and the skips.
func Plan(prior []Run, cands []Candidate, req Request) (*Run, []Skip, error) {
	if req.CreatedBy == "" || req.ApprovedBy == "" || req.CreatedBy == req.ApprovedBy {
		return nil, nil, fmt.Errorf("created by %q, approved by %q: %w", req.CreatedBy, req.ApprovedBy, ErrMakerChecker)
	}
	if req.Banks == nil {
		return nil, nil, fmt.Errorf("no bank details: %w", ErrBankDetails)
	}
	if err := req.Banks.Debtor.Validate(); err != nil {
		return nil, nil, fmt.Errorf("debtor: %w", err)
	}
	exec := req.Execution
	if exec == "" {
		exec = req.Now.UTC().Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, exec); err != nil {
		return nil, nil, fmt.Errorf("execution date %q is not YYYY-MM-DD", exec)
	}
	paidBy := map[string]int{}              // statement hash → run seq
	paid := map[[2]string]decimal.Decimal{} // party, currency → Σ paid
	lastPaid := map[[2]string]time.Time{}   // party, currency → end of the last statement paid
	for _, r := range prior {
		for _, it := range r.Items {
			paidBy[it.Statement] = r.Seq
			k := [2]string{it.Party, it.Currency}
			paid[k] = paid[k].Add(decimal.RequireFromString(it.Amount))
			if it.FXDifference != "" {
				paid[k] = paid[k].Sub(decimal.RequireFromString(it.FXDifference))
			}
			if it.End.After(lastPaid[k]) {
				lastPaid[k] = it.End
			}
		}
	}
	for _, c := range cands {
		if c.Statement.Provisional {
			return nil, nil, fmt.Errorf("statement %s of %s %s %s is provisional: %w", c.Hash, c.Statement.Party, c.Statement.Currency, c.Statement.Period, ErrProvisional)
		}
	}
	// Candidates in a stable order: party, currency, period start.
	cands = append([]Candidate(nil), cands...)
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i].Statement, cands[j].Statement
		if a.Party != b.Party {
			return a.Party < b.Party
		}
		if a.Currency != b.Currency {
			return a.Currency < b.Currency
		}
		return a.Start.Before(b.Start)
	})
	seq := len(prior) + 1
	run := &Run{
		Format: Format, Seq: seq, ID: fmt.Sprintf("RUN-%06d", seq), Period: req.Period, CreatedAt: req.Now.UTC().Truncate(time.Second),
		Execution: exec, CreatedBy: req.CreatedBy, ApprovedBy: req.ApprovedBy, Debtor: req.Banks.Debtor, Items: []Item{}, Totals: []Total{},
	}
	var skips []Skip
	totals := map[string]*Total{}
	sums := map[string]decimal.Decimal{}
	for _, c := range cands {
		s := c.Statement
		k := [2]string{s.Party, s.Currency}
		skip := func(reason string) {
			skips = append(skips, Skip{Party: s.Party, Currency: s.Currency, Period: s.Period, Statement: c.Hash, Reason: reason})
		}
		cur, ok := money.Lookup(s.Currency)
		if !ok {
			return nil, nil, fmt.Errorf("statement %s: unknown currency %q", c.Hash, s.Currency)
		}
		if n, ok := paidBy[c.Hash]; ok {
			skip(fmt.Sprintf("already paid by RUN-%06d", n))
			continue
		}
		if !s.End.After(lastPaid[k]) {
			skip("a later statement of the party in this currency was already paid")
			continue
		}
		acct, ok := req.Banks.Parties[s.Party]
		if !ok {
			skip("no bank details for the party")
			continue
		}
		due, err := decimal.NewFromString(s.Closing)
		if err != nil {
			return nil, nil, fmt.Errorf("statement %s: closing %q: %w", c.Hash, s.Closing, err)
		}
		if s.Payout != nil {
			if due, err = decimal.NewFromString(s.Payout.Due); err != nil {
				return nil, nil, fmt.Errorf("statement %s: due %q: %w", c.Hash, s.Payout.Due, err)
			}
		}
		if !due.IsPositive() {
			skip("nothing due (balance withheld or not positive)")
			continue
		}
		amount := due.Sub(paid[k])
		if !amount.IsPositive() {
			skip(fmt.Sprintf("due %s already paid by earlier runs (%s)", cur.Format(due), cur.Format(paid[k])))
			continue
		}
		// The minimum payout applies to what is paid, not to the balance:
		// the statement's due is the whole balance since the party's first
		// statement, of which earlier runs paid part. A remainder below the
		// minimum stays withheld until it reaches it.
		if s.Payout != nil && s.Payout.Minimum != "" {
			minimum, err := decimal.NewFromString(s.Payout.Minimum)
			if err != nil {
				return nil, nil, fmt.Errorf("statement %s: minimum payout %q: %w", c.Hash, s.Payout.Minimum, err)
			}
			if amount.LessThan(minimum) {
				skip(fmt.Sprintf("still owed %s (due %s less %s paid by earlier runs), below the minimum payout %s: withheld", cur.Format(amount), cur.Format(due), cur.Format(paid[k]), cur.Format(minimum)))
				continue
			}
		}
		if err := acct.Validate(); err != nil {
			return nil, nil, fmt.Errorf("party %s: %w", s.Party, err)
		}
		ifx, diff, err := revalue(s, req.Rates, req.Now)
		if err != nil {
			return nil, nil, fmt.Errorf("statement %s: %w", c.Hash, err)
		}
		if pay := amount.Add(diff); !pay.IsPositive() {
			skip(fmt.Sprintf("due %s less the FX difference %s at payout is not positive", cur.Format(amount), cur.Format(diff)))
			continue
		}
		it := Item{
			EndToEndID: fmt.Sprintf("%s-%04d", run.ID, len(run.Items)+1), Party: s.Party, Currency: s.Currency, Period: s.Period, End: s.End.UTC(), Statement: c.Hash,
			Due: cur.Format(due), PaidBefore: cur.Format(paid[k]), Amount: cur.Format(amount.Add(diff)), Creditor: acct, FX: ifx,
		}
		if len(ifx) > 0 {
			it.FXDifference = cur.Format(diff)
		}
		run.Items = append(run.Items, it)
		paid[k] = paid[k].Add(amount)
		amount = amount.Add(diff)
		lastPaid[k] = s.End
		if totals[s.Currency] == nil {
			totals[s.Currency] = &Total{Currency: s.Currency}
		}
		totals[s.Currency].Count++
		sums[s.Currency] = sums[s.Currency].Add(amount)
		totals[s.Currency].Sum = cur.Format(sums[s.Currency])
	}
	if len(run.Items) == 0 {
		return nil, skips, fmt.Errorf("run for %s: %d statements, none payable: %w", req.Period, len(cands), ErrNothingToPay)
	}
	codes := make([]string, 0, len(totals))
	for c := range totals {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		run.Totals = append(run.Totals, *totals[c])
	}
	return run, skips, nil
}

// ControlSum is Σ of the items' amounts, all currencies together (as
// pain.001's CtrlSum), exactly.
func (r *Run) ControlSum() decimal.Decimal {
	sum := decimal.Zero
	for _, it := range r.Items {
		sum = sum.Add(decimal.RequireFromString(it.Amount))
	}
	return sum
}
