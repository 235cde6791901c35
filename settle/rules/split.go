package rules

import (
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

// Book is every rule version from one or more sources, sorted by Effective.
type Book struct {
	versions []*Version
}

// NewBook builds a book from versions (for example decoded with
// ParseCanonical). Names and effective times must be unique.
func NewBook(versions ...*Version) (*Book, error) {
	return newBook(slices.Clone(versions), nil)
}

// Versions returns the versions, oldest effective first.
func (b *Book) Versions() []*Version { return slices.Clone(b.versions) }

// At returns the version in force at t: the one with the latest Effective
// not after t. ErrNoVersion if every version is effective after t.
func (b *Book) At(t time.Time) (*Version, error) {
	i, _ := slices.BinarySearchFunc(b.versions, t, func(v *Version, t time.Time) int {
		if v.Effective.After(t) {
			return 1
		}
		return -1 // ≤ t sorts before: i becomes the first version after t
	})
	if i == 0 {
		return nil, fmt.Errorf("split at %s: %w", t.UTC().Format(time.RFC3339Nano), ErrNoVersion)
	}
	return b.versions[i-1], nil
}

// Result is one split: the version and rule that produced it and the shares,
// one per party in declaration order, summing exactly to tx.Signed().
type Result struct {
	Version *Version
	Rule    string
	Shares  []money.Share
	Net     decimal.Decimal // tx.Signed(): what the shares sum to
}

// Split splits tx under the version in force at tx.OccurredAt. See
// Version.Split.
func (b *Book) Split(provider string, tx txn.Tx) (Result, error) {
	v, err := b.At(tx.OccurredAt)
	if err != nil {
		return Result{}, err
	}
	return v.Split(provider, tx)
}

// Split splits tx, received from provider, by the first rule of v whose
// conditions all match (an absent condition matches anything). The shares are
// signed like tx.Signed() (negative for money out: a win is borne by the
// parties) and sum to it exactly; one share per party, in the order the rule
// declares them, parties that resolve to the same name merged; a party whose
// part rounds to zero is listed with 0.
//
// Errors: ErrReversal for rollback and refund (use Reverse), ErrInvalidTx for
// a transaction that is not splittable, ErrNoRule when no rule matches.
func (v *Version) Split(provider string, tx txn.Tx) (Result, error) {
	switch {
	case tx.Type.Reversal():
		return Result{}, fmt.Errorf("split %s: %w", tx.ID, ErrReversal)
	case !tx.Type.Valid():
		return Result{}, fmt.Errorf("split %s: type %q: %w", tx.ID, tx.Type, ErrInvalidTx)
	case provider == "":
		return Result{}, fmt.Errorf("split %s: no provider: %w", tx.ID, ErrInvalidTx)
	case tx.Amount.IsNegative():
		return Result{}, fmt.Errorf("split %s: negative amount %s: %w", tx.ID, tx.Amount, ErrInvalidTx)
	case tx.Currency.Code == "" || tx.Currency.Exponent < 0 || !tx.Currency.Fits(tx.Amount):
		return Result{}, fmt.Errorf("split %s: amount %s does not fit currency %q: %w", tx.ID, tx.Amount, tx.Currency.Code, ErrInvalidTx)
	}
	signed := tx.Signed()
	for _, r := range v.rules {
		if !r.matches(provider, tx) {
			continue
		}
		var shares []money.Share
		var err error
		if len(r.steps) > 0 {
			shares, err = r.waterfall(provider, tx)
		} else {
			shares, err = r.allocate(provider, tx, signed)
		}
		if err != nil {
			return Result{}, fmt.Errorf("split %s by rule %q of %q: %w", tx.ID, r.name, v.Name, err)
		}
		if !money.SumEquals(shares, signed) {
			panic(fmt.Sprintf("rules: rule %q of %q split %s %s into shares summing to %s", r.name, v.Name, signed, tx.Currency.Code, money.Sum(shares)))
		}
		return Result{Version: v, Rule: r.name, Shares: shares, Net: signed}, nil
	}
	return Result{}, fmt.Errorf("split %s (%s, %s) under %q: %w", tx.ID, tx.Type, tx.Currency.Code, v.Name, ErrNoRule)
}

func (r *rule) matches(provider string, tx txn.Tx) bool {
	in := func(set []string, s string) bool { return len(set) == 0 || slices.Contains(set, s) }
	for k, vals := range r.meta {
		v, ok := tx.Meta[k]
		if !ok || !slices.Contains(vals, v) {
			return false
		}
	}
	return (len(r.types) == 0 || slices.Contains(r.types, tx.Type)) &&
		in(r.providers, provider) && in(r.games, tx.Game) && in(r.categories, tx.Category) &&
		in(r.jurisdictions, tx.Jurisdiction) && in(r.brands, tx.Brand) && in(r.currencies, tx.Currency.Code)
}

// resolve turns a party reference into a party name; "" means absent.
func resolve(party, provider string, tx txn.Tx) string {
	switch party {
	case refProvider:
		return provider
	case refAffiliate:
		return tx.Affiliate
	}
	return party
}

// parties accumulates amounts or weights per party, in first-seen order.
type parties struct {
	names []string
	vals  []decimal.Decimal
}

// add returns p with d added to name's value (a new name goes last) and
// name's index. By value, not by pointer: storing the append through a
// pointer would move a caller's stack buffers to the heap.
func (p parties) add(name string, d decimal.Decimal) (parties, int) {
	if i := slices.Index(p.names, name); i >= 0 {
		p.vals[i] = p.vals[i].Add(d)
		return p, i
	}
	p.names = append(p.names, name)
	p.vals = append(p.vals, d)
	return p, len(p.names) - 1
}

func (p *parties) shares() []money.Share {
	out := make([]money.Share, len(p.names))
	for i := range p.names {
		out[i] = money.Share{Party: p.names[i], Amount: p.vals[i]}
	}
	return out
}

// allocate splits by percents or weights. The weights are merged per party
// first (an absent affiliate's weight goes to the remainder party; a percent
// rule's remainder party weighs 100 − Σ percents), then allocated once, so each
// party's share is rounded once.
func (r *rule) allocate(provider string, tx txn.Tx, signed decimal.Decimal) ([]money.Share, error) {
	var names [8]string
	var vals [8]decimal.Decimal
	p := parties{names: names[:0], vals: vals[:0]} // a typical rule: no growth, no allocation
	// The remainder party's weight: what the rule leaves (r.rest, 100 − Σ
	// percents) plus every share whose party is absent, computed once per
	// rule for the usual absent party, the affiliate (r.restNoAffiliate).
	orphan, orphaned, noAffiliate := decimal.Zero, false, false
	for _, s := range r.shares {
		switch name := resolve(s.party, provider, tx); {
		case name != "":
			p, _ = p.add(name, s.weight)
		case s.party == refAffiliate:
			noAffiliate = true // every ${affiliate} share is absent: in r.restNoAffiliate
		default:
			orphan, orphaned = orphan.Add(s.weight), true
		}
	}
	remIdx := -1
	if r.remainder != "" {
		w := r.rest // zero for a weight rule
		if noAffiliate {
			w = r.restNoAffiliate
		}
		if orphaned {
			w = orphan.Add(w)
		}
		p, remIdx = p.add(resolve(r.remainder, provider, tx), w)
	}
	amounts, err := money.Allocate(signed, tx.Currency, p.vals, r.allocation, r.rounding, remIdx)
	if err != nil {
		return nil, err
	}
	p.vals = amounts
	// Caps and floors, in declaration order, on the absolute amount of the
	// share's party: what a cap takes off goes to the remainder party, what a
	// floor adds comes from it, never more than the remainder party holds
	// (it never changes sign). Signs follow the transaction.
	for _, s := range r.shares {
		if s.cap == nil && s.floor == nil {
			continue
		}
		name := resolve(s.party, provider, tx)
		i := slices.Index(p.names, name)
		if name == "" || i < 0 || i == remIdx {
			continue
		}
		for _, lim := range []*decimal.Decimal{s.cap, s.floor} {
			if lim != nil && !tx.Currency.Fits(*lim) {
				return nil, fmt.Errorf("share for %s: cap or floor %s does not fit %s: %w", name, lim, tx.Currency.Code, ErrInvalidTx)
			}
		}
		sign := decimal.NewFromInt(1)
		if signed.IsNegative() {
			sign = sign.Neg()
		}
		abs, rem := p.vals[i].Abs(), p.vals[remIdx].Mul(sign)
		want := abs
		if s.cap != nil && want.GreaterThan(*s.cap) {
			want = *s.cap
		}
		if s.floor != nil && want.LessThan(*s.floor) {
			want = decimal.Min(*s.floor, abs.Add(decimal.Max(rem, decimal.Zero)))
		}
		diff := want.Sub(abs).Mul(sign) // signed change to the share
		p.vals[i] = p.vals[i].Add(diff)
		p.vals[remIdx] = p.vals[remIdx].Sub(diff)
	}
	return p.shares(), nil
}

// waterfall runs the steps in order on the absolute amount: each takes a
// percent of the amount or of what is left, or per_unit × a quantity from the
// transaction's meta (both rounded with the rule's rounding), or a fixed
// amount; then its cap and floor apply; it never takes more than is left; the remainder party gets what is
// left. A step for an absent affiliate takes nothing. Money-out types negate
// every share.
func (r *rule) waterfall(provider string, tx txn.Tx) ([]money.Share, error) {
	var p parties
	amount := tx.Amount
	left := amount
	for _, st := range r.steps {
		name := resolve(st.party, provider, tx)
		if name == "" {
			continue
		}
		var take decimal.Decimal
		switch {
		case st.isFixed:
			if !tx.Currency.Fits(st.fixed) {
				return nil, fmt.Errorf("fixed %s does not fit %s", st.fixed, tx.Currency.Code)
			}
			take = st.fixed
		case st.units != "":
			q, ok := tx.Meta[st.units]
			if !ok || !decimalRE.MatchString(q) {
				return nil, fmt.Errorf("step for %s: meta %q = %q is not a plain non-negative quantity: %w", name, st.units, q, ErrInvalidTx)
			}
			take = money.Round(decimal.RequireFromString(q).Mul(st.perUnit), tx.Currency.Exponent, r.rounding)
		case st.ofLeft:
			take = money.Round(left.Mul(st.percent).Shift(-2), tx.Currency.Exponent, r.rounding)
		default:
			take = money.Round(amount.Mul(st.percent).Shift(-2), tx.Currency.Exponent, r.rounding)
		}
		if st.cap != nil && take.GreaterThan(*st.cap) {
			take = *st.cap
		}
		if st.floor != nil && take.LessThan(*st.floor) {
			take = *st.floor
		}
		if take.GreaterThan(left) {
			take = left
		}
		left = left.Sub(take)
		p, _ = p.add(name, take)
	}
	p, _ = p.add(resolve(r.remainder, provider, tx), left)
	if tx.Type.Sign() < 0 {
		for i := range p.vals {
			p.vals[i] = p.vals[i].Neg()
		}
	}
	return p.shares(), nil
}
