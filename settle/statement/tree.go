package statement

import (
	"encoding/hex"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
)

// Override is one partner-tree override on a statement: received by the
// statement's party (Amount > 0) or deducted from its commission because
// the party below pays its parent (PaidBy "below", Amount < 0).
type Override struct {
	Name     string `json:"name"`
	Ruleset  string `json:"ruleset"`
	RuleSet  string `json:"rule_set"` // hex hash of the version holding the override
	Party    string `json:"party"`    // who receives it
	Of       string `json:"of"`       // whose commission is the base
	Percent  string `json:"percent"`
	PaidBy   string `json:"paid_by"` // "operator" (on top) or "below" (deducted from Of)
	Rounding string `json:"rounding"`
	Base     string `json:"base"`   // Of's gross commission of the period
	Exact    string `json:"exact"`  // Base × Percent / 100, unrounded
	Amount   string `json:"amount"` // signed for this statement's party
}

// periodFees computes party's fee contracts for period (those in force at
// its start): the statement lines, their total (the party's own
// commission) and notes. carryOf gives a fee's carried-in amount; inPeriod
// selects the entries of the basis by time and coverage, of any currency:
// the basis holds those in cur, and for a party settled in cur also those
// in other currencies, each converted at its event's rate (feeFX).
func periodFees(src *Source, cur money.Currency, party string, period Period, carryOf func(string) (decimal.Decimal, error), inPeriod func(store.Entry) bool) ([]Fee, decimal.Decimal, []string, error) {
	fees, vhash, notes := src.fees(period, party, cur.Code)
	own := decimal.Zero
	out := make([]Fee, 0, len(fees))
	var conv *feeFX
	if set, ok := src.settlementOf(party, period); ok && set.Currency.Code == cur.Code && len(fees) > 0 {
		conv = &feeFX{src: src, cur: cur, party: party, period: period, set: set}
	}
	for _, fc := range fees {
		var basis Gaming
		n := 0
		var cpa *CPALine
		if fc.Basis == rules.BasisCPA && fc.CPA != nil {
			cpa = &CPALine{Amount: cur.Format(fc.CPA.Amount), MinDeposit: cur.Format(fc.CPA.MinDeposit), WithinDays: fc.CPA.WithinDays, Players: []string{}}
		}
		var fxb *feeBasisFX
		if conv != nil {
			fxb = conv.basis()
		}
		for i, e := range src.Entries {
			foreign := e.Tx.Currency.Code != cur.Code
			if foreign && fxb == nil || e.Tx.Type.Operator() || !inPeriod(e) || !fc.SelectsAnyCurrency(e.Provider, src.root[i]) {
				continue
			}
			if cpa != nil {
				if src.fd == nil {
					continue
				}
				ok, err := src.fd.qualifies(src.Entries, i, *fc.CPA, func(net decimal.Decimal) (decimal.Decimal, error) {
					if !foreign {
						return net, nil
					}
					return fxb.convert(i, e, net) // the deposit, net of its reversals, at its own rate
				})
				if err != nil {
					return nil, decimal.Zero, nil, err
				}
				if ok {
					cpa.Players = append(cpa.Players, e.Tx.Player)
					n++
				}
				continue
			}
			if foreign {
				c, err := fxb.convert(i, e, e.Net)
				if err != nil {
					return nil, decimal.Zero, nil, err
				}
				e.Net = c
			}
			basis.Add(src.root[i].Type, e)
			n++
		}
		var value decimal.Decimal
		if cpa != nil {
			cpa.Qualified = len(cpa.Players)
			value = fc.CPA.Amount.Mul(decimal.NewFromInt(int64(cpa.Qualified)))
		} else {
			value = basis.Basis(fc.Basis)
		}
		carry, dropped := decimal.Zero, decimal.Zero
		if fc.CarryNegative {
			c, err := carryOf(fc.Name)
			if err != nil {
				return nil, decimal.Zero, nil, err
			}
			carry = c
			if carry.IsNegative() && fc.ResetsAt(period.Prev().Start, period.Start) {
				carry, dropped = decimal.Zero, c
			}
		}
		r, err := fc.Compute(value, carry)
		if err != nil {
			return nil, decimal.Zero, nil, fmt.Errorf("statement %s %s %s: %w", party, cur.Code, period, err)
		}
		f := Fee{
			Name: fc.Name, Ruleset: fc.Ruleset, RuleSet: hex.EncodeToString(vhash[:]), Basis: fc.Basis, Mode: string(fc.Mode), Rounding: string(fc.Rounding),
			Stakes: cur.Format(basis.Stakes), Wins: cur.Format(basis.Wins), GGR: cur.Format(basis.GGR),
			CarriedIn: cur.Format(r.CarriedIn), Base: cur.Format(r.Base), Tiers: []FeeTier{}, Exact: r.Exact.String(),
			Computed: cur.Format(r.Computed), Capped: cur.Format(r.Capped), Minimum: cur.Format(fc.MinimumFee), TopUp: cur.Format(r.TopUp),
			Fee: cur.Format(r.Fee), CarryOut: cur.Format(r.CarryOut), Entries: n,
		}
		if fc.Basis == rules.BasisNGR {
			f.Bonuses, f.Jackpots, f.Taxes, f.NGR = cur.Format(basis.Bonuses), cur.Format(basis.Jackpots), cur.Format(basis.Taxes), cur.Format(r.Basis)
		}
		switch {
		case cpa != nil:
			f.CPA = cpa
		case fc.Basis == rules.BasisDeposits:
			f.Deposits = cur.Format(basis.Deposits)
		}
		if fxb != nil {
			f.FX = fxb.FXLines()
		}
		if fc.MaximumFee != nil {
			f.Maximum = cur.Format(*fc.MaximumFee)
		}
		if fc.CarryReset != rules.CarryResetNever {
			f.CarryReset, f.CarryDropped = fc.CarryReset, cur.Format(dropped)
		}
		for _, l := range r.Lines {
			f.Tiers = append(f.Tiers, FeeTier{Tier: l.Tier, From: cur.Format(l.From), To: cur.Format(l.To), Percent: l.Percent.String(), Base: cur.Format(l.Base), Exact: l.Exact.String()})
		}
		if r.Base.IsPositive() {
			f.Effective = r.Computed.Mul(decimal.NewFromInt(100)).DivRound(r.Base, 4).String() + "%"
		}
		own = own.Add(r.Fee)
		out = append(out, f)
	}
	return out, own, notes, nil
}

// overrides gives the override lines of party's statement for period: what
// it receives on the commission of the partner below it and what its own
// commission pays its parent when the override is deducted. own is party's
// own commission of this statement; the commissions of the partners below
// it are replayed from the ledger (replayOwn).
func overrides(src *Source, cur money.Currency, party string, period Period, own decimal.Decimal) ([]Override, error) {
	if src.Book == nil {
		return nil, nil
	}
	v, err := src.Book.At(period.Start)
	if err != nil {
		return nil, nil
	}
	t := v.Tree()
	if _, ok := t.Partner(party); !ok {
		return nil, nil
	}
	owns := map[string]decimal.Decimal{party: own}
	for _, q := range t.Below(party) {
		if q == party {
			continue
		}
		o, err := replayOwn(src, cur, q, period)
		if err != nil {
			return nil, err
		}
		owns[q] = o
	}
	res, err := t.Compute(cur, owns)
	if err != nil {
		return nil, fmt.Errorf("statement %s %s %s: %w", party, cur.Code, period, err)
	}
	h := v.Hash()
	var out []Override
	for _, r := range res.Overrides {
		var amt decimal.Decimal
		switch {
		case r.Party == party:
			amt = r.Amount
		case r.Of == party && r.PaidBy == rules.PaidByBelow:
			amt = r.Amount.Neg()
		default:
			continue
		}
		out = append(out, Override{
			Name: r.Name, Ruleset: r.Ruleset, RuleSet: hex.EncodeToString(h[:]), Party: r.Party, Of: r.Of,
			Percent: r.Percent.String(), PaidBy: r.PaidBy, Rounding: string(r.Rounding),
			Base: cur.Format(r.Base), Exact: r.Exact.String(), Amount: cur.Format(amt),
		})
	}
	return out, nil
}

// replayOwn is party's own commission (Σ of its fees) for period, replayed
// from its first period by event time with the fee carries threaded, as if
// every statement before had been issued at its period's end.
func replayOwn(src *Source, cur money.Currency, party string, period Period) (decimal.Decimal, error) {
	first := period
	set, settles := src.settlementOf(party, period)
	settles = settles && set.Currency.Code == cur.Code
	for _, e := range src.Entries {
		if e.Tx.Currency.Code == cur.Code || settles {
			if p := PeriodIn(period.Kind, e.Tx.OccurredAt, period.Start.Location()); p.Start.Before(first.Start) {
				first = p
			}
		}
	}
	carries := map[string]decimal.Decimal{}
	carryOf := func(name string) (decimal.Decimal, error) { return carries[name], nil }
	for p, n := first, 0; ; p, n = p.Next(), n+1 {
		if n >= MaxReplayPeriods {
			return decimal.Zero, fmt.Errorf("statement: more than %d periods before %s to replay", MaxReplayPeriods, period)
		}
		start, end, isFirst := p.Start, p.End(), p.Start.Equal(first.Start)
		inPeriod := func(e store.Entry) bool {
			return e.Tx.OccurredAt.Before(end) && (isFirst || !e.Tx.OccurredAt.Before(start))
		}
		fees, own, _, err := periodFees(src, cur, party, p, carryOf, inPeriod)
		if err != nil {
			return decimal.Zero, err
		}
		if !p.Start.Before(period.Start) {
			return own, nil
		}
		carries = map[string]decimal.Decimal{}
		for _, f := range fees {
			carries[f.Name] = decimal.RequireFromString(f.CarryOut)
		}
	}
}
