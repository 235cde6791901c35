package rules

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
)

// Partner trees: parties in a hierarchy (master agent → sub-agent →
// affiliate), declared per ruleset, and overrides: a percent of a partner's
// commission paid to its parent, either by the operator on top or deducted
// from the partner below. A partner's own commission comes from its fee
// contracts (a fee whose affiliates condition names the partner is what
// attributes the players' activity to it); the overrides are computed from
// those figures once per period, bottom-up. Pure and exact; see docs/fees.md
// "Partner trees".

// MaxPartnerDepth is the deepest tree a ruleset may declare (a root partner
// has depth 1). A ruleset may lower it with partner_depth.
const MaxPartnerDepth = 16

// MaxPartners bounds the partners of one ruleset.
const MaxPartners = 10000

// Who pays an override.
const (
	// PaidByOperator: the operator pays the override on top; the partner
	// below keeps its whole commission.
	PaidByOperator = "operator"
	// PaidByBelow: the override is deducted from the commission of the
	// partner below (each level pays the level above out of its own share).
	PaidByBelow = "below"
)

// Partner is one node of a partner tree.
type Partner struct {
	Name   string
	Parent string // "" for a root
	Depth  int    // 1 for a root
}

// Override is a percent of partner Of's commission paid to Party, Of's
// parent. Commission = Of's own fees + the overrides Of receives, before
// anything Of pays up the tree.
type Override struct {
	Ruleset  string
	Name     string
	Party    string // who is paid: Of's parent
	Of       string // whose commission is the base
	Percent  decimal.Decimal
	PaidBy   string // PaidByOperator or PaidByBelow
	Rounding money.Rounding
}

// Tree is a version's partners and overrides.
type Tree struct {
	Depth     int       // the depth limit in force
	Partners  []Partner // sorted by name
	Overrides []Override

	byName map[string]int
	onOf   map[string]int // Of → index of its override
}

// Tree returns the version's partner tree, or nil when it declares none.
func (v *Version) Tree() *Tree { return v.tree }

// Partner looks a partner up by name.
func (t *Tree) Partner(name string) (Partner, bool) {
	if t == nil {
		return Partner{}, false
	}
	i, ok := t.byName[name]
	if !ok {
		return Partner{}, false
	}
	return t.Partners[i], true
}

// Below lists name and every partner under it, deepest first.
func (t *Tree) Below(name string) []string {
	if t == nil {
		return nil
	}
	var out []string
	for _, p := range t.order() {
		for q := p; q != ""; q = t.Partners[t.byName[q]].Parent {
			if q == name {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// Involved lists the parties whose statement an override touches when
// party has a commission: party's ancestors that receive an override on
// it, directly or through the levels between.
func (t *Tree) Involved(party string) []string {
	if t == nil {
		return nil
	}
	var out []string
	for q := party; ; {
		i, ok := t.onOf[q]
		if !ok {
			return out
		}
		q = t.Overrides[i].Party
		out = append(out, q)
	}
}

// order is every partner, deepest first, then by name: the order
// commissions flow up the tree.
func (t *Tree) order() []string {
	ps := make([]Partner, len(t.Partners))
	copy(ps, t.Partners)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Depth > ps[j].Depth })
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// OverrideResult is one override applied to a period.
type OverrideResult struct {
	Override
	Base   decimal.Decimal // Of's commission (gross); the override is 0 when it is ≤ 0
	Exact  decimal.Decimal // Base × Percent / 100, unrounded
	Amount decimal.Decimal // Exact rounded once to the currency with the override's rounding
}

// TreeResult is a period's commissions through the tree.
type TreeResult struct {
	Own       map[string]decimal.Decimal // as given: each partner's own fees
	Gross     map[string]decimal.Decimal // Own + overrides received
	Net       map[string]decimal.Decimal // Gross − overrides deducted from it: what the partner is paid
	Overrides []OverrideResult           // bottom-up
}

// Compute runs one period's commissions up the tree. own is each party's
// own commission (Σ of its fees) in cur; a partner absent from own has 0.
// Overrides are computed bottom-up: a partner's gross commission is its own
// plus every override it receives; its parent's override is Percent of that
// gross when positive, rounded once to cur's minor unit with the override's
// rounding; PaidByBelow deducts it from the partner's net. Every figure
// must fit cur.
func (t *Tree) Compute(cur money.Currency, own map[string]decimal.Decimal) (TreeResult, error) {
	r := TreeResult{Own: own, Gross: map[string]decimal.Decimal{}, Net: map[string]decimal.Decimal{}}
	if t == nil {
		return r, nil
	}
	for p, a := range own {
		if !cur.Fits(a) {
			return TreeResult{}, fmt.Errorf("partner %q: commission %s has more than %d decimals for %s: %w", p, a, cur.Exponent, cur.Code, ErrFeeInput)
		}
		r.Gross[p], r.Net[p] = a, a
	}
	for _, p := range t.order() {
		i, ok := t.onOf[p]
		if !ok {
			continue
		}
		o := t.Overrides[i]
		base := r.Gross[p]
		exact := decimal.Zero
		if base.IsPositive() {
			exact = base.Mul(o.Percent).Shift(-2)
		}
		amt := money.Round(exact, cur.Exponent, o.Rounding)
		r.Overrides = append(r.Overrides, OverrideResult{Override: o, Base: base, Exact: exact, Amount: amt})
		r.Gross[o.Party] = r.Gross[o.Party].Add(amt)
		r.Net[o.Party] = r.Net[o.Party].Add(amt)
		if o.PaidBy == PaidByBelow {
			r.Net[p] = r.Net[p].Sub(amt)
		}
	}
	return r, nil
}

// HCL and canonical form.

type partnerSrc struct {
	Name     string `hcl:"name,label" json:"name"`
	Parent   string `hcl:"parent,optional" json:"parent,omitempty"`
	TimeZone string `hcl:"time_zone,optional" json:"time_zone,omitempty"`

	DefRange      hcl.Range `hcl:",def_range" json:"-"`
	ParentRange   hcl.Range `hcl:"parent,attr_value_range" json:"-"`
	TimeZoneRange hcl.Range `hcl:"time_zone,attr_value_range" json:"-"`
}

type overrideSrc struct {
	Name     string `hcl:"name,label" json:"name"`
	Party    string `hcl:"party" json:"party"`
	Of       string `hcl:"of" json:"of"`
	Percent  string `hcl:"percent" json:"percent"`
	PaidBy   string `hcl:"paid_by" json:"paid_by"`
	Rounding string `hcl:"rounding,optional" json:"rounding"`

	DefRange      hcl.Range `hcl:",def_range" json:"-"`
	PartyRange    hcl.Range `hcl:"party,attr_value_range" json:"-"`
	OfRange       hcl.Range `hcl:"of,attr_value_range" json:"-"`
	PercentRange  hcl.Range `hcl:"percent,attr_value_range" json:"-"`
	PaidByRange   hcl.Range `hcl:"paid_by,attr_value_range" json:"-"`
	RoundingRange hcl.Range `hcl:"rounding,attr_value_range" json:"-"`
}

// compileTree validates and normalizes the partner blocks of src in place
// (sorted by name, roundings spelled out) and builds the tree; nil when
// the version declares no partner, override or depth.
func compileTree(c *checker, src *versionSrc, vpath string) *Tree {
	if len(src.Partners) == 0 && len(src.Overrides) == 0 && src.PartnerDepth == "" {
		return nil
	}
	vpos := at(vpath, src.DefRange)
	t := &Tree{Depth: MaxPartnerDepth, byName: map[string]int{}, onOf: map[string]int{}}
	if src.PartnerDepth != "" {
		where := at(vpath, src.DepthRange, src.DefRange)
		d, err := strconv.Atoi(src.PartnerDepth)
		if err != nil || d < 1 || d > MaxPartnerDepth || strconv.Itoa(d) != src.PartnerDepth {
			c.add(where, "partner_depth", fmt.Sprintf("%q is not a whole number from 1 to %d", src.PartnerDepth, MaxPartnerDepth), `write the deepest level the tree may have, such as partner_depth = "3" (master agent → sub-agent → affiliate)`)
		} else {
			t.Depth = d
		}
	}
	if len(src.Partners) > MaxPartners {
		c.add(vpos, "partner", fmt.Sprintf("%d partners, more than %d", len(src.Partners), MaxPartners), "split the tree over several rulesets")
		return nil
	}
	sort.SliceStable(src.Partners, func(i, j int) bool { return src.Partners[i].Name < src.Partners[j].Name })
	parent := map[string]string{}
	pos := map[string]string{}
	for _, p := range src.Partners {
		ppos := at(fmt.Sprintf("%s partner %q", vpath, p.Name), p.DefRange)
		checkName(c, ppos, "partner", p.Name)
		if prev, ok := pos[p.Name]; ok {
			c.add(ppos, "partner", fmt.Sprintf("partner %q already declared at %s", p.Name, prev), "declare every partner once")
			continue
		}
		pos[p.Name] = ppos
		parent[p.Name] = p.Parent
	}
	for _, p := range src.Partners {
		if p.Parent == "" {
			continue
		}
		where := at(fmt.Sprintf("%s partner %q", vpath, p.Name), p.ParentRange, p.DefRange)
		switch {
		case p.Parent == p.Name:
			c.add(where, "parent", fmt.Sprintf("partner %q is its own parent", p.Name), "name the partner above it, or remove parent for a root")
		case pos[p.Parent] == "":
			c.add(where, "parent", fmt.Sprintf("parent %q is not a declared partner", p.Parent), fmt.Sprintf(`declare it: partner %q {}`, p.Parent))
		}
	}
	depth := map[string]int{}
	for _, p := range src.Partners {
		if _, done := depth[p.Name]; done {
			continue
		}
		// Walk up; a walk longer than the partners is a cycle.
		d, q, cyc := 1, p.Name, false
		for parent[q] != "" && pos[parent[q]] != "" {
			q = parent[q]
			d++
			if d > len(src.Partners) {
				cyc = true
				break
			}
		}
		if cyc {
			c.add(pos[p.Name], "parent", fmt.Sprintf("partner %q is in a cycle of parents", p.Name), "a tree has a root: remove one parent of the cycle")
			depth[p.Name] = 0
			continue
		}
		depth[p.Name] = d
		if d > t.Depth {
			c.add(pos[p.Name], "partner", fmt.Sprintf("partner %q is at depth %d, deeper than %d", p.Name, d, t.Depth), `flatten the tree or raise partner_depth (at most `+strconv.Itoa(MaxPartnerDepth)+`)`)
		}
	}
	for _, p := range src.Partners {
		if _, dup := t.byName[p.Name]; dup {
			continue
		}
		t.byName[p.Name] = len(t.Partners)
		t.Partners = append(t.Partners, Partner{Name: p.Name, Parent: p.Parent, Depth: depth[p.Name]})
	}

	sort.SliceStable(src.Overrides, func(i, j int) bool { return src.Overrides[i].Name < src.Overrides[j].Name })
	names := map[string]string{}
	for _, o := range src.Overrides {
		opath := fmt.Sprintf("%s override %q", vpath, o.Name)
		opos := at(opath, o.DefRange)
		checkName(c, opos, "override", o.Name)
		if prev, ok := names[o.Name]; ok {
			c.add(opos, "override", fmt.Sprintf("override %q already defined at %s", o.Name, prev), "give every override of a ruleset a unique name")
		}
		names[o.Name] = opos
		if o.Rounding == "" {
			o.Rounding = src.Rounding
		}
		ov := Override{Ruleset: src.Name, Name: o.Name, Party: o.Party, Of: o.Of, PaidBy: o.PaidBy, Rounding: money.Rounding(o.Rounding)}
		ok := true
		if rnd, good := checkRounding(c, at(opath, o.RoundingRange, o.DefRange), o.Rounding); good {
			ov.Rounding = rnd
		} else {
			ok = false
		}
		var pct decimal.Decimal
		var good bool
		if o.Percent, pct, good = checkDecimal(c, at(opath, o.PercentRange, o.DefRange), "percent", o.Percent); good {
			if pct.GreaterThan(hundred) {
				c.add(at(opath, o.PercentRange, o.DefRange), "percent", fmt.Sprintf("%s is above 100", pct), "an override is a percent of the commission below, 0 to 100")
				ok = false
			}
			ov.Percent = pct
		} else {
			ok = false
		}
		if o.PaidBy != PaidByOperator && o.PaidBy != PaidByBelow {
			c.add(at(opath, o.PaidByRange, o.DefRange), "paid_by", fmt.Sprintf("unknown payer %q", o.PaidBy), `use "operator" (paid on top, the partner below keeps its commission) or "below" (deducted from the commission of the partner below)`)
			ok = false
		}
		ofPos := at(opath, o.OfRange, o.DefRange)
		switch {
		case pos[o.Of] == "":
			c.add(ofPos, "of", fmt.Sprintf("%q is not a declared partner", o.Of), fmt.Sprintf(`declare it with its parent: partner %q { parent = %q }`, o.Of, o.Party))
			ok = false
		case pos[o.Party] == "":
			c.add(at(opath, o.PartyRange, o.DefRange), "party", fmt.Sprintf("%q is not a declared partner", o.Party), fmt.Sprintf(`declare it: partner %q {}`, o.Party))
			ok = false
		case parent[o.Of] != o.Party:
			c.add(at(opath, o.PartyRange, o.DefRange), "party", fmt.Sprintf("%q is not the parent of %q (its parent is %q)", o.Party, o.Of, parent[o.Of]), "an override is paid to the partner directly above; overrides further up are paid on the commission of the level between")
			ok = false
		}
		if prev, dup := t.onOf[o.Of]; dup && ok {
			c.add(opos, "of", fmt.Sprintf("%q already pays override %q", o.Of, t.Overrides[prev].Name), "one override per partner: its parent's")
			ok = false
		}
		if ok {
			t.onOf[o.Of] = len(t.Overrides)
			t.Overrides = append(t.Overrides, ov)
		}
	}
	return t
}
