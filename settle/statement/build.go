package statement

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// Format is the version of the statement encoding.
const Format = 1

// MaxReplayPeriods bounds how many earlier periods Build replays to find the
// opening balance and carries of a party without a prior statement.
const MaxReplayPeriods = 100000

// Statement is one party's statement for one currency and period. Amounts
// are decimal strings with exactly the currency's decimals; FeeLine.Exact is
// the unrounded figure. The JSON encoding (Canonical) is what is hashed and
// signed.
type Statement struct {
	Format   int    `json:"format"`
	Party    string `json:"party"`
	Currency string `json:"currency"`
	Period   string `json:"period"`
	TimeZone string `json:"time_zone,omitempty"` // the zone the period closes in (the party's time_zone); absent: UTC
	// Provisional marks a statement of a period that had not ended when it
	// was computed (AsOf, RFC 3339 UTC): a preview, signed but never part of
	// the party's chain and never to be paid. Final statements omit both.
	Provisional bool         `json:"provisional,omitempty"`
	AsOf        string       `json:"as_of,omitempty"`
	Start       time.Time    `json:"start"`
	End         time.Time    `json:"end"`
	Previous    string       `json:"previous"` // hex SHA-256 of the party's previous statement; "" for its first
	Opening     string       `json:"opening"`
	Activity    []Line       `json:"activity"`
	Gaming      GamingLine   `json:"gaming"`
	Fees        []Fee        `json:"fees"`
	Adjustments []Adjustment `json:"adjustments"`
	Overrides   []Override   `json:"overrides,omitempty"` // partner-tree overrides received (+) or deducted (−)
	FX          []FXLine     `json:"fx,omitempty"`        // shares in other currencies, converted (fx.go)
	Clawbacks   []Clawback   `json:"clawbacks,omitempty"` // CPAs of earlier statements taken back (clawback.go)
	Closing     string       `json:"closing"`
	Payout      *Payout      `json:"payout,omitempty"` // with a minimum payout for the party and currency
	Ledger      []Covered    `json:"ledger"`           // entries of the ledger this statement and its predecessors account for
	RuleSets    []string     `json:"rule_sets"`        // hex hashes of the rule sets behind the entries and fees
	Notes       []string     `json:"notes,omitempty"`
}

// Line is the activity of one transaction type and game category: the
// period's entries in which the party has a share. A rollback or refund
// counts under the category of what it reverses.
type Line struct {
	Type     string `json:"type"`         // the recorded type
	Of       string `json:"of,omitempty"` // for rollbacks and refunds: the type of what they reverse
	Category string `json:"category"`
	Count    int    `json:"count"`
	Volume   string `json:"volume"` // Σ signed transaction amounts
	Amount   string `json:"amount"` // Σ the party's shares
}

// GamingLine is the GGR of the entries of the party's activity (all of their
// amount, not only the party's share).
type GamingLine struct {
	Stakes string `json:"stakes"`
	Wins   string `json:"wins"`
	GGR    string `json:"ggr"`
}

// Fee is one period fee contract of the party applied to the period.
type Fee struct {
	Name      string    `json:"name"`
	Ruleset   string    `json:"ruleset"`
	RuleSet   string    `json:"rule_set"` // hex hash of the version holding the contract
	Basis     string    `json:"basis"`
	Mode      string    `json:"mode"`
	Rounding  string    `json:"rounding"`
	Stakes    string    `json:"stakes"`
	Wins      string    `json:"wins"`
	GGR       string    `json:"ggr"`                             // the period's GGR basis, adjustments included (basis "ggr": the basis)
	Bonuses   string    `json:"bonuses,omitempty"`               // basis "ngr": bonus costs deducted
	Jackpots  string    `json:"jackpot_contributions,omitempty"` // basis "ngr": jackpot contributions deducted
	Taxes     string    `json:"taxes,omitempty"`                 // basis "ngr": taxes deducted
	NGR       string    `json:"ngr,omitempty"`                   // basis "ngr": the basis, GGR − the three above
	Deposits  string    `json:"deposits,omitempty"`              // basis "deposits": the basis, deposits net of their reversals
	CPA       *CPALine  `json:"cpa,omitempty"`                   // basis "cpa": the rule and the players who qualified
	CarriedIn string    `json:"carried_in"`
	Base      string    `json:"base"`
	Tiers     []FeeTier `json:"tiers"`
	Exact     string    `json:"exact"`
	Computed  string    `json:"computed"`
	Maximum   string    `json:"maximum,omitempty"` // the cap, if the contract has one
	Capped    string    `json:"capped"`            // cap line: what the cap took off Computed
	Minimum   string    `json:"minimum"`
	TopUp     string    `json:"top_up"`
	Fee       string    `json:"fee"`
	CarryOut  string    `json:"carry_out"`
	// With a carry_reset contract: the reset rule and the carried negative
	// base dropped at the start of this period ("0.00" when none).
	CarryReset   string `json:"carry_reset,omitempty"`
	CarryDropped string `json:"carry_dropped,omitempty"`
	Entries      int    `json:"entries"` // entries counted in the basis
	// A party settled in the fee's currency: the basis entries in other
	// currencies, each converted at its event's rate (fee_basis lines).
	FX        []FXLine `json:"fx,omitempty"`
	Effective string   `json:"effective_rate,omitempty"` // Computed / Base, 4 decimals of a percent
}

// CPALine is a cpa fee's rule and the first deposits that qualified in the
// period (Players, in ledger order): the basis is len(Players) × Amount.
type CPALine struct {
	Amount     string   `json:"amount"`
	MinDeposit string   `json:"min_deposit"`
	WithinDays int      `json:"within_days,omitempty"`
	Qualified  int      `json:"qualified"`
	Players    []string `json:"players"`
}

// Payout splits the closing balance by the party's minimum payout: Due is
// the whole closing when it reaches Minimum (and is positive), else 0 and
// the closing is Withheld: carried to the next statement in its opening.
// WithheldIn is what the previous statement withheld (part of Opening).
type Payout struct {
	Ruleset    string `json:"ruleset"`
	Minimum    string `json:"minimum"`
	WithheldIn string `json:"withheld_in"`
	Due        string `json:"due"`
	Withheld   string `json:"withheld"`
}

// FeeTier is one tier actually applied: Percent of the slice (From, To].
type FeeTier struct {
	Tier    int    `json:"tier"`
	From    string `json:"from"`
	To      string `json:"to"`
	Percent string `json:"percent"`
	Base    string `json:"base"`
	Exact   string `json:"exact"`
}

// Adjustment is an entry of an earlier period that reached the ledger after
// that period's statement was issued: a prior-period adjustment.
type Adjustment struct {
	Provider   string    `json:"provider"`
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Of         string    `json:"of,omitempty"`
	OccurredAt time.Time `json:"occurred_at"`
	Period     string    `json:"period"` // the period it belongs to by event time
	Partition  uint32    `json:"partition"`
	Index      uint64    `json:"index"`
	Volume     string    `json:"volume"`
	Amount     string    `json:"amount"`
}

// Covered is the ledger size of one partition a statement accounts for.
type Covered struct {
	Partition uint32 `json:"partition"`
	Size      uint64 `json:"size"`
}

// Source is what statements are computed from.
type Source struct {
	Entries []store.Entry // every entry, in ledger order (partition, then leaf index)
	Book    *rules.Book   // fee contracts: those of the version in force at a period's start; nil for none
	Rates   *fx.Table     // exchange rates; nil: built from the fx_rate entries among Entries

	rates    *fx.Table
	ratesErr error

	root []txn.Tx
	size map[uint32]uint64
	fd   *firstDeposits
}

func (s *Source) prepare() {
	if s.root != nil || len(s.Entries) == 0 {
		return
	}
	s.root = Roots(s.Entries)
	s.fd = findFirstDeposits(s.Entries)
	s.size = map[uint32]uint64{}
	for _, e := range s.Entries {
		if e.Index+1 > s.size[e.Partition] {
			s.size[e.Partition] = e.Index + 1
		}
	}
}

// fees returns the fee contracts in force at the period's start for party,
// currency and the period's kind, and the hash of their version.
func (s *Source) fees(p Period, party, currency string) ([]rules.FeeContract, [32]byte, []string) {
	if s.Book == nil {
		return nil, [32]byte{}, nil
	}
	v, err := s.Book.At(p.Start)
	if err != nil {
		return nil, [32]byte{}, nil
	}
	var out []rules.FeeContract
	var notes []string
	for _, f := range v.Fees() {
		if f.Party != party || f.Currency.Code != currency {
			continue
		}
		if f.Period != p.Kind {
			notes = append(notes, fmt.Sprintf("fee %q of ruleset %q is per %s: not applied to a %s statement", f.Name, v.Name, f.Period, p.Kind))
			continue
		}
		out = append(out, f)
	}
	return out, v.Hash(), notes
}

// Parties lists the (party, currency) pairs that have a statement for
// period: every party with a share in an entry that occurred before the
// period's end, every party of a fee contract in force at its start, and
// every partner above one of them that receives an override.
// Sorted by party, then currency.
func Parties(src *Source, period Period) [][2]string {
	seen := map[[2]string]bool{}
	for _, e := range src.Entries {
		if e.Tx.OccurredAt.Before(period.End()) {
			for _, s := range e.Shares {
				seen[[2]string{s.Party, e.Tx.Currency.Code}] = true
			}
		}
	}
	if src.Book != nil {
		if v, err := src.Book.At(period.Start); err == nil {
			for _, f := range v.Fees() {
				if f.Period == period.Kind {
					seen[[2]string{f.Party, f.Currency.Code}] = true
				}
			}
			// A party with a settlement currency has its statement in it.
			for k := range seen {
				if set, ok := v.Settlement(k[0]); ok && set.Currency.Code != k[1] {
					delete(seen, k)
					seen[[2]string{k[0], set.Currency.Code}] = true
				}
			}
			// The partners above a party receive overrides on its commission.
			if t := v.Tree(); t != nil {
				for k := range seen {
					for _, up := range t.Involved(k[0]) {
						seen[[2]string{up, k[1]}] = true
					}
				}
			}
		}
	}
	out := make([][2]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}

// ErrOrder means a statement was asked for a period that is not after the
// prior statement's.
var ErrOrder = errors.New("statements are issued in period order")

// Build computes party's statement in currency for period. prior is the
// party's last issued statement in that currency, or nil: then the opening
// balance and every fee carry are found by replaying the periods before
// period from the party's first entry, as if each had been issued. Previous
// is left empty: the chain (store.go) sets it.
func Build(src *Source, party, currency string, period Period, prior *Statement) (*Statement, error) {
	cur, ok := money.Lookup(currency)
	if !ok {
		return nil, fmt.Errorf("statement: unknown currency %q", currency)
	}
	src.prepare()
	// The period closes at midnight in the party's time zone.
	if src.Book != nil {
		if v, err := src.Book.At(period.Start); err == nil {
			period = period.In(v.TimeZone(party))
		}
	}
	loc := period.Start.Location()
	set, settles := src.settlementOf(party, period)
	if settles && set.Currency.Code != currency {
		return nil, fmt.Errorf("statement: %s is settled in %s: its shares in %s are on its %s statement", party, set.Currency.Code, currency, set.Currency.Code)
	}
	if prior != nil {
		if prior.Party != party || prior.Currency != currency {
			return nil, fmt.Errorf("statement: prior is for %s/%s, not %s/%s", prior.Party, prior.Currency, party, currency)
		}
		pp, err := ParsePeriod(prior.Period)
		if err != nil || pp.Kind != period.Kind || !period.Start.Equal(prior.End) {
			return nil, fmt.Errorf("statement %s after %s: the next statement is for %s: %w", period, prior.Period, pp.Next(), ErrOrder)
		}
		return build(src, cur, party, period, prior, prior.covers)
	}
	// Replay from the first period with an entry of this currency.
	first := period
	for _, e := range src.Entries {
		if e.Tx.Currency.Code == currency || settles {
			if p := PeriodIn(period.Kind, e.Tx.OccurredAt, loc); p.Start.Before(first.Start) {
				first = p
			}
		}
	}
	var virt *Statement
	all := func(e store.Entry) bool { return virt != nil && e.Tx.OccurredAt.Before(virt.End) }
	for p, n := first, 0; p.Start.Before(period.Start); p, n = p.Next(), n+1 {
		if n >= MaxReplayPeriods {
			return nil, fmt.Errorf("statement: more than %d periods before %s to replay", MaxReplayPeriods, period)
		}
		s, err := build(src, cur, party, p, virt, all)
		if err != nil {
			return nil, err
		}
		virt = s
	}
	return build(src, cur, party, period, virt, all)
}

// covers reports whether s (or a statement before it) accounted for e.
func (s *Statement) covers(e store.Entry) bool {
	if !e.Tx.OccurredAt.Before(s.End) {
		return false
	}
	for _, c := range s.Ledger {
		if c.Partition == e.Partition {
			return e.Index < c.Size
		}
	}
	return false
}

func build(src *Source, cur money.Currency, party string, period Period, prior *Statement, covered func(store.Entry) bool) (*Statement, error) {
	end := period.End()
	st := &Statement{
		Format: Format, Party: party, Currency: cur.Code, Period: period.String(), Start: period.Start.UTC(), End: end.UTC(),
		Activity: []Line{}, Fees: []Fee{}, Adjustments: []Adjustment{}, RuleSets: []string{},
	}
	if loc := period.Start.Location(); loc != time.UTC {
		st.TimeZone = loc.String()
	}
	opening := decimal.Zero
	if prior != nil {
		var err error
		if opening, err = decimal.NewFromString(prior.Closing); err != nil {
			return nil, fmt.Errorf("statement: prior closing %q: %w", prior.Closing, err)
		}
	}
	ruleSets := map[string]bool{}
	type lineKey struct{ typ, of, cat string }
	lines := map[lineKey]*Line{}
	lineSum := map[lineKey][2]decimal.Decimal{}
	var gaming Gaming
	total := opening
	counted := func(e store.Entry) bool {
		return e.Tx.Currency.Code == cur.Code && e.Tx.OccurredAt.Before(end) && !covered(e)
	}
	for i, e := range src.Entries {
		if !counted(e) {
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
		ruleSets[hex.EncodeToString(e.RuleSet[:])] = true
		total = total.Add(share)
		root := src.root[i]
		of := ""
		if e.Tx.Type.Reversal() && root.Type != e.Tx.Type {
			of = string(root.Type)
		}
		if e.Tx.OccurredAt.Before(period.Start) {
			st.Adjustments = append(st.Adjustments, Adjustment{
				Provider: e.Provider, ID: e.Tx.ID, Type: string(e.Tx.Type), Of: of, OccurredAt: e.Tx.OccurredAt,
				Period: PeriodIn(period.Kind, e.Tx.OccurredAt, period.Start.Location()).String(), Partition: e.Partition, Index: e.Index,
				Volume: cur.Format(e.Net), Amount: cur.Format(share),
			})
			continue
		}
		gaming.Add(root.Type, e)
		k := lineKey{string(e.Tx.Type), of, root.Category}
		if lines[k] == nil {
			lines[k] = &Line{Type: k.typ, Of: k.of, Category: k.cat}
		}
		lines[k].Count++
		s := lineSum[k]
		lineSum[k] = [2]decimal.Decimal{s[0].Add(e.Net), s[1].Add(share)}
	}
	keys := make([]lineKey, 0, len(lines))
	for k := range lines {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		if a.of != b.of {
			return a.of < b.of
		}
		return a.cat < b.cat
	})
	for _, k := range keys {
		l := lines[k]
		l.Volume, l.Amount = cur.Format(lineSum[k][0]), cur.Format(lineSum[k][1])
		st.Activity = append(st.Activity, *l)
	}
	st.Gaming = GamingLine{cur.Format(gaming.Stakes), cur.Format(gaming.Wins), cur.Format(gaming.GGR)}

	carryOf := func(name string) (decimal.Decimal, error) {
		if prior == nil {
			return decimal.Zero, nil
		}
		for _, pf := range prior.Fees {
			if pf.Name == name {
				c, err := decimal.NewFromString(pf.CarryOut)
				if err != nil {
					return decimal.Zero, fmt.Errorf("statement: prior fee %q carry %q: %w", pf.Name, pf.CarryOut, err)
				}
				return c, nil
			}
		}
		return decimal.Zero, nil
	}
	inPeriod := func(e store.Entry) bool { return e.Tx.OccurredAt.Before(end) && !covered(e) }
	fees, own, notes, err := periodFees(src, cur, party, period, carryOf, inPeriod)
	if err != nil {
		return nil, err
	}
	st.Notes = notes
	for _, f := range fees {
		ruleSets[f.RuleSet] = true
		total = total.Add(decimal.RequireFromString(f.Fee))
		st.Fees = append(st.Fees, f)
	}
	ovs, err := overrides(src, cur, party, period, own)
	if err != nil {
		return nil, err
	}
	for _, o := range ovs {
		ruleSets[o.RuleSet] = true
		total = total.Add(decimal.RequireFromString(o.Amount))
		st.Overrides = append(st.Overrides, o)
	}
	st.Clawbacks = clawbacks(src, cur, party, period, prior)
	for _, c := range st.Clawbacks {
		ruleSets[c.RuleSet] = true
	}
	total = total.Add(clawbackTotal(st.Clawbacks))

	if set, ok := src.settlementOf(party, period); ok && set.Currency.Code == cur.Code {
		lines, sum, err := fxLines(src, cur, party, period, set, covered)
		if err != nil {
			return nil, err
		}
		st.FX = lines
		total = total.Add(sum)
	}

	st.Opening = cur.Format(opening)
	st.Closing = cur.Format(total)
	if src.Book != nil {
		if v, err := src.Book.At(period.Start); err == nil {
			if p, ok := v.Payout(party, cur.Code); ok {
				due, withheld := p.Split(total)
				in := cur.Format(decimal.Zero)
				if prior != nil && prior.Payout != nil {
					in = prior.Payout.Withheld
				}
				st.Payout = &Payout{Ruleset: v.Name, Minimum: cur.Format(p.Minimum), WithheldIn: in, Due: cur.Format(due), Withheld: cur.Format(withheld)}
			}
		}
	}
	for p, n := range src.size {
		st.Ledger = append(st.Ledger, Covered{p, n})
	}
	if prior != nil {
		// A replayed prior may cover nothing explicitly; keep partitions it
		// named that this source lacks (never shrink what was accounted for).
		for _, c := range prior.Ledger {
			if _, ok := src.size[c.Partition]; !ok {
				st.Ledger = append(st.Ledger, c)
			}
		}
	}
	sort.Slice(st.Ledger, func(i, j int) bool { return st.Ledger[i].Partition < st.Ledger[j].Partition })
	if st.Ledger == nil {
		st.Ledger = []Covered{}
	}
	for h := range ruleSets {
		st.RuleSets = append(st.RuleSets, h)
	}
	sort.Strings(st.RuleSets)
	if err := st.check(cur); err != nil {
		panic(err.Error()) // arithmetic above is broken: never issue such a statement
	}
	return st, nil
}

// check asserts closing = opening + Σ activity + Σ adjustments + Σ fees +
// Σ overrides + Σ FX lines + Σ clawbacks.
func (s *Statement) check(cur money.Currency) error {
	sum := decimal.RequireFromString(s.Opening)
	for _, l := range s.Activity {
		sum = sum.Add(decimal.RequireFromString(l.Amount))
	}
	for _, a := range s.Adjustments {
		sum = sum.Add(decimal.RequireFromString(a.Amount))
	}
	for _, f := range s.Fees {
		sum = sum.Add(decimal.RequireFromString(f.Fee))
	}
	for _, o := range s.Overrides {
		sum = sum.Add(decimal.RequireFromString(o.Amount))
	}
	for _, l := range s.FX {
		sum = sum.Add(decimal.RequireFromString(l.Converted))
	}
	sum = sum.Add(clawbackTotal(s.Clawbacks))
	if !sum.Equal(decimal.RequireFromString(s.Closing)) {
		return fmt.Errorf("statement: %s %s %s: opening + lines = %s, closing %s", s.Party, s.Currency, s.Period, cur.Format(sum), s.Closing)
	}
	return nil
}
