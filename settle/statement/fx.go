package statement

import (
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
)

// FX in statements (docs/statements.md "Settlement currency"): a party with
// a settlement block (rules.Settlement) has one statement per period, in its
// settlement currency. Its shares of entries in another currency are FX
// lines: each share accrued at the rate in force at its event (a rollback or
// refund at its parent's event, so it cancels its parent exactly), grouped
// by currency, type, category and rate; then, per foreign currency, one
// fx_difference line: the period's foreign balance converted at the rate in
// force at the period's end, minus what was accrued. So
//
//	Σ accrual lines + fx_difference = foreign balance × close rate
//
// exactly, and the closing holds every foreign share at the close rate.

// FXLine is one FX line of a statement.
type FXLine struct {
	Kind     string `json:"kind"`     // "accrual" or "fx_difference"
	Currency string `json:"currency"` // the currency converted from
	Type     string `json:"type,omitempty"`
	Of       string `json:"of,omitempty"`
	Category string `json:"category,omitempty"`
	Count    int    `json:"count,omitempty"` // accrual: entries
	Amount   string `json:"amount"`          // in Currency: Σ the party's shares (fx_difference: the period's foreign balance)
	// The rate used: the posted pair and rate (Inverse: used as 1 ÷ rate),
	// its source, as-of and ledger entry id.
	Pair     string    `json:"pair"`
	Rate     string    `json:"rate"`
	Inverse  bool      `json:"inverse,omitempty"`
	Source   string    `json:"source"`
	AsOf     time.Time `json:"as_of"`
	RateID   string    `json:"rate_id"`
	Rounding string    `json:"rounding"`
	Accrued  string    `json:"accrued,omitempty"` // fx_difference: Σ the accrual lines of Currency
	Settled  string    `json:"settled,omitempty"` // fx_difference: Amount at the close rate
	// In the statement's currency, counted in the closing: the accrual's
	// conversions (each share rounded on its own), or Settled − Accrued.
	Converted string `json:"converted"`
}

// FX line kinds.
const (
	FXAccrual    = "accrual"
	FXDifference = "fx_difference"
)

// settlementOf returns party's settlement terms in the version in force at
// the period's start.
func (s *Source) settlementOf(party string, p Period) (rules.Settlement, bool) {
	if s.Book == nil {
		return rules.Settlement{}, false
	}
	v, err := s.Book.At(p.Start)
	if err != nil {
		return rules.Settlement{}, false
	}
	return v.Settlement(party)
}

// table returns the rate table of the source: Rates, or else built from
// the fx_rate entries among Entries.
func (s *Source) table() (*fx.Table, error) {
	if s.Rates != nil {
		return s.Rates, nil
	}
	if s.ratesErr == nil && s.rates == nil {
		s.rates, s.ratesErr = fx.NewTable(s.Entries)
	}
	return s.rates, s.ratesErr
}

// fxLines computes the FX lines of party's statement in cur (its settlement
// currency) over the entries counted: those of another currency that occurred
// before the period's end and are not covered by the prior statement.
func fxLines(src *Source, cur money.Currency, party string, period Period, set rules.Settlement, covered func(store.Entry) bool) ([]FXLine, decimal.Decimal, error) {
	end := period.End()
	pol := fx.Policy{Source: set.Source, Inverse: set.Inverse}
	type key struct {
		code, typ, of, cat, rate string
		inverse                  bool
	}
	lines := map[key]*FXLine{}
	sums := map[key][2]decimal.Decimal{}
	pos := map[string]*fx.Position{}
	var tb *fx.Table
	for i, e := range src.Entries {
		code := e.Tx.Currency.Code
		if code == cur.Code || !e.Tx.OccurredAt.Before(end) || covered(e) {
			continue
		}
		share, has := decimal.Zero, false
		for _, s := range e.Shares {
			if s.Party == party {
				share, has = share.Add(s.Amount), true
			}
		}
		if !has {
			continue
		}
		if tb == nil {
			var err error
			if tb, err = src.table(); err != nil {
				return nil, decimal.Zero, fmt.Errorf("statement: %s %s: rates: %w", party, period, err)
			}
		}
		root := src.root[i]
		at := root.OccurredAt // a reversal accrues at its parent's rate
		q, err := tb.At(code, cur.Code, at, pol)
		if err != nil {
			return nil, decimal.Zero, fmt.Errorf("statement: %s %s: %s/%s at %s: %w", party, period, e.Provider, e.Tx.ID, at.Format(time.RFC3339), err)
		}
		if pos[code] == nil {
			pos[code] = &fx.Position{From: code, To: cur.Code, Rounding: set.Rounding}
		}
		c, err := pos[code].Accrue(share, q)
		if err != nil {
			return nil, decimal.Zero, err
		}
		of := ""
		if e.Tx.Type.Reversal() && root.Type != e.Tx.Type {
			of = string(root.Type)
		}
		k := key{code, string(e.Tx.Type), of, root.Category, q.Rate.ID, q.Inverse}
		if lines[k] == nil {
			lines[k] = rateLine(FXAccrual, code, q, set.Rounding)
			lines[k].Type, lines[k].Of, lines[k].Category = k.typ, k.of, k.cat
		}
		lines[k].Count++
		s := sums[k]
		sums[k] = [2]decimal.Decimal{s[0].Add(share), s[1].Add(c)}
	}
	keys := make([]key, 0, len(lines))
	for k := range lines {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		for _, c := range [][2]string{{a.code, b.code}, {a.typ, b.typ}, {a.of, b.of}, {a.cat, b.cat}, {lines[a].AsOf.Format(time.RFC3339), lines[b].AsOf.Format(time.RFC3339)}, {a.rate, b.rate}} {
			if c[0] != c[1] {
				return c[0] < c[1]
			}
		}
		return !a.inverse && b.inverse
	})
	var out []FXLine
	total := decimal.Zero
	codes := make([]string, 0, len(pos))
	for c := range pos {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, code := range codes {
		from, _ := money.Lookup(code)
		for _, k := range keys {
			if k.code != code {
				continue
			}
			l := lines[k]
			l.Amount, l.Converted = from.Format(sums[k][0]), cur.Format(sums[k][1])
			total = total.Add(sums[k][1])
			out = append(out, *l)
		}
		p := pos[code]
		q, err := tb.At(code, cur.Code, end, pol)
		if err != nil {
			return nil, decimal.Zero, fmt.Errorf("statement: %s %s: close rate: %w", party, period, err)
		}
		settled, diff, err := p.Settle(q)
		if err != nil {
			return nil, decimal.Zero, err
		}
		l := rateLine(FXDifference, code, q, set.Rounding)
		l.Amount, l.Accrued, l.Settled, l.Converted = from.Format(p.Amount), cur.Format(p.Accrued), cur.Format(settled), cur.Format(diff)
		total = total.Add(diff)
		out = append(out, *l)
	}
	return out, total, nil
}

func rateLine(kind, code string, q fx.Quote, mode money.Rounding) *FXLine {
	return &FXLine{Kind: kind, Currency: code, Pair: q.Rate.Pair(), Rate: q.Rate.Rate.String(), Inverse: q.Inverse,
		Source: q.Rate.Source, AsOf: q.Rate.AsOf, RateID: q.Rate.ID, Rounding: string(mode)}
}

// FXFeeBasis is the kind of a fee's FX line: basis entries in another
// currency, converted (Fee.FX).
const FXFeeBasis = "fee_basis"

// feeFX converts the basis of a settled party's period fees: a fee is in
// the settlement currency (rules checks it), and an entry of its basis in
// another currency counts with its net converted at the rate in force at
// its event (a reversal at its parent's, so it cancels its parent
// exactly), rounded on its own with the settlement's rounding. The fee is
// then computed, and fixed, in the settlement currency: a fee has no FX
// difference.
type feeFX struct {
	src    *Source
	cur    money.Currency
	party  string
	period Period
	set    rules.Settlement
}

type feeFXKey struct {
	code, rate string
	inverse    bool
}

// feeBasisFX collects one fee's conversions by currency and rate.
type feeBasisFX struct {
	f     *feeFX
	lines map[feeFXKey]*FXLine
	sums  map[feeFXKey][2]decimal.Decimal
}

func (f *feeFX) basis() *feeBasisFX {
	return &feeBasisFX{f: f, lines: map[feeFXKey]*FXLine{}, sums: map[feeFXKey][2]decimal.Decimal{}}
}

// convert converts amount, a figure of entry i (in its currency), at the
// rate in force at the entry's root event and records it.
func (b *feeBasisFX) convert(i int, e store.Entry, amount decimal.Decimal) (decimal.Decimal, error) {
	f := b.f
	tb, err := f.src.table()
	if err != nil {
		return decimal.Zero, fmt.Errorf("statement: %s %s fee basis: rates: %w", f.party, f.period, err)
	}
	code := e.Tx.Currency.Code
	at := f.src.root[i].OccurredAt
	q, err := tb.At(code, f.cur.Code, at, fx.Policy{Source: f.set.Source, Inverse: f.set.Inverse})
	if err != nil {
		return decimal.Zero, fmt.Errorf("statement: %s %s fee basis: %s/%s at %s: %w", f.party, f.period, e.Provider, e.Tx.ID, at.Format(time.RFC3339), err)
	}
	c, err := q.Convert(amount, f.set.Rounding)
	if err != nil {
		return decimal.Zero, err
	}
	k := feeFXKey{code, q.Rate.ID, q.Inverse}
	if b.lines[k] == nil {
		b.lines[k] = rateLine(FXFeeBasis, code, q, f.set.Rounding)
	}
	b.lines[k].Count++
	s := b.sums[k]
	b.sums[k] = [2]decimal.Decimal{s[0].Add(amount), s[1].Add(c)}
	return c, nil
}

// FXLines returns the fee's FX lines by currency, then rate as-of.
func (b *feeBasisFX) FXLines() []FXLine {
	if len(b.lines) == 0 {
		return nil
	}
	keys := make([]feeFXKey, 0, len(b.lines))
	for k := range b.lines {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, c := keys[i], keys[j]
		if a.code != c.code {
			return a.code < c.code
		}
		if ta, tc := b.lines[a].AsOf, b.lines[c].AsOf; !ta.Equal(tc) {
			return ta.Before(tc)
		}
		if a.rate != c.rate {
			return a.rate < c.rate
		}
		return !a.inverse && c.inverse
	})
	out := make([]FXLine, 0, len(keys))
	for _, k := range keys {
		l := *b.lines[k]
		from, _ := money.Lookup(k.code)
		l.Amount, l.Converted = from.Format(b.sums[k][0]), b.f.cur.Format(b.sums[k][1])
		out = append(out, l)
	}
	return out
}
