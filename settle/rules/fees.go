package rules

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

// Period fees: a party's fee on a period's basis (GGR of a month, say) with
// tiers, a minimum fee and, optionally, negative bases carried into the next
// period. Unlike splits they are not per transaction: the caller sums the
// basis over the period and calls FeeContract.Compute once per period. The
// computation is pure and exact; see docs/fees.md.

// TierMode says how tiers turn a basis into a fee.
type TierMode string

const (
	// Marginal applies each tier's percent to the part of the basis inside
	// that tier ("brackets"): 12% of the first 100,000, 10% of the next ...
	Marginal TierMode = "marginal"
	// Retroactive applies the percent of the tier the whole basis falls in to
	// the whole basis. The fee can drop when the basis grows (the cliff).
	Retroactive TierMode = "retroactive"
)

// Valid reports whether m is a known tier mode.
func (m TierMode) Valid() bool { return m == Marginal || m == Retroactive }

// Fee bases and periods a fee contract may name.
const (
	BasisGGR    = "ggr"
	BasisNGR    = "ngr"      // GGR − bonus costs − jackpot contributions − taxes
	BasisStakes = "turnover" // stakes: bets net of their rollbacks and refunds
	// BasisDeposits is the players' deposits net of their reversals.
	BasisDeposits = "deposits"
	// BasisCPA is a flat amount per qualifying first deposit (FeeContract.CPA):
	// the basis is the count of qualifying players × the amount; no tiers.
	BasisCPA    = "cpa"
	PeriodDay   = "day"
	PeriodWeek  = "week"
	PeriodMonth = "month"
)

// When a carried negative base is dropped (FeeContract.CarryReset).
const (
	CarryResetNever   = ""
	CarryResetQuarter = "quarter" // at the first period starting in a new calendar quarter
	CarryResetYear    = "year"    // at the first period starting in a new calendar year
)

// ResetsAt reports whether a negative base carried out of the period
// starting at prev is dropped instead of carried into the period starting at
// start: the contract resets and start is in another calendar quarter or
// year than prev. Both are the periods' starts in the contract's calendar.
func (c FeeContract) ResetsAt(prev, start time.Time) bool {
	switch c.CarryReset {
	case CarryResetYear:
		return prev.Year() != start.Year()
	case CarryResetQuarter:
		return prev.Year() != start.Year() || (int(prev.Month())-1)/3 != (int(start.Month())-1)/3
	}
	return false
}

// Limits of the fee language.
const (
	MaxTiers      = 64    // tiers in one fee
	MaxFees       = 1000  // fee blocks in one ruleset
	MaxWithinDays = 36600 // a CPA's qualification window, in days
)

// CPA is the qualification rule and amount of a cost-per-acquisition fee: a
// player qualifies once, with its first deposit (the earliest deposit of the
// player in the ledger, by event time, in any currency) when that deposit is
// selected by the fee's conditions, its amount net of its reversals is at
// least MinDeposit and, with WithinDays > 0, it occurred at most WithinDays
// × 24 hours after the player's first transaction of any type (first seen).
//
// With ClawbackDays > 0, a CPA already paid is clawed back when the first
// deposit is later reversed (refunds and rollbacks occurring at most
// ClawbackDays × 24 hours after the deposit) so far that it no longer
// reaches the minimum; a reversal later than that window never affects the
// CPA, neither its qualification nor a clawback.
type CPA struct {
	Amount       decimal.Decimal // paid per qualifying player, in the fee's currency
	MinDeposit   decimal.Decimal // the first deposit's minimum, in the fee's currency; 0: any
	WithinDays   int             // 0: no window
	ClawbackDays int             // 0: no clawback (and every reversal counts)
}

// Qualifies applies the rule to a first deposit: its amount net of
// reversals, when it occurred and when the player was first seen.
func (c CPA) Qualifies(net decimal.Decimal, at, firstSeen time.Time) bool {
	if !c.NetQualifies(net) {
		return false
	}
	return c.WithinDays == 0 || !at.After(firstSeen.Add(time.Duration(c.WithinDays)*24*time.Hour))
}

// NetQualifies is the amount part of the rule: a first deposit net of its
// reversals that is positive and at least MinDeposit.
func (c CPA) NetQualifies(net decimal.Decimal) bool {
	return net.IsPositive() && !net.LessThan(c.MinDeposit)
}

// Counts reports whether a reversal of a first deposit made at deposit,
// occurring at reversal, counts against the deposit: always without a
// clawback window, else when it occurred at most ClawbackDays × 24 hours
// after the deposit (bound inclusive).
func (c CPA) Counts(deposit, reversal time.Time) bool {
	return c.ClawbackDays == 0 || !reversal.After(deposit.Add(time.Duration(c.ClawbackDays)*24*time.Hour))
}

// ErrFeeInput means Compute was given a basis or carry it cannot use: more
// decimals than the currency, a positive carry, or a carry on a contract that
// does not carry negative bases.
var ErrFeeInput = errors.New("invalid fee input")

// Tier is one bracket. Upper bounds are inclusive: a basis of exactly UpTo is
// in this tier. A tier's lower bound is the previous tier's UpTo (exclusive),
// or 0 for the first tier.
type Tier struct {
	UpTo    *decimal.Decimal // nil: no upper bound (only the last tier)
	Percent decimal.Decimal  // 0 to 100
}

// FeeContract is one fee block: who is paid, on what basis, per which period,
// and how.
type FeeContract struct {
	Ruleset       string // the ruleset (version) the fee block was declared in; "" when built in code
	Name          string
	Party         string
	Basis         string // "ggr", "ngr", "turnover", "deposits" or "cpa"
	Period        string // "day", "week" or "month"
	Currency      money.Currency
	Rounding      money.Rounding
	Mode          TierMode
	Tiers         []Tier
	MinimumFee    decimal.Decimal  // 0: no minimum
	MaximumFee    *decimal.Decimal // nil: no cap; else the computed fee is capped here (before the minimum)
	CarryNegative bool             // a negative base is netted against the next period's basis
	// CarryReset drops a carried negative base at a calendar boundary:
	// "" (never), CarryResetQuarter or CarryResetYear. Only with CarryNegative.
	CarryReset string
	// CPA is the amount and qualification rule of a basis "cpa" fee; nil
	// for every other basis.
	CPA *CPA

	// Conditions select the transactions whose basis counts, like a rule's:
	// a list that is given must contain the transaction's value, an absent
	// list matches anything. The fee's Currency is always a condition.
	Providers, Games, Categories, Jurisdictions, Brands []string
	// Affiliates attributes transactions to partners: a transaction counts
	// when its affiliate field is in the list.
	Affiliates []string
	// Meta selects on player attributes the transaction carries: for each
	// key, its meta value must be present and in the list (funds = ["cash"]).
	Meta map[string][]string
}

// Selects reports whether a transaction from provider counts in the fee's
// basis: same currency and every given condition list holds its value.
func (c FeeContract) Selects(provider string, tx txn.Tx) bool {
	return tx.Currency.Code == c.Currency.Code && c.SelectsAnyCurrency(provider, tx)
}

// SelectsAnyCurrency is Selects without the currency condition: for the
// fees of a party settled in the fee's currency, whose basis counts entries
// of other currencies converted (settle/statement).
func (c FeeContract) SelectsAnyCurrency(provider string, tx txn.Tx) bool {
	in := func(set []string, s string) bool { return len(set) == 0 || slices.Contains(set, s) }
	for k, vals := range c.Meta {
		if v, ok := tx.Meta[k]; !ok || !slices.Contains(vals, v) {
			return false
		}
	}
	return in(c.Providers, provider) && in(c.Games, tx.Game) &&
		in(c.Categories, tx.Category) && in(c.Jurisdictions, tx.Jurisdiction) && in(c.Brands, tx.Brand) &&
		in(c.Affiliates, tx.Affiliate)
}

// FeeLine is one tier actually applied, as a statement prints it: Percent of
// the slice (From, To] of the base, Base = To − From, Exact = Base × Percent /
// 100 unrounded. Tier is the 1-based tier number (Tiers[Tier-1]). A retroactive
// fee has one line covering (0, base].
type FeeLine struct {
	Tier     int
	From, To decimal.Decimal
	Percent  decimal.Decimal
	Base     decimal.Decimal
	Exact    decimal.Decimal
}

// FeeResult is one period's fee.
type FeeResult struct {
	Basis     decimal.Decimal // the period's basis as given (may be negative)
	CarriedIn decimal.Decimal // negative base carried from the previous period, ≤ 0
	Base      decimal.Decimal // Basis + CarriedIn: what the tiers apply to when positive
	Lines     []FeeLine       // tiers applied; none when Base ≤ 0
	Exact     decimal.Decimal // Σ Lines[i].Exact, unrounded
	Computed  decimal.Decimal // Exact rounded once with the contract's rounding
	Capped    decimal.Decimal // cap line: max(0, Computed − MaximumFee), ≥ 0
	TopUp     decimal.Decimal // minimum-fee top-up line: max(0, MinimumFee − (Computed − Capped))
	Fee       decimal.Decimal // Computed − Capped + TopUp
	CarryOut  decimal.Decimal // Base when negative and the contract carries, else 0; ≤ 0
}

// Validate checks the contract: known basis, period, currency, rounding and
// mode; 1 to MaxTiers tiers with strictly ascending positive upper bounds,
// only the last one unbounded; percents from 0 to 100; a minimum fee ≥ 0 that
// fits the currency. The error wraps a *ParseError (errors.Is ErrInvalid).
func (c FeeContract) Validate() error {
	issues := c.issues(nil)
	if len(issues) == 0 {
		return nil
	}
	path := fmt.Sprintf("fee %q", c.Name)
	if c.Ruleset != "" {
		path = fmt.Sprintf("ruleset %q %s", c.Ruleset, path)
	}
	ps := make([]Problem, len(issues))
	for i, is := range issues {
		pos := path
		if is.tier >= 0 {
			pos = fmt.Sprintf("%s tier %d", path, is.tier+1)
		}
		ps[i] = Problem{Pos: pos, Key: is.key, Msg: is.msg, Hint: is.hint}
	}
	return fmt.Errorf("fee contract: %w", &ParseError{Problems: ps})
}

// Compute computes one period's fee. basis is the period's basis (GGR, which
// may be negative); carriedIn is the previous period's CarryOut (≤ 0, and
// non-zero only if the contract carries negative bases). Both must fit the
// currency.
//
// base = basis + carriedIn. When base > 0 the tiers apply to it (Mode), the
// exact total is rounded once at the currency's exponent with Rounding
// (Computed); when base ≤ 0 Computed is 0 and, if CarryNegative, a negative
// base is carried out. A cap (MaximumFee) then cuts Computed down to it
// (Capped), the minimum fee tops it up (TopUp), and Fee = Computed − Capped +
// TopUp.
func (c FeeContract) Compute(basis, carriedIn decimal.Decimal) (FeeResult, error) {
	if err := c.Validate(); err != nil {
		return FeeResult{}, err
	}
	code := c.Currency.Code
	switch {
	case !c.Currency.Fits(basis):
		return FeeResult{}, fmt.Errorf("fee %q: basis %s has more than %d decimals for %s: %w", c.Name, basis, c.Currency.Exponent, code, ErrFeeInput)
	case !c.Currency.Fits(carriedIn):
		return FeeResult{}, fmt.Errorf("fee %q: carried-in %s has more than %d decimals for %s: %w", c.Name, carriedIn, c.Currency.Exponent, code, ErrFeeInput)
	case carriedIn.IsPositive():
		return FeeResult{}, fmt.Errorf("fee %q: carried-in %s is positive; only a negative base is carried: %w", c.Name, carriedIn, ErrFeeInput)
	case carriedIn.IsNegative() && !c.CarryNegative:
		return FeeResult{}, fmt.Errorf("fee %q: carried-in %s but the contract does not carry negative bases: %w", c.Name, carriedIn, ErrFeeInput)
	}
	base := basis.Add(carriedIn)
	r := FeeResult{Basis: basis, CarriedIn: carriedIn, Base: base, Exact: decimal.Zero, CarryOut: decimal.Zero}
	switch {
	case c.Basis == BasisCPA:
		if base.IsPositive() {
			r.Exact = base // count × amount: the fee itself, no tiers
		}
	case base.IsPositive() && c.Mode == Marginal:
		lower := decimal.Zero
		for i, t := range c.Tiers {
			upper := base
			if t.UpTo != nil && t.UpTo.LessThan(base) {
				upper = *t.UpTo
			}
			r.Lines = append(r.Lines, line(i, lower, upper, t.Percent))
			if t.UpTo == nil || !base.GreaterThan(*t.UpTo) {
				break
			}
			lower = *t.UpTo
		}
	case base.IsPositive(): // Retroactive
		for i, t := range c.Tiers {
			if t.UpTo == nil || base.LessThanOrEqual(*t.UpTo) {
				r.Lines = append(r.Lines, line(i, decimal.Zero, base, t.Percent))
				break
			}
		}
	case base.IsNegative() && c.CarryNegative:
		r.CarryOut = base
	}
	for _, l := range r.Lines {
		r.Exact = r.Exact.Add(l.Exact)
	}
	r.Computed = money.Round(r.Exact, c.Currency.Exponent, c.Rounding)
	r.Capped, r.TopUp = decimal.Zero, decimal.Zero
	if c.MaximumFee != nil && r.Computed.GreaterThan(*c.MaximumFee) {
		r.Capped = r.Computed.Sub(*c.MaximumFee)
	}
	if net := r.Computed.Sub(r.Capped); net.LessThan(c.MinimumFee) {
		r.TopUp = c.MinimumFee.Sub(net)
	}
	r.Fee = r.Computed.Sub(r.Capped).Add(r.TopUp)
	return r, nil
}

func line(i int, from, to, percent decimal.Decimal) FeeLine {
	part := to.Sub(from)
	return FeeLine{Tier: i + 1, From: from, To: to, Percent: percent, Base: part, Exact: part.Mul(percent).Shift(-2)}
}

// ComputeCPA computes one period of a basis "cpa" fee for the number of
// players who qualified in it: basis = qualified × CPA.Amount, then the cap
// and minimum as for any fee.
func (c FeeContract) ComputeCPA(qualified int) (FeeResult, error) {
	if c.Basis != BasisCPA || c.CPA == nil {
		return FeeResult{}, fmt.Errorf("fee %q: basis %q is not cpa: %w", c.Name, c.Basis, ErrFeeInput)
	}
	if qualified < 0 {
		return FeeResult{}, fmt.Errorf("fee %q: %d qualified players: %w", c.Name, qualified, ErrFeeInput)
	}
	return c.Compute(c.CPA.Amount.Mul(decimal.NewFromInt(int64(qualified))), decimal.Zero)
}

// ComputePeriods computes consecutive periods, oldest first, each period's
// CarryOut becoming the next one's carried-in. The first period carries
// nothing in.
func (c FeeContract) ComputePeriods(bases []decimal.Decimal) ([]FeeResult, error) {
	out := make([]FeeResult, 0, len(bases))
	carry := decimal.Zero
	for i, b := range bases {
		r, err := c.Compute(b, carry)
		if err != nil {
			return nil, fmt.Errorf("period %d: %w", i+1, err)
		}
		out = append(out, r)
		carry = r.CarryOut
	}
	return out, nil
}

// checkMeta validates meta conditions (key → accepted values): printable
// keys, at least one value each, lists sorted and deduplicated; nil when
// there are none.
func checkMeta(c *checker, pos string, m map[string][]string) map[string][]string {
	if len(m) == 0 {
		return nil
	}
	if len(m) > MaxMatch {
		c.add(pos, "meta", fmt.Sprintf("%d keys, more than %d", len(m), MaxMatch), "split the contract")
	}
	out := make(map[string][]string, len(m))
	for k, vals := range m {
		if msg := badText(k); msg != "" {
			c.add(pos, "meta", fmt.Sprintf("key %q %s", k, msg), "name a meta key the transactions carry, such as funds")
		}
		if len(vals) == 0 {
			c.add(pos, "meta", fmt.Sprintf("key %q has no value", k), `list the values that match, such as funds = ["bonus"]`)
		}
		out[k] = checkList(c, pos, "meta."+k, vals, nil)
	}
	return out
}

// feeIssue is one problem of a contract: key is the attribute at fault, tier
// the 0-based tier it belongs to (-1: the contract).
type feeIssue struct {
	key  string
	tier int
	msg  string
	hint string
}

// Keys of issues the HCL decoder already reported (a decimal that did not
// parse), so the semantic checks skip them.
func badTierKey(i int, key string) string { return fmt.Sprintf("tier %d %s", i, key) }

func (c FeeContract) issues(bad map[string]bool) []feeIssue {
	var out []feeIssue
	add := func(key string, tier int, msg, hint string) {
		out = append(out, feeIssue{key: key, tier: tier, msg: msg, hint: hint})
	}
	if msg := badText(c.Name); msg != "" {
		add("fee", -1, fmt.Sprintf("name %q %s", c.Name, msg), "use 1 to 128 printable characters")
	}
	switch msg := badText(c.Party); {
	case msg != "":
		add("party", -1, fmt.Sprintf("party %q %s", c.Party, msg), `name the party paid, such as "provider"`)
	case strings.Contains(c.Party, "${") || strings.Contains(c.Party, "%{"):
		add("party", -1, fmt.Sprintf("party %q is a reference", c.Party), `a fee contract names its party, such as party = "provider"`)
	}
	switch c.Basis {
	case BasisGGR, BasisNGR, BasisStakes, BasisDeposits, BasisCPA:
	default:
		add("basis", -1, fmt.Sprintf("unknown basis %q", c.Basis), `use basis = "ggr" (stakes − wins), "ngr" (GGR − bonus costs − jackpot contributions − taxes), "turnover" (stakes), "deposits" or "cpa" (a flat amount per qualifying first deposit)`)
	}
	cpa := c.Basis == BasisCPA
	switch c.Period {
	case PeriodDay, PeriodWeek, PeriodMonth:
	default:
		add("period", -1, fmt.Sprintf("unknown period %q", c.Period), `use "day", "week" or "month"`)
	}
	curOK := false
	if known, ok := money.Lookup(c.Currency.Code); !ok {
		add("currency", -1, fmt.Sprintf("%q is not a known ISO 4217 currency code", c.Currency.Code), `name the fee's currency, such as currency = "EUR"`)
	} else if known != c.Currency {
		add("currency", -1, fmt.Sprintf("%s has exponent %d, not %d", known.Code, known.Exponent, c.Currency.Exponent), "take the currency from money.Lookup")
	} else {
		curOK = true
	}
	if c.Rounding == "" {
		add("rounding", -1, "no rounding", `rounding is never implied: name one on the fee or its ruleset, such as rounding = "half_up"`)
	} else if !c.Rounding.Valid() {
		add("rounding", -1, fmt.Sprintf("unknown rounding %q (use %q, %q or %q)", c.Rounding, money.HalfUp, money.HalfEven, money.Down), "rounding is never implied: name one on the fee or its ruleset")
	}
	switch {
	case c.CarryReset != CarryResetNever && c.CarryReset != CarryResetQuarter && c.CarryReset != CarryResetYear:
		add("carry_reset", -1, fmt.Sprintf("unknown carry_reset %q", c.CarryReset), `use "quarter" or "year" (a carried negative base is dropped at the first period of a new calendar quarter or year), or leave it out: carried until used up`)
	case c.CarryReset != CarryResetNever && !c.CarryNegative:
		add("carry_reset", -1, fmt.Sprintf("carry_reset %q but carry_negative = false", c.CarryReset), "a reset only applies to a carried negative base: set carry_negative = true or remove carry_reset")
	}
	switch {
	case cpa && c.Mode != "":
		add("mode", -1, fmt.Sprintf("mode %q on a cpa fee", c.Mode), "a cpa fee pays a flat amount per qualifying player and has no tiers: remove mode")
	case !cpa && c.Mode == "":
		add("mode", -1, `the argument "mode" is required`, `use "marginal": each tier's percent on the part of the basis inside it, or "retroactive": the whole basis at the percent of the tier it falls in`)
	case !cpa && !c.Mode.Valid():
		add("mode", -1, fmt.Sprintf("unknown mode %q", c.Mode), `use "marginal": each tier's percent on the part of the basis inside it, or "retroactive": the whole basis at the percent of the tier it falls in`)
	}
	switch {
	case cpa && c.CPA == nil:
		add("cpa", -1, "basis cpa without a cpa block", `add cpa { amount = "50.00", min_deposit = "20.00" } (within_days optional)`)
	case !cpa && c.CPA != nil:
		add("cpa", -1, fmt.Sprintf("a cpa block on a %q fee", c.Basis), `set basis = "cpa", or remove the cpa block; a hybrid deal is a cpa fee and a revenue-share fee for the same party`)
	case cpa && c.CarryNegative:
		add("carry_negative", -1, "carry_negative = true on a cpa fee", "a cpa basis is never negative: write carry_negative = false")
	case cpa:
		a := c.CPA
		switch {
		case !bad["cpa.amount"] && !a.Amount.IsPositive():
			add("cpa", -1, fmt.Sprintf("amount %s is not positive", a.Amount), "the amount paid per qualifying player")
		case !bad["cpa.amount"] && curOK && !c.Currency.Fits(a.Amount):
			add("cpa", -1, fmt.Sprintf("amount %s has more decimals than %s allows (%d)", a.Amount, c.Currency.Code, c.Currency.Exponent), "amounts are of the fee's currency")
		}
		if !bad["cpa.min_deposit"] && curOK && !c.Currency.Fits(a.MinDeposit) {
			add("cpa", -1, fmt.Sprintf("min_deposit %s has more decimals than %s allows (%d)", a.MinDeposit, c.Currency.Code, c.Currency.Exponent), "amounts are of the fee's currency")
		}
		if a.WithinDays < 0 || a.WithinDays > MaxWithinDays {
			add("cpa", -1, fmt.Sprintf("within_days %d is not from 0 to %d", a.WithinDays, MaxWithinDays), `days from the player's first transaction, such as within_days = "30"`)
		}
		if a.ClawbackDays < 0 || a.ClawbackDays > MaxWithinDays {
			add("cpa", -1, fmt.Sprintf("clawback_days %d is not from 0 to %d", a.ClawbackDays, MaxWithinDays), `days after the first deposit in which its reversal claws the CPA back, such as clawback_days = "90"`)
		}
	}
	if m := c.MaximumFee; m != nil && !bad["maximum"] {
		switch {
		case m.IsNegative():
			add("maximum", -1, fmt.Sprintf("%s is negative", m), "remove maximum for no cap")
		case curOK && !c.Currency.Fits(*m):
			add("maximum", -1, fmt.Sprintf("%s has more decimals than %s allows (%d)", m, c.Currency.Code, c.Currency.Exponent), "round the cap to the currency's minor unit")
		case !bad["minimum"] && m.LessThan(c.MinimumFee):
			add("maximum", -1, fmt.Sprintf("maximum %s is below minimum %s", m, c.MinimumFee), "raise the maximum or lower the minimum")
		}
	}
	if !bad["minimum"] {
		switch {
		case c.MinimumFee.IsNegative():
			add("minimum", -1, fmt.Sprintf("%s is negative", c.MinimumFee), `write minimum = "0" for no minimum fee`)
		case curOK && !c.Currency.Fits(c.MinimumFee):
			add("minimum", -1, fmt.Sprintf("%s has more decimals than %s allows (%d)", c.MinimumFee, c.Currency.Code, c.Currency.Exponent), "round the minimum fee to the currency's minor unit")
		}
	}
	switch {
	case cpa && len(c.Tiers) > 0:
		add("tier", -1, "tiers on a cpa fee", "a cpa fee pays a flat amount per qualifying player: remove the tier blocks")
		return out
	case cpa:
		return out
	case len(c.Tiers) == 0:
		add("tier", -1, "fee has no tier", `add tier { percent = "10" } (a single unbounded tier is a flat percent)`)
	case len(c.Tiers) > MaxTiers:
		add("tier", -1, fmt.Sprintf("%d tiers, more than %d", len(c.Tiers), MaxTiers), "merge tiers")
	}
	if len(c.Tiers) > MaxTiers {
		return out
	}
	var prev *decimal.Decimal // the last valid upper bound seen
	for i, t := range c.Tiers {
		if !bad[badTierKey(i, "percent")] && (t.Percent.IsNegative() || t.Percent.GreaterThan(hundred)) {
			add("percent", i, fmt.Sprintf("%s is not between 0 and 100", t.Percent), "a tier's percent is of the basis inside it")
		}
		last := i == len(c.Tiers)-1
		if bad[badTierKey(i, "up_to")] {
			continue
		}
		if t.UpTo == nil {
			if !last {
				add("up_to", i, fmt.Sprintf("tier %d has no up_to but is not the last tier", i+1), `give it up_to = "<inclusive upper bound>", or move it last: only the last tier is unbounded`)
			}
			continue
		}
		u := *t.UpTo
		switch {
		case !u.IsPositive():
			add("up_to", i, fmt.Sprintf("%s is not positive", u), "an upper bound is above 0, the first tier's lower bound")
		case curOK && !c.Currency.Fits(u):
			add("up_to", i, fmt.Sprintf("%s has more decimals than %s allows (%d)", u, c.Currency.Code, c.Currency.Exponent), "bounds are amounts of the fee's currency")
		case prev != nil && !u.GreaterThan(*prev):
			add("up_to", i, fmt.Sprintf("%s is not above the previous tier's up_to %s", u, prev), "list tiers in ascending order of up_to")
		}
		if last {
			add("up_to", i, fmt.Sprintf("the last tier is bounded (up_to = %s): a basis above it would have no tier", u), `end with a tier without up_to, such as tier { percent = "8" }`)
		}
		prev = t.UpTo
	}
	return out
}

// HCL: ruleset "<name>" { fee "<name>" { ... } }.

// feeSrc is one fee block's body; its name and position come from the block.
type feeSrc struct {
	Party         string              `hcl:"party"`
	Basis         string              `hcl:"basis"`
	Period        string              `hcl:"period"`
	Currency      string              `hcl:"currency"`
	Rounding      string              `hcl:"rounding,optional"`
	Mode          string              `hcl:"mode,optional"`
	Minimum       string              `hcl:"minimum"`
	Maximum       *string             `hcl:"maximum,optional"`
	CarryNegative bool                `hcl:"carry_negative"`
	CarryReset    string              `hcl:"carry_reset,optional"`
	Providers     []string            `hcl:"providers,optional"`
	Games         []string            `hcl:"games,optional"`
	Categories    []string            `hcl:"categories,optional"`
	Jurisdictions []string            `hcl:"jurisdictions,optional"`
	Brands        []string            `hcl:"brands,optional"`
	Affiliates    []string            `hcl:"affiliates,optional"`
	Meta          map[string][]string `hcl:"meta,optional"`
	Tiers         []*tierSrc          `hcl:"tier,block"`
	CPA           []*cpaSrc           `hcl:"cpa,block"`

	PartyRange    hcl.Range `hcl:"party,attr_value_range"`
	BasisRange    hcl.Range `hcl:"basis,attr_value_range"`
	PeriodRange   hcl.Range `hcl:"period,attr_value_range"`
	CurrencyRange hcl.Range `hcl:"currency,attr_value_range"`
	RoundingRange hcl.Range `hcl:"rounding,attr_value_range"`
	ModeRange     hcl.Range `hcl:"mode,attr_value_range"`
	MinimumRange  hcl.Range `hcl:"minimum,attr_value_range"`
	MaximumRange  hcl.Range `hcl:"maximum,attr_value_range"`
	CarryRange    hcl.Range `hcl:"carry_negative,attr_value_range"`
	ResetRange    hcl.Range `hcl:"carry_reset,attr_value_range"`
}

type cpaSrc struct {
	Amount     string `hcl:"amount"`
	MinDeposit string `hcl:"min_deposit"`
	WithinDays string `hcl:"within_days,optional"`
	// ClawbackDays: a reversal of the first deposit within this many days
	// after it claws a paid CPA back (CPA.ClawbackDays).
	ClawbackDays string `hcl:"clawback_days,optional"`

	DefRange    hcl.Range `hcl:",def_range"`
	AmountR     hcl.Range `hcl:"amount,attr_value_range"`
	MinDepR     hcl.Range `hcl:"min_deposit,attr_value_range"`
	WithinDaysR hcl.Range `hcl:"within_days,attr_value_range"`
	ClawbackR   hcl.Range `hcl:"clawback_days,attr_value_range"`
}

type tierSrc struct {
	UpTo    *string `hcl:"up_to,optional"`
	Percent string  `hcl:"percent"`

	DefRange     hcl.Range `hcl:",def_range"`
	UpToRange    hcl.Range `hcl:"up_to,attr_value_range"`
	PercentRange hcl.Range `hcl:"percent,attr_value_range"`
}

var (
	fileFeeSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "ruleset", LabelNames: []string{"name"}}}}
	rulesetSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "rounding"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "fee", LabelNames: []string{"name"}}},
	}
)

// ParseFees parses the fee blocks of HCL rule source: every
// ruleset "<name>" { fee "<name>" { ... } } of the file, in file order, with
// the ruleset's name in FeeContract.Ruleset. Everything else (effective,
// allocation, rule blocks) is left to Parse and not checked here. A fee
// without its own rounding inherits the ruleset's. The error, if any, wraps a
// *ParseError (errors.Is(err, ErrInvalid)) listing every problem of the file
// with file:line:column, key, value and a fix. A file without fee blocks
// gives no contracts and no error.
func ParseFees(src []byte, filename string) ([]FeeContract, error) {
	fees, problems := parseFees(src, filename)
	if len(problems) > 0 {
		return nil, fmt.Errorf("parse fees: %w", &ParseError{Problems: problems})
	}
	return fees, nil
}

func parseFees(src []byte, filename string) ([]FeeContract, []Problem) {
	if len(src) > MaxSourceBytes {
		return nil, []Problem{{Pos: filename, Msg: fmt.Sprintf("source is %d bytes, more than %d", len(src), MaxSourceBytes), Hint: "split the rule sets over several files"}}
	}
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diagProblems(diags)
	}
	content, _, diags := f.Body.PartialContent(fileFeeSchema)
	problems := diagProblems(diags)
	var out []FeeContract
	for _, rs := range content.Blocks {
		fees, ps := parseRulesetFees(rs)
		out = append(out, fees...)
		problems = append(problems, ps...)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return out, nil
}

func parseRulesetFees(rs *hcl.Block) ([]FeeContract, []Problem) {
	content, _, diags := rs.Body.PartialContent(rulesetSchema)
	problems := diagProblems(diags)
	if len(content.Blocks) == 0 {
		return nil, problems
	}
	rsName := rs.Labels[0]
	if len(content.Blocks) > MaxFees {
		return nil, append(problems, Problem{Pos: rangePos(rs.DefRange), Key: "fee", Msg: fmt.Sprintf("%d fee blocks, more than %d", len(content.Blocks), MaxFees), Hint: "split the version"})
	}
	var setRounding string
	var setRoundingRange hcl.Range
	if a, ok := content.Attributes["rounding"]; ok {
		setRoundingRange = a.Expr.Range()
		// A bad value is reported by Parse; here it only makes inheriting fees fail.
		_ = gohcl.DecodeExpression(a.Expr, evalCtx, &setRounding)
	}
	var out []FeeContract
	seen := map[string]string{}
	for _, b := range content.Blocks {
		name := b.Labels[0]
		pos := rangePos(b.DefRange)
		if prev, ok := seen[name]; ok {
			problems = append(problems, Problem{Pos: pos, Key: "fee", Msg: fmt.Sprintf("fee %q already defined at %s", name, prev), Hint: "give every fee of a ruleset a unique name"})
		}
		seen[name] = pos
		if ps := numberLiterals(b.Body); len(ps) > 0 {
			problems = append(problems, ps...) // converting them to strings could take unbounded time
			continue
		}
		var fs feeSrc
		diags := gohcl.DecodeBody(b.Body, evalCtx, &fs)
		ps := diagProblems(diags)
		reported := map[string]bool{}
		for _, d := range diags {
			if d.Subject != nil {
				reported[rangePos(*d.Subject)] = true
			}
		}
		fc, semantic := compileFee(rsName, name, b.DefRange, &fs, setRounding, setRoundingRange)
		for _, p := range semantic {
			if !reported[p.Pos] {
				ps = append(ps, p)
			}
		}
		if len(ps) > 0 {
			problems = append(problems, ps...)
			continue
		}
		out = append(out, fc)
	}
	return out, problems
}

// compileFee turns a decoded fee block into a contract and every problem
// with it, positioned at the value at fault.
func compileFee(rsName, name string, def hcl.Range, fs *feeSrc, setRounding string, setRoundingRange hcl.Range) (FeeContract, []Problem) {
	var c checker
	pos := rangePos(def)
	fc := FeeContract{
		Ruleset:       rsName,
		Name:          name,
		Party:         fs.Party,
		Basis:         fs.Basis,
		Period:        fs.Period,
		Currency:      money.Currency{Code: fs.Currency, Exponent: -1},
		Rounding:      money.Rounding(fs.Rounding),
		Mode:          TierMode(fs.Mode),
		CarryNegative: fs.CarryNegative,
		CarryReset:    fs.CarryReset,
		MinimumFee:    decimal.Zero,
	}
	// Conditions are sets: sorted and deduplicated, like a rule's.
	fc.Providers = checkList(&c, pos, "providers", fs.Providers, nil)
	fc.Games = checkList(&c, pos, "games", fs.Games, nil)
	fc.Categories = checkList(&c, pos, "categories", fs.Categories, nil)
	fc.Jurisdictions = checkList(&c, pos, "jurisdictions", fs.Jurisdictions, nil)
	fc.Brands = checkList(&c, pos, "brands", fs.Brands, nil)
	fc.Affiliates = checkList(&c, pos, "affiliates", fs.Affiliates, nil)
	fc.Meta = checkMeta(&c, pos, fs.Meta)
	if cur, ok := money.Lookup(fs.Currency); ok {
		fc.Currency = cur
	}
	roundingRange := fs.RoundingRange
	if fs.Rounding == "" {
		fc.Rounding = money.Rounding(setRounding)
		roundingRange = setRoundingRange
	}
	bad := map[string]bool{}
	var ok bool
	// An absent required attribute was reported by the HCL decoder (its
	// range is unset): it is not checked again.
	absent := func(r hcl.Range) bool { return r.Filename == "" }
	if absent(fs.MinimumRange) {
		bad["minimum"] = true
	} else if _, fc.MinimumFee, ok = checkDecimal(&c, at(pos, fs.MinimumRange), "minimum", fs.Minimum); !ok {
		bad["minimum"] = true
	}
	if fs.Maximum != nil {
		var m decimal.Decimal
		if _, m, ok = checkDecimal(&c, at(pos, fs.MaximumRange), "maximum", *fs.Maximum); !ok {
			bad["maximum"] = true
		}
		fc.MaximumFee = &m
	}
	switch {
	case len(fs.CPA) > 1:
		c.add(at(pos, fs.CPA[1].DefRange), "cpa", "more than one cpa block", "a fee has one cpa rule; write a second fee for another")
	case len(fs.CPA) == 1:
		cs := fs.CPA[0]
		cp := &CPA{Amount: decimal.Zero, MinDeposit: decimal.Zero}
		if absent(cs.AmountR) {
			bad["cpa.amount"] = true
		} else if _, cp.Amount, ok = checkDecimal(&c, at(pos, cs.AmountR, cs.DefRange), "amount", cs.Amount); !ok {
			bad["cpa.amount"] = true
		}
		if absent(cs.MinDepR) {
			bad["cpa.min_deposit"] = true
		} else if _, cp.MinDeposit, ok = checkDecimal(&c, at(pos, cs.MinDepR, cs.DefRange), "min_deposit", cs.MinDeposit); !ok {
			bad["cpa.min_deposit"] = true
		}
		if cs.WithinDays != "" {
			if d, err := strconv.Atoi(cs.WithinDays); err != nil || d < 1 || d > MaxWithinDays || strconv.Itoa(d) != cs.WithinDays {
				c.add(at(pos, cs.WithinDaysR, cs.DefRange), "within_days", fmt.Sprintf("%q is not a whole number from 1 to %d", cs.WithinDays, MaxWithinDays), `days from the player's first transaction, such as within_days = "30"; leave it out for no window`)
			} else {
				cp.WithinDays = d
			}
		}
		if cs.ClawbackDays != "" {
			if d, err := strconv.Atoi(cs.ClawbackDays); err != nil || d < 1 || d > MaxWithinDays || strconv.Itoa(d) != cs.ClawbackDays {
				c.add(at(pos, cs.ClawbackR, cs.DefRange), "clawback_days", fmt.Sprintf("%q is not a whole number from 1 to %d", cs.ClawbackDays, MaxWithinDays), `days after the first deposit in which its reversal claws the CPA back, such as clawback_days = "90"; leave it out for no clawback`)
			} else {
				cp.ClawbackDays = d
			}
		}
		fc.CPA = cp
	}
	for i, ts := range fs.Tiers {
		t := Tier{}
		if absent(ts.PercentRange) {
			bad[badTierKey(i, "percent")] = true
		} else if _, t.Percent, ok = checkDecimal(&c, at(pos, ts.PercentRange, ts.DefRange), "percent", ts.Percent); !ok {
			bad[badTierKey(i, "percent")] = true
		}
		if ts.UpTo != nil {
			var u decimal.Decimal
			if _, u, ok = checkDecimal(&c, at(pos, ts.UpToRange, ts.DefRange), "up_to", *ts.UpTo); !ok {
				bad[badTierKey(i, "up_to")] = true
			}
			t.UpTo = &u
		}
		fc.Tiers = append(fc.Tiers, t)
	}
	ranges := map[string]hcl.Range{
		"party": fs.PartyRange, "basis": fs.BasisRange, "period": fs.PeriodRange, "currency": fs.CurrencyRange,
		"rounding": roundingRange, "mode": fs.ModeRange, "minimum": fs.MinimumRange, "maximum": fs.MaximumRange,
		"carry_reset": fs.ResetRange, "carry_negative": fs.CarryRange,
	}
	if len(fs.CPA) > 0 {
		ranges["cpa"] = fs.CPA[0].DefRange
	}
	for _, is := range fc.issues(bad) {
		if r, ok := ranges[is.key]; ok && is.tier < 0 && is.key != "rounding" && is.key != "mode" && absent(r) {
			continue
		}
		where := at(pos, ranges[is.key], def)
		if is.tier >= 0 && is.tier < len(fs.Tiers) {
			ts := fs.Tiers[is.tier]
			switch is.key {
			case "percent":
				where = at(pos, ts.PercentRange, ts.DefRange)
			case "up_to":
				where = at(pos, ts.UpToRange, ts.DefRange)
			default:
				where = at(pos, ts.DefRange)
			}
		}
		c.add(where, is.key, is.msg, is.hint)
	}
	return fc, c.problems
}

// feeCanon is a fee contract in the canonical encoding of its version (the
// "fees" list, sorted by name): every term spelled out, decimals without
// trailing zeros, condition lists sorted and deduplicated.
type feeCanon struct {
	Name          string              `json:"name"`
	Party         string              `json:"party"`
	Basis         string              `json:"basis"`
	Period        string              `json:"period"`
	Currency      string              `json:"currency"`
	Rounding      string              `json:"rounding"`
	Mode          string              `json:"mode,omitempty"`
	Minimum       string              `json:"minimum"`
	Maximum       string              `json:"maximum,omitempty"`
	CarryNegative bool                `json:"carry_negative"`
	CarryReset    string              `json:"carry_reset,omitempty"`
	Providers     []string            `json:"providers,omitempty"`
	Games         []string            `json:"games,omitempty"`
	Categories    []string            `json:"categories,omitempty"`
	Jurisdictions []string            `json:"jurisdictions,omitempty"`
	Brands        []string            `json:"brands,omitempty"`
	Affiliates    []string            `json:"affiliates,omitempty"`
	Meta          map[string][]string `json:"meta,omitempty"`
	Tiers         []tierCanon         `json:"tiers,omitempty"`
	CPA           *cpaCanon           `json:"cpa,omitempty"`
}

type cpaCanon struct {
	Amount     string `json:"amount"`
	MinDeposit string `json:"min_deposit"`
	WithinDays int    `json:"within_days,omitempty"`
	// Absent without a clawback, so older versions keep their hash.
	ClawbackDays int `json:"clawback_days,omitempty"`
}

type tierCanon struct {
	UpTo    string `json:"up_to,omitempty"`
	Percent string `json:"percent"`
}

func canonFee(fc FeeContract) *feeCanon {
	f := &feeCanon{
		Name: fc.Name, Party: fc.Party, Basis: fc.Basis, Period: fc.Period, Currency: fc.Currency.Code,
		Rounding: string(fc.Rounding), Mode: string(fc.Mode), Minimum: fc.MinimumFee.String(), CarryNegative: fc.CarryNegative, CarryReset: fc.CarryReset,
		Providers: fc.Providers, Games: fc.Games, Categories: fc.Categories, Jurisdictions: fc.Jurisdictions, Brands: fc.Brands,
		Affiliates: fc.Affiliates, Meta: fc.Meta,
	}
	if fc.MaximumFee != nil {
		f.Maximum = fc.MaximumFee.String()
	}
	if fc.CPA != nil {
		f.CPA = &cpaCanon{Amount: fc.CPA.Amount.String(), MinDeposit: fc.CPA.MinDeposit.String(), WithinDays: fc.CPA.WithinDays, ClawbackDays: fc.CPA.ClawbackDays}
	}
	for _, t := range fc.Tiers {
		tc := tierCanon{Percent: t.Percent.String()}
		if t.UpTo != nil {
			tc.UpTo = t.UpTo.String()
		}
		f.Tiers = append(f.Tiers, tc)
	}
	return f
}

// contract turns a canonical fee back into a validated contract; path names
// it in problems.
func (f *feeCanon) contract(c *checker, ruleset, path string) (FeeContract, bool) {
	before := len(c.problems)
	fc := FeeContract{
		Ruleset: ruleset, Name: f.Name, Party: f.Party, Basis: f.Basis, Period: f.Period,
		Currency: money.Currency{Code: f.Currency, Exponent: -1}, Rounding: money.Rounding(f.Rounding),
		Mode: TierMode(f.Mode), CarryNegative: f.CarryNegative, CarryReset: f.CarryReset, MinimumFee: decimal.Zero,
	}
	if cur, ok := money.Lookup(f.Currency); ok {
		fc.Currency = cur
	}
	for _, l := range []struct {
		key string
		v   *[]string
		dst *[]string
	}{{"providers", &f.Providers, &fc.Providers}, {"games", &f.Games, &fc.Games}, {"categories", &f.Categories, &fc.Categories}, {"jurisdictions", &f.Jurisdictions, &fc.Jurisdictions}, {"brands", &f.Brands, &fc.Brands}, {"affiliates", &f.Affiliates, &fc.Affiliates}} {
		*l.v = checkList(c, path, l.key, *l.v, nil)
		*l.dst = *l.v
	}
	f.Meta = checkMeta(c, path, f.Meta)
	fc.Meta = f.Meta
	var ok bool
	f.Minimum, fc.MinimumFee, ok = checkDecimal(c, path, "minimum", f.Minimum)
	bad := map[string]bool{"minimum": !ok}
	if f.Maximum != "" {
		var m decimal.Decimal
		if f.Maximum, m, ok = checkDecimal(c, path, "maximum", f.Maximum); !ok {
			bad["maximum"] = true
		}
		fc.MaximumFee = &m
	}
	if f.CPA != nil {
		cp := &CPA{WithinDays: f.CPA.WithinDays, ClawbackDays: f.CPA.ClawbackDays}
		if f.CPA.Amount, cp.Amount, ok = checkDecimal(c, path, "cpa.amount", f.CPA.Amount); !ok {
			bad["cpa.amount"] = true
		}
		if f.CPA.MinDeposit, cp.MinDeposit, ok = checkDecimal(c, path, "cpa.min_deposit", f.CPA.MinDeposit); !ok {
			bad["cpa.min_deposit"] = true
		}
		fc.CPA = cp
	}
	for i := range f.Tiers {
		t := Tier{}
		tc := &f.Tiers[i]
		if tc.Percent, t.Percent, ok = checkDecimal(c, path, "percent", tc.Percent); !ok {
			bad[badTierKey(i, "percent")] = true
		}
		if tc.UpTo != "" {
			var u decimal.Decimal
			if tc.UpTo, u, ok = checkDecimal(c, path, "up_to", tc.UpTo); !ok {
				bad[badTierKey(i, "up_to")] = true
			}
			t.UpTo = &u
		}
		fc.Tiers = append(fc.Tiers, t)
	}
	for _, is := range fc.issues(bad) {
		where := path
		if is.tier >= 0 {
			where = fmt.Sprintf("%s tier %d", path, is.tier+1)
		}
		c.add(where, is.key, is.msg, is.hint)
	}
	return fc, len(c.problems) == before
}
