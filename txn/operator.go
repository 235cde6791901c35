package txn

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
)

// OpsID is the reserved edge node and provider of operator entries
// (wire.OpsNode, wire.OpsProvider): only a record of (OpsID, OpsID) may
// carry an operator type, and it may carry nothing else.
const OpsID = "_tally"

// Meta keys of the operator types (docs/ledger-format.md, "Operator entries").
const (
	MetaException         = "exception"          // correction: the exception id it resolves
	MetaProposedBy        = "proposed_by"        // correction: the maker
	MetaApprovedBy        = "approved_by"        // correction: the checkers, comma-separated
	MetaApprovalsRequired = "approvals_required" // correction: decimal count, as configured when proposed
	MetaReason            = "reason"             // correction: free text
	MetaLines             = "lines"              // correction: party=amount;party=amount
	MetaSource            = "source"             // fx_rate: where the rate comes from
	MetaPair              = "pair"               // fx_rate: BASE/QUOTE
	MetaRate              = "rate"               // fx_rate: quote units per 1 base
	MetaPostedBy          = "posted_by"          // fx_rate: who posted it
	MetaRun               = "run"                // payout_run: the run's id, RUN-<seq, 6 digits>
	MetaRunHash           = "run_hash"           // payout_run: hex SHA-256 of the signed run record's canonical JSON
	MetaStatements        = "statements"         // payout_run: hex SHA-256 of each statement paid, ";"-joined, each once
	MetaCreatedBy         = "created_by"         // payout_run: who created the run
	MetaTotals            = "totals"             // payout_run: CUR=sum;CUR=sum, by currency code
)

// MaxApprovals bounds approvals_required and the number of approvers.
const MaxApprovals = 16

// FXRateDecimals is the most decimals an fx_rate's rate may have.
const FXRateDecimals = 12

// CorrectionMeta is what a correction's meta says, parsed strictly.
type CorrectionMeta struct {
	Exception         string
	ProposedBy        string
	ApprovedBy        []string
	ApprovalsRequired int
	Reason            string
	Lines             []money.Share // in the proposal's order; each party once
}

// Net is the sum of the lines: the correction entry's net.
func (c CorrectionMeta) Net() decimal.Decimal { return money.Sum(c.Lines) }

// FXRateMeta is what an fx_rate's meta says, parsed strictly.
type FXRateMeta struct {
	Source   string
	Base     money.Currency
	Quote    money.Currency
	Rate     decimal.Decimal // quote units per 1 base, > 0
	PostedBy string
}

// ParseCorrection checks a correction transaction completely — the meta
// keys present and nothing else, lines in canonical form in the currency's
// exponent with each party once, amount == |Σ lines|, approvers distinct,
// none the proposer, at least approvals_required ≥ 1 of them, the id
// adj-<exception>-<n>, no parent — and returns its meta. The settle engine,
// store entry validation and `tally verify` all use it, so the three agree.
func ParseCorrection(t Tx) (CorrectionMeta, error) {
	var c CorrectionMeta
	if t.Type != Correction {
		return c, fmt.Errorf("type is %q, not %q", t.Type, Correction)
	}
	if err := operatorCommon(t, MetaException, MetaProposedBy, MetaApprovedBy, MetaApprovalsRequired, MetaReason, MetaLines); err != nil {
		return c, err
	}
	m := t.Meta
	c.Exception, c.ProposedBy, c.Reason = m[MetaException], m[MetaProposedBy], m[MetaReason]
	for _, f := range []struct{ k, v string }{{MetaException, c.Exception}, {MetaProposedBy, c.ProposedBy}} {
		if err := identity(f.k, f.v); err != nil {
			return c, err
		}
	}
	if strings.TrimSpace(c.Reason) == "" || !printable(c.Reason) {
		return c, fmt.Errorf("meta.reason must be non-empty printable text")
	}
	n, ok := strings.CutPrefix(t.ID, "adj-"+c.Exception+"-")
	if !ok || !canonicalCount(n) {
		return c, fmt.Errorf("id %q is not adj-<exception>-<n> for exception %q", clip(t.ID), clip(c.Exception))
	}
	req := m[MetaApprovalsRequired]
	if !canonicalCount(req) {
		return c, fmt.Errorf("meta.approvals_required %q is not a decimal count", clip(req))
	}
	c.ApprovalsRequired, _ = strconv.Atoi(req)
	if c.ApprovalsRequired < 1 || c.ApprovalsRequired > MaxApprovals {
		return c, fmt.Errorf("meta.approvals_required is %d, must be 1-%d", c.ApprovalsRequired, MaxApprovals)
	}
	c.ApprovedBy = strings.Split(m[MetaApprovedBy], ",")
	if len(c.ApprovedBy) > MaxApprovals {
		return c, fmt.Errorf("meta.approved_by lists %d approvers, at most %d", len(c.ApprovedBy), MaxApprovals)
	}
	for i, a := range c.ApprovedBy {
		if err := identity("approved_by", a); err != nil {
			return c, err
		}
		if a == c.ProposedBy {
			return c, fmt.Errorf("meta.approved_by: %q proposed the correction and cannot approve it", clip(a))
		}
		if slices.Contains(c.ApprovedBy[:i], a) {
			return c, fmt.Errorf("meta.approved_by lists %q twice", clip(a))
		}
	}
	if len(c.ApprovedBy) < c.ApprovalsRequired {
		return c, fmt.Errorf("meta.approved_by has %d approvers, %d required", len(c.ApprovedBy), c.ApprovalsRequired)
	}
	lines, err := ParseLines(m[MetaLines], t.Currency)
	if err != nil {
		return c, err
	}
	c.Lines = lines
	if net := c.Net(); !net.Abs().Equal(t.Amount) {
		return c, fmt.Errorf("amount %s is not |Σ lines| = %s", t.Currency.Format(t.Amount), t.Currency.Format(net.Abs()))
	}
	return c, nil
}

// ParseLines parses a correction's meta.lines strictly: party=amount joined
// by ";", amounts with exactly the currency's decimals and a leading "-" when
// negative, each party once. Only the form FormatLines writes is accepted.
func ParseLines(s string, cur money.Currency) ([]money.Share, error) {
	if s == "" {
		return nil, fmt.Errorf("meta.lines is empty")
	}
	parts := strings.Split(s, ";")
	if len(parts) > MaxLines {
		return nil, fmt.Errorf("meta.lines has %d lines, at most %d", len(parts), MaxLines)
	}
	out := make([]money.Share, 0, len(parts))
	for i, p := range parts {
		party, amt, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("meta.lines line %d %q is not party=amount", i+1, clip(p))
		}
		if err := Party(party); err != nil {
			return nil, fmt.Errorf("meta.lines line %d: %v", i+1, err)
		}
		for _, o := range out {
			if o.Party == party {
				return nil, fmt.Errorf("meta.lines names party %q twice", clip(party))
			}
		}
		digits := strings.TrimPrefix(amt, "-")
		d, err := decimal.NewFromString(digits)
		if !plainDecimal(digits) || err != nil || len(digits) > AmountChars {
			return nil, fmt.Errorf("meta.lines line %d amount %q is not a plain decimal", i+1, clip(amt))
		}
		if digits != amt {
			d = d.Neg()
		}
		if cur.Format(d) != amt || (d.IsZero() && digits != amt) {
			return nil, fmt.Errorf("meta.lines line %d amount %q is not written with exactly %d decimals for %s (want %q)", i+1, clip(amt), cur.Exponent, cur.Code, cur.Format(d))
		}
		out = append(out, money.Share{Party: party, Amount: d})
	}
	return out, nil
}

// MaxLines bounds a correction's lines.
const MaxLines = 64

// FormatLines writes lines the one way ParseLines accepts.
func FormatLines(lines []money.Share, cur money.Currency) string {
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(l.Party)
		b.WriteByte('=')
		b.WriteString(cur.Format(l.Amount))
	}
	return b.String()
}

// Party checks a correction line's party: 1-128 printable characters
// without "=", ";", "," or surrounding spaces.
func Party(p string) error {
	if p == "" || len(p) > 128 || !printable(p) || strings.ContainsAny(p, "=;,") || strings.TrimSpace(p) != p {
		return fmt.Errorf("party %q must be 1-128 printable characters without = ; , or surrounding spaces", clip(p))
	}
	return nil
}

// PayoutRunMeta is what a payout_run's meta says, parsed strictly.
type PayoutRunMeta struct {
	Run        string   // RUN-<seq, 6 digits>
	Seq        int      // the run's sequence number, ≥ 1
	RunHash    string   // 64 lowercase hex digits
	Statements []string // 64 lowercase hex digits each, in the run's order, each once
	CreatedBy  string
	ApprovedBy string
	Totals     []PayoutTotal // ascending by currency code, each once
}

// PayoutTotal is what a payout run pays in one currency.
type PayoutTotal struct {
	Currency money.Currency
	Sum      decimal.Decimal // > 0
}

// MaxPayoutStatements bounds the statements one payout_run names (each
// takes 65 bytes of meta; the engine's limits allow 1 MiB).
const MaxPayoutStatements = 10000

// PayoutRunID is the id of a payout_run: payout-<run id>.
func PayoutRunID(run string) string { return "payout-" + run }

// ParsePayoutRun checks a payout_run transaction completely — meta run,
// run_hash, statements, created_by, approved_by and totals present and
// nothing else; run RUN-<seq, 6 digits> with seq ≥ 1 and the id
// payout-<run>; run_hash and every statement 64 lowercase hex digits, the
// statements ";"-joined, at least one, each once; created_by and
// approved_by identities that differ (maker-checker); totals CUR=sum joined
// by ";" in ascending currency order, each currency once, every sum > 0
// written with exactly the currency's decimals, and currency == the first
// of them; amount 0; occurred_at a whole second (the run's created_at); no
// parent — and returns its meta. A payout run moves no balance: statements
// are computed from the ledger, a payout is an instruction to the bank.
func ParsePayoutRun(t Tx) (PayoutRunMeta, error) {
	var p PayoutRunMeta
	if t.Type != PayoutRun {
		return p, fmt.Errorf("type is %q, not %q", t.Type, PayoutRun)
	}
	if err := operatorCommon(t, MetaRun, MetaRunHash, MetaStatements, MetaCreatedBy, MetaApprovedBy, MetaTotals); err != nil {
		return p, err
	}
	m := t.Meta
	p.Run, p.RunHash, p.CreatedBy, p.ApprovedBy = m[MetaRun], m[MetaRunHash], m[MetaCreatedBy], m[MetaApprovedBy]
	if n, ok := strings.CutPrefix(p.Run, "RUN-"); ok && len(n) <= 9 && canonicalCount(strings.TrimLeft(n, "0")) {
		p.Seq, _ = strconv.Atoi(n)
	}
	if p.Seq < 1 || fmt.Sprintf("RUN-%06d", p.Seq) != p.Run {
		return p, fmt.Errorf("meta.run %q is not RUN-<seq ≥ 1, at least 6 digits>", clip(p.Run))
	}
	if want := PayoutRunID(p.Run); t.ID != want {
		return p, fmt.Errorf("id %q is not %q", clip(t.ID), want)
	}
	if !hexHash(p.RunHash) {
		return p, fmt.Errorf("meta.run_hash %q is not 64 lowercase hex digits", clip(p.RunHash))
	}
	for _, f := range []struct{ k, v string }{{MetaCreatedBy, p.CreatedBy}, {MetaApprovedBy, p.ApprovedBy}} {
		if err := identity(f.k, f.v); err != nil {
			return p, err
		}
	}
	if p.CreatedBy == p.ApprovedBy {
		return p, fmt.Errorf("meta.approved_by: %q created the run and cannot approve it", clip(p.ApprovedBy))
	}
	sts, err := ParseStatementHashes(m[MetaStatements])
	if err != nil {
		return p, err
	}
	p.Statements = sts
	if p.Totals, err = parseTotals(m[MetaTotals]); err != nil {
		return p, err
	}
	if t.Currency.Code != p.Totals[0].Currency.Code {
		return p, fmt.Errorf("currency %s is not the first of meta.totals, %s", t.Currency.Code, p.Totals[0].Currency.Code)
	}
	if !t.Amount.IsZero() {
		return p, fmt.Errorf("amount is %s; a payout_run moves no balance, amount must be 0", t.Amount)
	}
	if t.OccurredAt.Nanosecond() != 0 {
		return p, fmt.Errorf("occurred_at %s is not a whole second (a run's created_at)", t.OccurredAt.Format(time.RFC3339Nano))
	}
	return p, nil
}

// ParseStatementHashes parses a payout_run's meta.statements strictly: 64
// lowercase hex digits each, joined by ";", at least one, each once.
func ParseStatementHashes(s string) ([]string, error) {
	if s == "" {
		return nil, fmt.Errorf("meta.statements is empty")
	}
	parts := strings.Split(s, ";")
	if len(parts) > MaxPayoutStatements {
		return nil, fmt.Errorf("meta.statements names %d statements, at most %d", len(parts), MaxPayoutStatements)
	}
	seen := make(map[string]bool, len(parts))
	for i, h := range parts {
		if !hexHash(h) {
			return nil, fmt.Errorf("meta.statements item %d %q is not 64 lowercase hex digits", i+1, clip(h))
		}
		if seen[h] {
			return nil, fmt.Errorf("meta.statements names %s twice", h)
		}
		seen[h] = true
	}
	return parts, nil
}

// parseTotals parses a payout_run's meta.totals: CUR=sum joined by ";",
// currencies known and ascending (so each once), sums > 0 with exactly the
// currency's decimals.
func parseTotals(s string) ([]PayoutTotal, error) {
	if s == "" {
		return nil, fmt.Errorf("meta.totals is empty")
	}
	parts := strings.Split(s, ";")
	if len(parts) > MaxLines {
		return nil, fmt.Errorf("meta.totals has %d currencies, at most %d", len(parts), MaxLines)
	}
	out := make([]PayoutTotal, 0, len(parts))
	for i, p := range parts {
		code, amt, ok := strings.Cut(p, "=")
		cur, known := money.Lookup(code)
		if !ok || !known {
			return nil, fmt.Errorf("meta.totals item %d %q is not CUR=sum of a known currency", i+1, clip(p))
		}
		if i > 0 && code <= out[i-1].Currency.Code {
			return nil, fmt.Errorf("meta.totals: %s after %s; currencies are ascending, each once", code, out[i-1].Currency.Code)
		}
		d, err := decimal.NewFromString(amt)
		if !plainDecimal(amt) || err != nil || len(amt) > AmountChars || cur.Format(d) != amt || !d.IsPositive() {
			return nil, fmt.Errorf("meta.totals %s sum %q is not a decimal > 0 with exactly %d decimals", code, clip(amt), cur.Exponent)
		}
		out = append(out, PayoutTotal{Currency: cur, Sum: d})
	}
	return out, nil
}

// FormatTotals writes a payout_run's totals the one way parseTotals accepts
// (given in ascending currency order).
func FormatTotals(totals []PayoutTotal) string {
	var b strings.Builder
	for i, t := range totals {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(t.Currency.Code)
		b.WriteByte('=')
		b.WriteString(t.Currency.Format(t.Sum))
	}
	return b.String()
}

func hexHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// ParseFXRate checks an fx_rate transaction completely — meta source,
// pair, rate and posted_by present and nothing else, pair BASE/QUOTE of two
// different known currencies with currency == BASE, rate a plain decimal > 0
// with at most FXRateDecimals decimals, amount 0, occurred_at a whole second,
// the id fx-<source>-<BASE><QUOTE>-<occurred_at unix seconds>, no parent —
// and returns its meta.
func ParseFXRate(t Tx) (FXRateMeta, error) {
	var f FXRateMeta
	if t.Type != FXRate {
		return f, fmt.Errorf("type is %q, not %q", t.Type, FXRate)
	}
	if err := operatorCommon(t, MetaSource, MetaPair, MetaRate, MetaPostedBy); err != nil {
		return f, err
	}
	m := t.Meta
	f.Source, f.PostedBy = m[MetaSource], m[MetaPostedBy]
	if !sourceToken(f.Source) {
		return f, fmt.Errorf("meta.source %q must be 1-64 characters of a-z A-Z 0-9 _", clip(f.Source))
	}
	if err := identity("posted_by", f.PostedBy); err != nil {
		return f, err
	}
	base, quote, ok := strings.Cut(m[MetaPair], "/")
	bc, bok := money.Lookup(base)
	qc, qok := money.Lookup(quote)
	if !ok || !bok || !qok || base == quote {
		return f, fmt.Errorf("meta.pair %q is not BASE/QUOTE of two different known currencies", clip(m[MetaPair]))
	}
	if bc.Code != t.Currency.Code {
		return f, fmt.Errorf("currency %s is not the pair's base %s", t.Currency.Code, bc.Code)
	}
	f.Base, f.Quote = bc, qc
	rate, err := ParseRate(m[MetaRate])
	if err != nil {
		return f, err
	}
	f.Rate = rate
	if !t.Amount.IsZero() {
		return f, fmt.Errorf("amount is %s; an fx_rate moves no money, amount must be 0", t.Amount)
	}
	if t.OccurredAt.Nanosecond() != 0 {
		return f, fmt.Errorf("occurred_at %s is not a whole second (as_of is in unix seconds)", t.OccurredAt.Format(time.RFC3339Nano))
	}
	if want := FXRateID(f.Source, bc.Code, qc.Code, t.OccurredAt); t.ID != want {
		return f, fmt.Errorf("id %q is not %q", clip(t.ID), want)
	}
	return f, nil
}

// FXRateID is the id of an fx_rate: fx-<source>-<BASE><QUOTE>-<as_of unix seconds>.
func FXRateID(source, base, quote string, asOf time.Time) string {
	return "fx-" + source + "-" + base + quote + "-" + strconv.FormatInt(asOf.Unix(), 10)
}

// ParseRate parses an fx_rate's rate: a plain decimal (digits, at most one
// point, no sign, no leading zero before another digit), > 0, at most
// FXRateDecimals decimals.
func ParseRate(s string) (decimal.Decimal, error) {
	intPart, frac, _ := strings.Cut(s, ".")
	if !plainDecimal(s) || len(s) > AmountChars || (len(intPart) > 1 && intPart[0] == '0') {
		return decimal.Decimal{}, fmt.Errorf("meta.rate %q is not a plain decimal such as \"1.0842\"", clip(s))
	}
	if len(frac) > FXRateDecimals {
		return decimal.Decimal{}, fmt.Errorf("meta.rate %q has %d decimals, at most %d", clip(s), len(frac), FXRateDecimals)
	}
	d, err := decimal.NewFromString(s)
	if err != nil || !d.IsPositive() {
		return decimal.Decimal{}, fmt.Errorf("meta.rate %q must be a decimal > 0", clip(s))
	}
	return d, nil
}

// operatorCommon checks what the operator types share: exactly the given
// meta keys, and none of the provider attributes (parent, round, game, ...).
func operatorCommon(t Tx, keys ...string) error {
	for _, k := range keys {
		if _, ok := t.Meta[k]; !ok {
			return fmt.Errorf("%s needs meta.%s", t.Type, k)
		}
	}
	if len(t.Meta) != len(keys) {
		for k := range t.Meta {
			if !slices.Contains(keys, k) {
				return fmt.Errorf("%s has meta.%s; its meta keys are %s", t.Type, clip(k), strings.Join(keys, ", "))
			}
		}
	}
	for _, f := range [...]struct{ name, v string }{{"parent", t.Parent}, {"round", t.Round}, {"game", t.Game}, {"category", t.Category}, {"jurisdiction", t.Jurisdiction}, {"brand", t.Brand}, {"affiliate", t.Affiliate}, {"player", t.Player}} {
		if f.v != "" {
			return fmt.Errorf("%s cannot have %s", t.Type, f.name)
		}
	}
	return nil
}

// identity checks a person or id named in meta: 1-128 printable characters,
// no comma (approved_by is comma-separated), no surrounding spaces.
func identity(what, s string) error {
	if s == "" || len(s) > 128 || !printable(s) || strings.Contains(s, ",") || strings.TrimSpace(s) != s {
		return fmt.Errorf("meta.%s %q must be 1-128 printable characters without a comma or surrounding spaces", what, clip(s))
	}
	return nil
}

// canonicalCount reports whether s is a decimal count without leading zeros.
func canonicalCount(s string) bool {
	if s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func sourceToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}
