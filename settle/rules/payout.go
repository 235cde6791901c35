package rules

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
)

// Minimum payouts: a party is paid a period's balance only when it reaches
// the minimum; below it the balance is withheld and carried to the next
// period (not topped up: a fee's minimum is a different thing). Written as
// payout "<party>" { currency = "EUR" minimum = "100.00" } in a ruleset; the
// statement shows the balance due and the amount withheld (settle/statement).

// Payout is one party's payout terms in one currency.
type Payout struct {
	Party    string
	Currency money.Currency
	Minimum  decimal.Decimal // ≥ 0, fits the currency
}

// Split divides a period's closing balance into what is due and what is
// withheld: all of it is due when it reaches Minimum, else none; a balance
// ≤ 0 is never due. due + withheld = closing exactly.
func (p Payout) Split(closing decimal.Decimal) (due, withheld decimal.Decimal) {
	if closing.IsPositive() && closing.GreaterThanOrEqual(p.Minimum) {
		return closing, decimal.Zero
	}
	return decimal.Zero, closing
}

// Payout returns the payout terms of party in currency, if the version has any.
func (v *Version) Payout(party, currency string) (Payout, bool) {
	for _, p := range v.payouts {
		if p.Party == party && p.Currency.Code == currency {
			return p, true
		}
	}
	return Payout{}, false
}

type payoutSrc struct {
	Party    string `hcl:"party,label" json:"party"`
	Currency string `hcl:"currency" json:"currency"`
	Minimum  string `hcl:"minimum" json:"minimum"`

	DefRange      hcl.Range `hcl:",def_range" json:"-"`
	CurrencyRange hcl.Range `hcl:"currency,attr_value_range" json:"-"`
	MinimumRange  hcl.Range `hcl:"minimum,attr_value_range" json:"-"`
}

func compilePayouts(c *checker, src *versionSrc, vpath string) []Payout {
	sort.SliceStable(src.Payouts, func(i, j int) bool {
		a, b := src.Payouts[i], src.Payouts[j]
		return a.Party < b.Party || (a.Party == b.Party && a.Currency < b.Currency)
	})
	var out []Payout
	seen := map[[2]string]string{}
	for _, ps := range src.Payouts {
		ppath := fmt.Sprintf("%s payout %q", vpath, ps.Party)
		pos := at(ppath, ps.DefRange)
		checkParty(c, pos, "payout", ps.Party)
		k := [2]string{ps.Party, ps.Currency}
		if prev, ok := seen[k]; ok {
			c.add(pos, "payout", fmt.Sprintf("payout of %q in %s already defined at %s", ps.Party, ps.Currency, prev), "one payout block per party and currency")
		}
		seen[k] = pos
		cur, ok := money.Lookup(ps.Currency)
		if !ok {
			c.add(at(ppath, ps.CurrencyRange, ps.DefRange), "currency", fmt.Sprintf("%q is not a known ISO 4217 currency code", ps.Currency), `name the currency of the balance, such as currency = "EUR"`)
			continue
		}
		var m decimal.Decimal
		mpos := at(ppath, ps.MinimumRange, ps.DefRange)
		if ps.Minimum, m, ok = checkDecimal(c, mpos, "minimum", ps.Minimum); !ok {
			continue
		}
		if !cur.Fits(m) {
			c.add(mpos, "minimum", fmt.Sprintf("%s has more decimals than %s allows (%d)", m, cur.Code, cur.Exponent), "round the minimum payout to the currency's minor unit")
			continue
		}
		out = append(out, Payout{Party: ps.Party, Currency: cur, Minimum: m})
	}
	return out
}
