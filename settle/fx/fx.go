// Package fx holds the exchange rates a settlement converts with and the one
// exact conversion every figure in another currency goes through.
//
// Rates are never fetched: they are ledger entries of type "fx_rate" posted
// by an operator (docs/ledger-format.md, the operator-entry seam), each with
// its source, pair (BASE/QUOTE), rate (QUOTE units per 1 BASE, a plain
// decimal > 0 with at most 12 decimals) and as-of time (the entry's
// occurred_at). NewTable reads them from the ledger's entries; Table.At
// answers "the rate in force for a pair at time t":
//
//   - the rate with the latest as-of ≤ t; among rates with the same as-of,
//     the one latest in ledger order (a correction posted later wins);
//   - only the contract's source, when it names one;
//   - the inverse pair (QUOTE/BASE, used as 1 ÷ rate) only when the
//     contract allows it (Policy.Inverse); then the latest as-of of either
//     direction wins, the direct pair on a tie;
//   - no rate in force is ErrNoRate: never a silent fallback to another
//     source, an older inverse, a default or 1.
//
// Convert is exact: amount × rate (or amount ÷ rate for an inverse pair) is
// computed as a rational number and rounded once, to the target currency's
// minor unit, with a named money.Rounding. All three modes are symmetric
// around zero, so a reversal converted at its parent's rate is exactly the
// negation of its parent's conversion.
//
// The package is pure: no I/O, no clock.
package fx

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// EntryType is the transaction type of a rate entry.
const EntryType = string(txn.FXRate)

// DefaultRounding is the rounding of a conversion whose contract names none:
// half to even (banker's), which does not bias a long series of conversions
// in either party's favour.
const DefaultRounding = money.HalfEven

// Errors.
var (
	// ErrNoRate means no rate for the pair is in force at the time asked:
	// none posted with an as-of at or before it (for the contract's source,
	// in the directions the contract allows).
	ErrNoRate = errors.New("no exchange rate in force")
	// ErrBadRate means an fx_rate entry of the ledger is malformed: its
	// meta is incomplete or inconsistent with the entry.
	ErrBadRate = errors.New("malformed fx_rate entry")
)

// Rate is one posted rate: Quote units per 1 Base, from AsOf.
type Rate struct {
	ID        string // the entry's transaction id, fx-<source>-<BASE><QUOTE>-<as_of unix>
	Source    string
	Base      string
	Quote     string
	Rate      decimal.Decimal
	AsOf      time.Time // UTC
	PostedBy  string
	Partition uint32 // where the entry is in the ledger
	Index     uint64
	order     int // position among the entries NewTable read (ledger order)
}

// Pair is "BASE/QUOTE".
func (r Rate) Pair() string { return r.Base + "/" + r.Quote }

// Table holds every posted rate by pair, oldest as-of first.
type Table struct {
	pairs map[[2]string][]Rate
}

// ParseRate reads the rate of one fx_rate entry with the same strict
// parser the settle engine, the store and `tally verify` use
// (txn.ParseFXRate: currency = base; meta source, pair, rate, posted_by and
// nothing else; rate a plain decimal > 0 with at most 12 decimals; amount
// 0; id fx-<source>-<BASE><QUOTE>-<as_of unix seconds>), and checks that
// the entry moves no money (net 0, no shares).
func ParseRate(e store.Entry) (Rate, error) {
	bad := func(format string, a ...any) (Rate, error) {
		return Rate{}, fmt.Errorf("%s/%s (partition %d index %d): %s: %w", e.Provider, e.Tx.ID, e.Partition, e.Index, fmt.Sprintf(format, a...), ErrBadRate)
	}
	m, err := txn.ParseFXRate(e.Tx)
	if err != nil {
		return bad("%v", err)
	}
	if len(e.Shares) > 0 || !e.Net.IsZero() {
		return bad("an fx_rate entry has net 0 and no shares")
	}
	return Rate{ID: e.Tx.ID, Source: m.Source, Base: m.Base.Code, Quote: m.Quote.Code, Rate: m.Rate, AsOf: e.Tx.OccurredAt.UTC(), PostedBy: m.PostedBy,
		Partition: e.Partition, Index: e.Index}, nil
}

// NewTable builds the table from ledger entries in ledger order; entries of
// other types are skipped. A malformed fx_rate entry is an error: a rate
// the table cannot read must not be silently absent.
func NewTable(entries []store.Entry) (*Table, error) {
	t := &Table{pairs: map[[2]string][]Rate{}}
	for i, e := range entries {
		if string(e.Tx.Type) != EntryType {
			continue
		}
		r, err := ParseRate(e)
		if err != nil {
			return nil, err
		}
		r.order = i
		k := [2]string{r.Base, r.Quote}
		t.pairs[k] = append(t.pairs[k], r)
	}
	for _, rs := range t.pairs {
		sort.SliceStable(rs, func(i, j int) bool {
			if !rs[i].AsOf.Equal(rs[j].AsOf) {
				return rs[i].AsOf.Before(rs[j].AsOf)
			}
			return rs[i].order < rs[j].order
		})
	}
	return t, nil
}

// Len is the number of rates in the table.
func (t *Table) Len() int {
	n := 0
	for _, rs := range t.pairs {
		n += len(rs)
	}
	return n
}

// Rates returns every rate of the table, by pair (BASE/QUOTE), then as-of,
// then ledger order: the order Table.At reads them in.
func (t *Table) Rates() []Rate {
	if t == nil {
		return nil
	}
	keys := make([][2]string, 0, len(t.pairs))
	for k := range t.pairs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	var out []Rate
	for _, k := range keys {
		out = append(out, t.pairs[k]...)
	}
	return out
}

// Policy is what a contract allows the table to use.
type Policy struct {
	Source  string // only rates of this source; "" for any
	Inverse bool   // a rate of the opposite pair may be used, as 1 ÷ rate
}

// Quote is the conversion from one currency to another at a time: the rate
// in force (Rate) used directly, or its inverse.
type Quote struct {
	From, To string
	Identity bool // From == To: no rate, factor 1
	Inverse  bool // Rate is To/From: the amount is divided by Rate.Rate
	Rate     Rate
}

// Factor is the exact number an amount in From is multiplied by.
func (q Quote) Factor() *big.Rat {
	if q.Identity {
		return big.NewRat(1, 1)
	}
	f := q.Rate.Rate.Rat()
	if q.Inverse {
		f.Inv(f)
	}
	return f
}

// Describe is the rate as a statement line shows it, e.g.
// "EUR/USD 1.085 (ecb, as of 2026-11-30T16:00:00Z)", or for an inverse
// "1 / USD/EUR 0.92 (...)".
func (q Quote) Describe() string {
	if q.Identity {
		return q.From + "/" + q.To + " 1"
	}
	s := fmt.Sprintf("%s %s (%s, as of %s, %s)", q.Rate.Pair(), q.Rate.Rate, q.Rate.Source, q.Rate.AsOf.Format(time.RFC3339), q.Rate.ID)
	if q.Inverse {
		return "1 / " + s
	}
	return s
}

// At returns the conversion from → to in force at t under p. from == to is
// the identity. No rate in force is an error wrapping ErrNoRate.
func (t *Table) At(from, to string, at time.Time, p Policy) (Quote, error) {
	if from == to {
		return Quote{From: from, To: to, Identity: true}, nil
	}
	direct, okD := t.latest([2]string{from, to}, at, p.Source)
	if p.Inverse {
		inv, okI := t.latest([2]string{to, from}, at, p.Source)
		if okI && (!okD || inv.AsOf.After(direct.AsOf)) {
			return Quote{From: from, To: to, Inverse: true, Rate: inv}, nil
		}
	}
	if okD {
		return Quote{From: from, To: to, Rate: direct}, nil
	}
	src := "any source"
	if p.Source != "" {
		src = "source " + p.Source
	}
	dirs := from + "/" + to
	if p.Inverse {
		dirs += " or " + to + "/" + from
	}
	return Quote{}, fmt.Errorf("%s (%s) at %s: no fx_rate entry with an as-of at or before it: %w", dirs, src, at.UTC().Format(time.RFC3339Nano), ErrNoRate)
}

func (t *Table) latest(k [2]string, at time.Time, source string) (Rate, bool) {
	if t == nil {
		return Rate{}, false
	}
	rs := t.pairs[k]
	// Rates are sorted by (as-of, ledger order): the last one ≤ at wins.
	n := sort.Search(len(rs), func(i int) bool { return rs[i].AsOf.After(at) })
	for i := n - 1; i >= 0; i-- {
		if source == "" || rs[i].Source == source {
			return rs[i], true
		}
	}
	return Rate{}, false
}

// Convert converts amount (in q.From, with at most its decimals) to q.To:
// amount × Factor, exactly, rounded once to To's minor unit with mode.
func (q Quote) Convert(amount decimal.Decimal, mode money.Rounding) (decimal.Decimal, error) {
	from, ok := money.Lookup(q.From)
	if !ok {
		return decimal.Zero, fmt.Errorf("fx: unknown currency %q", q.From)
	}
	to, ok := money.Lookup(q.To)
	if !ok {
		return decimal.Zero, fmt.Errorf("fx: unknown currency %q", q.To)
	}
	if !from.Fits(amount) {
		return decimal.Zero, fmt.Errorf("fx: %s has more than %d decimals for %s", amount, from.Exponent, from.Code)
	}
	if !mode.Valid() {
		return decimal.Zero, fmt.Errorf("fx: unknown rounding %q", string(mode))
	}
	x := new(big.Rat).Mul(amount.Rat(), q.Factor())
	return RoundRat(x, to.Exponent, mode), nil
}

// RoundRat rounds the exact rational x to exp decimals with mode (as
// money.Round does for decimals): half_up halves away from zero, half_even
// to the even neighbour, down toward zero. Symmetric: RoundRat(−x) =
// −RoundRat(x).
func RoundRat(x *big.Rat, exp int32, mode money.Rounding) decimal.Decimal {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)
	num := new(big.Int).Mul(new(big.Int).Abs(x.Num()), scale)
	den := x.Denom()
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	twice := new(big.Int).Lsh(r, 1)
	c := twice.Cmp(den)
	switch mode {
	case money.HalfUp:
		if c >= 0 {
			q.Add(q, big.NewInt(1))
		}
	case money.HalfEven:
		if c > 0 || c == 0 && q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	case money.Down:
	default:
		panic(fmt.Sprintf("fx: unknown rounding mode %q", string(mode)))
	}
	if x.Sign() < 0 {
		q.Neg(q)
	}
	return decimal.NewFromBigInt(q, -exp)
}

// Entry is the ledger entry the engine records for a posted rate (the
// seam's fx_rate shape): provider and edge node "_tally", currency base,
// amount 0, occurred_at asOf, no shares. Tools and tests build rates with it.
func Entry(source, base, quote, rate string, asOf time.Time, postedBy string) store.Entry {
	cur, _ := money.Lookup(base)
	asOf = asOf.UTC()
	return store.Entry{
		EdgeNode: "_tally", Provider: "_tally",
		Tx: txn.Tx{
			ID: fmt.Sprintf("fx-%s-%s%s-%d", source, base, quote, asOf.Unix()), Type: txn.FXRate, Amount: decimal.Zero,
			Currency: cur, OccurredAt: asOf,
			Meta: map[string]string{"source": source, "pair": base + "/" + quote, "rate": rate, "posted_by": postedBy},
		},
		Rule: EntryType, Net: decimal.Zero, SettledAt: asOf,
	}
}

// Position is a party's balance in one foreign currency on its way to the
// settlement currency: every amount is accrued (converted and rounded) at
// the rate in force at its event; Settle converts the whole foreign balance
// at once at the settlement rate and returns the FX difference, the one
// figure that makes the two agree:
//
//	Σ accrued + difference = settled = convert(Σ amounts, settlement rate)
//
// exactly, in the settlement currency. Nothing else is created or lost.
type Position struct {
	From, To string
	Rounding money.Rounding
	Amount   decimal.Decimal // Σ accrued amounts, in From
	Accrued  decimal.Decimal // Σ their conversions, in To
}

// Accrue converts amount at q (From → To) and adds both to the position.
func (p *Position) Accrue(amount decimal.Decimal, q Quote) (decimal.Decimal, error) {
	if q.From != p.From || q.To != p.To {
		return decimal.Zero, fmt.Errorf("fx: %s→%s quote for a %s→%s position", q.From, q.To, p.From, p.To)
	}
	c, err := q.Convert(amount, p.Rounding)
	if err != nil {
		return decimal.Zero, err
	}
	p.Amount = p.Amount.Add(amount)
	p.Accrued = p.Accrued.Add(c)
	return c, nil
}

// Settle converts the position's foreign balance at q and returns it and
// the FX difference (settled − accrued), both in To.
func (p *Position) Settle(q Quote) (settled, difference decimal.Decimal, err error) {
	if q.From != p.From || q.To != p.To {
		return decimal.Zero, decimal.Zero, fmt.Errorf("fx: %s→%s quote for a %s→%s position", q.From, q.To, p.From, p.To)
	}
	settled, err = q.Convert(p.Amount, p.Rounding)
	if err != nil {
		return decimal.Zero, decimal.Zero, err
	}
	return settled, settled.Sub(p.Accrued), nil
}
