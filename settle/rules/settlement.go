package rules

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"

	"github.com/tally-mesh/tally/money"
)

// Settlement currencies: a party's contract may be settled in another
// currency than its transactions'. Written as
//
//	settlement "studio-b" {
//	  currency      = "USD"        # the party is settled and paid in USD
//	  rounding      = "half_even"  # of every conversion; optional, default half_even
//	  source        = "ecb"        # only rates of this source; optional, any source
//	  allow_inverse = true         # may use a USD/EUR rate as 1 ÷ rate for EUR→USD; optional, default false
//	}
//
// Every share the party earns or bears in another currency is accrued in
// the settlement currency at the rate in force at its event and settled at
// the rate in force at the statement's close; the FX difference is its own
// statement line (settle/statement, settle/fx). Rates are fx_rate ledger
// entries; without one in force the statement is refused.

// DefaultFXRounding is the rounding of a settlement's conversions when the
// block names none (it is spelled out in the canonical form).
const DefaultFXRounding = money.HalfEven

// Settlement is one party's settlement currency and how it converts.
type Settlement struct {
	Party    string
	Currency money.Currency
	Rounding money.Rounding
	Source   string // "" for any source
	Inverse  bool   // inverse pairs allowed
}

// Settlement returns party's settlement terms, if the version has any.
func (v *Version) Settlement(party string) (Settlement, bool) {
	for _, s := range v.settlements {
		if s.Party == party {
			return s, true
		}
	}
	return Settlement{}, false
}

// Settlements returns every settlement of the version, sorted by party.
func (v *Version) Settlements() []Settlement { return append([]Settlement(nil), v.settlements...) }

type settlementSrc struct {
	Party        string `hcl:"party,label" json:"party"`
	Currency     string `hcl:"currency" json:"currency"`
	Rounding     string `hcl:"rounding,optional" json:"rounding"`
	Source       string `hcl:"source,optional" json:"source,omitempty"`
	AllowInverse bool   `hcl:"allow_inverse,optional" json:"allow_inverse,omitempty"`

	DefRange      hcl.Range `hcl:",def_range" json:"-"`
	CurrencyRange hcl.Range `hcl:"currency,attr_value_range" json:"-"`
	RoundingRange hcl.Range `hcl:"rounding,attr_value_range" json:"-"`
	SourceRange   hcl.Range `hcl:"source,attr_value_range" json:"-"`
}

// compileSettlements runs after fees, payouts and declared parties: a party
// settled in one currency has its period fees and payout terms in that
// currency. A fee's basis then counts the entries of every currency, those
// in another currency converted at their event's rate (settle/statement);
// a fee's own figures (tiers, minimum, cap, CPA amount) are never
// converted, so they must be written in the settlement currency.
func compileSettlements(c *checker, src *versionSrc, vpath string, v *Version) []Settlement {
	sort.SliceStable(src.Settlements, func(i, j int) bool { return src.Settlements[i].Party < src.Settlements[j].Party })
	var out []Settlement
	seen := map[string]string{}
	for _, ss := range src.Settlements {
		spath := fmt.Sprintf("%s settlement %q", vpath, ss.Party)
		pos := at(spath, ss.DefRange)
		checkParty(c, pos, "settlement", ss.Party)
		if ss.Party == refProvider || ss.Party == refAffiliate {
			c.add(pos, "settlement", fmt.Sprintf("%q is a reference, not a party", ss.Party), `name the party, such as settlement "studio-b"`)
			continue
		}
		if v.declared != nil && !v.declared[ss.Party] {
			c.add(pos, "settlement", fmt.Sprintf("party %q is not declared", ss.Party), fmt.Sprintf(`this ruleset declares its parties: add party %q {} if it is not a typo`, ss.Party))
		}
		if prev, ok := seen[ss.Party]; ok {
			c.add(pos, "settlement", fmt.Sprintf("settlement of %q already defined at %s", ss.Party, prev), "one settlement block per party")
		}
		seen[ss.Party] = pos
		cur, ok := money.Lookup(ss.Currency)
		if !ok {
			c.add(at(spath, ss.CurrencyRange, ss.DefRange), "currency", fmt.Sprintf("%q is not a known ISO 4217 currency code", ss.Currency), `name the currency the party is settled in, such as currency = "USD"`)
			continue
		}
		if ss.Rounding == "" {
			ss.Rounding = string(DefaultFXRounding)
		}
		mode, ok := checkRounding(c, at(spath, ss.RoundingRange, ss.DefRange), ss.Rounding)
		if !ok {
			continue
		}
		if ss.Source != "" {
			if msg := badText(ss.Source); msg != "" {
				c.add(at(spath, ss.SourceRange, ss.DefRange), "source", fmt.Sprintf("source %q %s", ss.Source, msg), `name the rate source as posted, such as source = "ecb"`)
				continue
			}
		}
		for _, f := range v.fees {
			if f.Party == ss.Party && f.Currency.Code != cur.Code {
				c.add(pos, "currency", fmt.Sprintf("fee %q of %q is in %s but the party is settled in %s", f.Name, ss.Party, f.Currency.Code, cur.Code),
					"write the party's fees in its settlement currency: tiers, minimum, cap and CPA amounts are not converted (the basis is: its entries in other currencies count at their event's rate)")
			}
		}
		for _, p := range v.payouts {
			if p.Party == ss.Party && p.Currency.Code != cur.Code {
				c.add(pos, "currency", fmt.Sprintf("payout of %q is in %s but the party is settled in %s", ss.Party, p.Currency.Code, cur.Code),
					"write the minimum payout in the settlement currency")
			}
		}
		out = append(out, Settlement{Party: ss.Party, Currency: cur, Rounding: mode, Source: ss.Source, Inverse: ss.AllowInverse})
	}
	return out
}
