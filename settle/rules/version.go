package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

// Version is one rule set: the rules in force from Effective until the next
// version's Effective. A Version is immutable once parsed; do not modify
// its fields.
type Version struct {
	Name      string
	Effective time.Time // UTC

	rules []*rule
	fees  []FeeContract
	tree  *Tree // nil: no partners
	// declared parties (party and partner blocks); nil when none are
	declared map[string]bool
	payouts  []Payout
	zones    map[string]*time.Location // declared time zones of parties
	canon    []byte
	hash     [32]byte
	pos      string // where it was defined, for error messages

	settlements []Settlement // settlement currencies of parties (settlement.go)
}

type rule struct {
	pos                                                             string // where it was defined, for rules check
	name                                                            string
	types                                                           []txn.Type
	providers, games, categories, jurisdictions, brands, currencies []string
	meta                                                            map[string][]string // meta key → accepted values
	rounding                                                        money.Rounding
	allocation                                                      money.Allocation
	shares                                                          []share // or steps, never both
	steps                                                           []step
	percent                                                         bool            // shares are percents (else weights)
	rest                                                            decimal.Decimal // percent rules: 100 − Σ percents, the remainder party's own weight
	restNoAffiliate                                                 decimal.Decimal // the remainder party's weight when tx.affiliate is empty: rest (0 for weights) + Σ ${affiliate} weights
	remainder                                                       string
}

type share struct {
	party  string
	weight decimal.Decimal  // a percent or a relative weight
	cap    *decimal.Decimal // the party's amount is at most this (absolute)
	floor  *decimal.Decimal // ...and at least this, taken from the remainder party
}

type step struct {
	party   string
	percent decimal.Decimal
	ofLeft  bool            // percent of what is left (else of the amount)
	fixed   decimal.Decimal // used when isFixed
	isFixed bool
	perUnit decimal.Decimal // used when units != "": per_unit × the tx's meta[units]
	units   string
	cap     *decimal.Decimal // the step takes at most this
	floor   *decimal.Decimal // ...and at least this (never more than is left)
}

// Percent bases of a waterfall step.
const (
	ofAmount = "amount"
	ofLeft   = "left"
)

var hundred = decimal.NewFromInt(100)

// decimalRE is the only accepted decimal notation in rules: plain, non-negative,
// bounded (no exponents, no signs).
var decimalRE = regexp.MustCompile(`^[0-9]{1,24}(\.[0-9]{1,12})?$`)

// Canonical is the deterministic JSON encoding of the version: fixed key
// order, decimals without trailing zeros, effective time in UTC, condition
// lists sorted and deduplicated, every rule's rounding and allocation spelled
// out. Equal rule sets have equal encodings. The returned slice is a copy.
func (v *Version) Canonical() []byte { return bytes.Clone(v.canon) }

// Hash is the SHA-256 of Canonical(): the identity recorded with every entry.
func (v *Version) Hash() [32]byte { return v.hash }

// Fees returns the version's period fee contracts, sorted by name. The
// slices inside a contract are shared: do not modify them.
func (v *Version) Fees() []FeeContract { return slices.Clone(v.fees) }

// ParseCanonical decodes a version from its canonical encoding, validating it
// exactly like HCL source. The input must be canonical: re-encoding the result
// must give back the same bytes, so Hash() equals the SHA-256 of b.
func ParseCanonical(b []byte) (*Version, error) {
	if len(b) > MaxSourceBytes {
		return nil, fmt.Errorf("parse canonical rules: %w", &ParseError{Problems: []Problem{{Pos: "canonical", Msg: fmt.Sprintf("%d bytes, more than %d", len(b), MaxSourceBytes)}}})
	}
	var src versionSrc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&src); err != nil {
		return nil, fmt.Errorf("parse canonical rules: %w", &ParseError{Problems: []Problem{{Pos: "canonical", Msg: err.Error()}}})
	}
	if dec.More() {
		return nil, fmt.Errorf("parse canonical rules: %w", &ParseError{Problems: []Problem{{Pos: "canonical", Msg: "trailing data after the version"}}})
	}
	v, problems := compile(&src, "canonical")
	if len(problems) > 0 {
		return nil, fmt.Errorf("parse canonical rules: %w", &ParseError{Problems: problems})
	}
	if !bytes.Equal(v.canon, b) {
		return nil, fmt.Errorf("parse canonical rules: %w", &ParseError{Problems: []Problem{{Pos: "canonical", Msg: "encoding is valid but not canonical", Hint: "use the bytes of Version.Canonical() unchanged"}}})
	}
	return v, nil
}

// checker collects problems with their positions: an HCL range when the
// source came from HCL, else a path inside the canonical encoding.
type checker struct {
	problems []Problem
}

func (c *checker) add(where, key, msg, hint string) {
	c.problems = append(c.problems, Problem{Pos: where, Key: key, Msg: msg, Hint: hint})
}

// at returns the position of the first range that is set, else path.
func at(path string, ranges ...hcl.Range) string {
	for _, r := range ranges {
		if r.Filename != "" {
			return rangePos(r)
		}
	}
	return path
}

// compile validates and normalizes src in place and builds the Version.
// base prefixes positions when src has no HCL ranges (canonical input).
func compile(src *versionSrc, base string) (*Version, []Problem) {
	var c checker
	vpath := fmt.Sprintf("%s ruleset %q", base, src.Name)
	vpos := at(vpath, src.DefRange)
	checkName(&c, vpos, "ruleset", src.Name)

	v := &Version{Name: src.Name, pos: vpos}
	if t, err := time.Parse(time.RFC3339Nano, src.Effective); err != nil {
		c.add(at(vpath, src.EffectiveRange, src.DefRange), "effective", fmt.Sprintf("%q is not an RFC 3339 time", src.Effective), `write it like "2026-11-01T00:00:00Z"`)
	} else {
		v.Effective = t.UTC()
		src.Effective = v.Effective.Format(time.RFC3339Nano)
	}
	setRounding, okR := checkRounding(&c, at(vpath, src.RoundingRange, src.DefRange), src.Rounding)
	setAlloc, okA := checkAllocation(&c, at(vpath, src.AllocationRange, src.DefRange), src.Allocation)

	if len(src.Rules) == 0 {
		c.add(vpos, "rule", "ruleset has no rule", `add at least one rule, ending with a catch-all such as rule "default" { share "op" { party = "operator" percent = "100" } }`)
	}
	if len(src.Rules) > MaxRules {
		c.add(vpos, "rule", fmt.Sprintf("%d rules, more than %d", len(src.Rules), MaxRules), "merge rules or split the version")
	}
	seen := map[string]string{}
	for _, rs := range src.Rules {
		rpath := fmt.Sprintf("%s rule %q", vpath, rs.Name)
		rpos := at(rpath, rs.DefRange)
		if prev, ok := seen[rs.Name]; ok {
			c.add(rpos, "rule", fmt.Sprintf("rule %q already defined at %s", rs.Name, prev), "give every rule of a version a unique name")
		}
		seen[rs.Name] = rpos
		// A rule inherits the set's rounding and allocation; the canonical
		// form spells them out so each rule is self-contained.
		if rs.Rounding == "" && okR {
			rs.Rounding = string(setRounding)
		}
		if rs.Allocation == "" && okA {
			rs.Allocation = string(setAlloc)
		}
		if r := compileRule(&c, rs, rpath); r != nil {
			v.rules = append(v.rules, r)
		}
	}
	if len(src.FeeSet) > MaxFees {
		c.add(vpos, "fee", fmt.Sprintf("%d fee blocks, more than %d", len(src.FeeSet), MaxFees), "split the version")
		src.FeeSet = nil
	}
	// Fees are a set keyed by name: sorted in the canonical form.
	sort.SliceStable(src.FeeSet, func(i, j int) bool { return src.FeeSet[i].Name < src.FeeSet[j].Name })
	for i, f := range src.FeeSet {
		fpath := fmt.Sprintf("%s fee %q", vpath, f.Name)
		if i > 0 && src.FeeSet[i-1].Name == f.Name {
			c.add(vpos, "fee", fmt.Sprintf("fee %q defined twice", f.Name), "give every fee of a ruleset a unique name")
		}
		if fc, ok := f.contract(&c, src.Name, fpath); ok {
			v.fees = append(v.fees, fc)
		}
	}
	v.tree = compileTree(&c, src, vpath)
	v.declared = checkDeclared(&c, src, vpath)
	v.payouts = compilePayouts(&c, src, vpath)
	v.zones = checkZones(&c, src, vpath)
	v.settlements = compileSettlements(&c, src, vpath, v)
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	canon, err := json.Marshal(src)
	if err != nil {
		panic("rules: canonical encoding failed: " + err.Error()) // strings and slices only: cannot fail
	}
	v.canon = canon
	v.hash = sha256.Sum256(canon)
	return v, nil
}

func compileRule(c *checker, rs *ruleSrc, rpath string) *rule {
	before := len(c.problems)
	rpos := at(rpath, rs.DefRange)
	checkName(c, rpos, "rule", rs.Name)
	r := &rule{name: rs.Name, remainder: rs.Remainder, pos: rpos}
	// An empty rounding or allocation here means the set's own was invalid
	// and already reported.
	okA := false
	if rs.Rounding != "" {
		r.rounding, _ = checkRounding(c, at(rpath, rs.RoundingRange, rs.DefRange), rs.Rounding)
	}
	if rs.Allocation != "" {
		r.allocation, okA = checkAllocation(c, at(rpath, rs.AllocationRange, rs.DefRange), rs.Allocation)
	}

	// Conditions: sets, so sorted and deduplicated in the canonical form.
	rs.Types = checkList(c, at(rpath, rs.TypesRange, rs.DefRange), "types", rs.Types, func(s string) string {
		t := txn.Type(s)
		if !t.Valid() {
			return "is not a transaction type (bet, win, purchase, adjustment, fee, bonus_cost, jackpot_contribution, jackpot_win, tax, deposit)"
		}
		if t.Reversal() {
			return "is a reversal: rollbacks and refunds replay their parent's shares and never match a rule"
		}
		return ""
	})
	for _, s := range rs.Types {
		r.types = append(r.types, txn.Type(s))
	}
	rs.Currencies = checkList(c, at(rpath, rs.CurrenciesRange, rs.DefRange), "currencies", rs.Currencies, func(s string) string {
		if _, ok := money.Lookup(s); !ok {
			return "is not a known ISO 4217 currency code"
		}
		return ""
	})
	r.currencies = rs.Currencies
	rs.Meta = checkMeta(c, at(rpath, rs.MetaRange, rs.DefRange), rs.Meta)
	r.meta = rs.Meta

	rs.Providers = checkList(c, rpos, "providers", rs.Providers, nil)
	r.providers = rs.Providers
	rs.Games = checkList(c, rpos, "games", rs.Games, nil)
	r.games = rs.Games
	rs.Categories = checkList(c, rpos, "categories", rs.Categories, nil)
	r.categories = rs.Categories
	rs.Jurisdictions = checkList(c, rpos, "jurisdictions", rs.Jurisdictions, nil)
	r.jurisdictions = rs.Jurisdictions
	rs.Brands = checkList(c, rpos, "brands", rs.Brands, nil)
	r.brands = rs.Brands

	remPos := at(rpath, rs.RemainderRange, rs.DefRange)
	if rs.Remainder != "" {
		checkParty(c, remPos, "remainder", rs.Remainder)
		if rs.Remainder == refAffiliate {
			c.add(remPos, "remainder", `"${affiliate}" cannot be the remainder party: it is where an absent affiliate's share goes`, `name a fixed party such as "operator"`)
		}
	}

	usesAffiliate := false
	switch {
	case len(rs.Shares) > 0 && len(rs.Steps) > 0:
		c.add(rpos, "share", "a rule has either share blocks or step blocks, not both", "move the waterfall into its own rule")
	case len(rs.Shares) == 0 && len(rs.Steps) == 0:
		c.add(rpos, "share", "rule has no share and no step", `add share "<name>" { party = "..." percent = "..." }`)
	case len(rs.Shares) > MaxShares || len(rs.Steps) > MaxShares:
		c.add(rpos, "share", fmt.Sprintf("more than %d shares or steps", MaxShares), "merge parties")
	case len(rs.Shares) > 0:
		usesAffiliate = compileShares(c, r, rs, rpath)
		if okA && r.allocation == money.RemainderTo && rs.Remainder == "" {
			c.add(rpos, "remainder", `allocation "remainder_to" needs a remainder party`, `add remainder = "operator" to the rule`)
		}
	default:
		usesAffiliate = compileSteps(c, r, rs, rpath)
		if rs.Remainder == "" {
			c.add(rpos, "remainder", "a waterfall needs a remainder party for what is left after the last step", `add remainder = "operator" to the rule`)
		}
	}
	if usesAffiliate && rs.Remainder == "" {
		c.add(rpos, "remainder", `a share for "${affiliate}" needs a remainder party to take it when the transaction has no affiliate`, `add remainder = "operator" to the rule`)
	}
	if len(c.problems) > before {
		return nil
	}
	return r
}

func compileShares(c *checker, r *rule, rs *ruleSrc, rpath string) (usesAffiliate bool) {
	seen := map[string]bool{}
	total := decimal.Zero
	nPercent, nWeight := 0, 0
	bad := false // a share without a valid figure: sums are meaningless
	for _, ss := range rs.Shares {
		spath := fmt.Sprintf("%s share %q", rpath, ss.Name)
		spos := at(spath, ss.DefRange)
		checkName(c, spos, "share", ss.Name)
		if seen[ss.Name] {
			c.add(spos, "share", fmt.Sprintf("share %q declared twice in the rule", ss.Name), "give every share of a rule a unique label")
		}
		seen[ss.Name] = true
		checkParty(c, at(spath, ss.PartyRange, ss.DefRange), "party", ss.Party)
		usesAffiliate = usesAffiliate || ss.Party == refAffiliate
		var w decimal.Decimal
		var ok bool
		switch {
		case ss.Percent != "" && ss.Weight != "":
			c.add(spos, "percent", "a share has either percent or weight, not both", "keep one")
			bad = true
			continue
		case ss.Percent != "":
			nPercent++
			ss.Percent, w, ok = checkDecimal(c, at(spath, ss.PercentRange, ss.DefRange), "percent", ss.Percent)
			if ok && w.GreaterThan(hundred) {
				c.add(at(spath, ss.PercentRange, ss.DefRange), "percent", fmt.Sprintf("%s is more than 100", ss.Percent), "a percent is of the whole amount")
			}
		case ss.Weight != "":
			nWeight++
			ss.Weight, w, ok = checkDecimal(c, at(spath, ss.WeightRange, ss.DefRange), "weight", ss.Weight)
		default:
			c.add(spos, "percent", "share has neither percent nor weight", `add percent = "12" (of the amount) or weight = "1" (relative to the other weights)`)
			bad = true
			continue
		}
		if ok {
			total = total.Add(w)
			sh := share{party: ss.Party, weight: w}
			if !compileShareLimits(c, &sh, ss, rs, spath) {
				bad = true
				continue
			}
			r.shares = append(r.shares, sh)
		} else {
			bad = true
		}
	}
	rpos := at(rpath, rs.DefRange)
	if bad {
		return usesAffiliate
	}
	if nPercent > 0 && nWeight > 0 {
		c.add(rpos, "share", "a rule mixes percent and weight shares", "use percents for all shares or weights for all shares")
		return usesAffiliate
	}
	r.percent = nPercent > 0
	if r.percent {
		r.rest = hundred.Sub(total) // fixed per rule: not recomputed per split
	}
	r.restNoAffiliate = r.rest
	for _, sh := range r.shares {
		if sh.party == refAffiliate {
			r.restNoAffiliate = r.restNoAffiliate.Add(sh.weight)
		}
	}
	switch {
	case r.percent && total.GreaterThan(hundred):
		c.add(rpos, "percent", fmt.Sprintf("shares add up to %s%%, more than 100%%", total), "lower a percent")
	case r.percent && total.LessThan(hundred) && rs.Remainder == "":
		c.add(rpos, "remainder", fmt.Sprintf("shares add up to %s%%, less than 100%%, and the rule has no remainder party", total), `add remainder = "operator" to take the rest`)
	case !r.percent && nWeight > 0 && !total.IsPositive():
		c.add(rpos, "weight", "weights add up to zero", "give at least one share a positive weight")
	}
	return usesAffiliate
}

// compileShareLimits reads a share's cap and floor: plain decimals, floor ≤
// cap, in a rule with a remainder party that is not the share's own.
func compileShareLimits(c *checker, sh *share, ss *shareSrc, rs *ruleSrc, spath string) bool {
	if ss.Cap == "" && ss.Floor == "" {
		return true
	}
	ok := true
	if ss.Cap != "" {
		var d decimal.Decimal
		var good bool
		if ss.Cap, d, good = checkDecimal(c, at(spath, ss.CapRange, ss.DefRange), "cap", ss.Cap); good {
			sh.cap = &d
		} else {
			ok = false
		}
	}
	if ss.Floor != "" {
		var d decimal.Decimal
		var good bool
		if ss.Floor, d, good = checkDecimal(c, at(spath, ss.FloorRange, ss.DefRange), "floor", ss.Floor); good {
			sh.floor = &d
		} else {
			ok = false
		}
	}
	if sh.cap != nil && sh.floor != nil && sh.floor.GreaterThan(*sh.cap) {
		c.add(at(spath, ss.FloorRange, ss.DefRange), "floor", fmt.Sprintf("floor %s is above cap %s", sh.floor, sh.cap), "lower the floor or raise the cap")
		ok = false
	}
	switch {
	case rs.Remainder == "":
		c.add(at(spath, ss.DefRange), "cap", "a share with a cap or floor needs a remainder party to take or give the difference", `add remainder = "operator" to the rule`)
		ok = false
	case rs.Remainder == ss.Party:
		c.add(at(spath, ss.DefRange), "cap", fmt.Sprintf("the remainder party %q cannot have a cap or floor: it takes the difference", ss.Party), "cap another share, or name another remainder party")
		ok = false
	}
	return ok
}

func compileSteps(c *checker, r *rule, rs *ruleSrc, rpath string) (usesAffiliate bool) {
	seen := map[string]bool{}
	for _, ss := range rs.Steps {
		spath := fmt.Sprintf("%s step %q", rpath, ss.Name)
		spos := at(spath, ss.DefRange)
		checkName(c, spos, "step", ss.Name)
		if seen[ss.Name] {
			c.add(spos, "step", fmt.Sprintf("step %q declared twice in the rule", ss.Name), "give every step of a rule a unique label")
		}
		seen[ss.Name] = true
		checkParty(c, at(spath, ss.PartyRange, ss.DefRange), "party", ss.Party)
		usesAffiliate = usesAffiliate || ss.Party == refAffiliate
		st := step{party: ss.Party}
		ok := true
		// Amounts in the transaction's currency: the rule must name its
		// currencies and each amount must fit every one of them.
		amountIn := func(key string, pos string, val string) (decimal.Decimal, bool) {
			_, d, good := checkDecimal(c, pos, key, val)
			if !good {
				return d, false
			}
			if len(rs.Currencies) == 0 {
				c.add(pos, key, fmt.Sprintf("a %s amount needs the rule to be limited to its currencies", key), `add currencies = ["EUR"] to the rule`)
				return d, false
			}
			for _, code := range rs.Currencies {
				if cur, known := money.Lookup(code); known && !cur.Fits(d) {
					c.add(pos, key, fmt.Sprintf("%s has more decimals than %s allows (%d)", val, code, cur.Exponent), "round the amount or limit the rule's currencies")
					return d, false
				}
			}
			return d, true
		}
		kinds := 0
		for _, set := range []bool{ss.Percent != "", ss.Fixed != "", ss.PerUnit != ""} {
			if set {
				kinds++
			}
		}
		switch {
		case kinds > 1:
			c.add(spos, "fixed", "a step has one of percent, fixed or per_unit", "keep one")
			ok = false
		case ss.Percent != "":
			ss.Percent, st.percent, ok = checkDecimal(c, at(spath, ss.PercentRange, ss.DefRange), "percent", ss.Percent)
			if ok && st.percent.GreaterThan(hundred) {
				c.add(at(spath, ss.PercentRange, ss.DefRange), "percent", fmt.Sprintf("%s is more than 100", ss.Percent), "a step takes at most all of its base")
				ok = false
			}
			switch ss.PercentOf {
			case ofAmount:
			case ofLeft:
				st.ofLeft = true
			default:
				c.add(at(spath, ss.PercentOfRange, ss.DefRange), "percent_of", fmt.Sprintf("%q is not a percent base", ss.PercentOf), `use percent_of = "amount" (the whole amount) or "left" (what earlier steps left)`)
				ok = false
			}
		case ss.Fixed != "":
			fpos := at(spath, ss.FixedRange, ss.DefRange)
			if ss.PercentOf != "" {
				c.add(at(spath, ss.PercentOfRange, ss.DefRange), "percent_of", "a fixed step has no percent base", "remove percent_of")
				ok = false
			}
			var good bool
			if st.fixed, good = amountIn("fixed", fpos, ss.Fixed); good {
				ss.Fixed = st.fixed.String()
			}
			ok = ok && good
			st.isFixed = true
		case ss.PerUnit != "":
			ppos := at(spath, ss.PerUnitRange, ss.DefRange)
			if ss.PercentOf != "" {
				c.add(at(spath, ss.PercentOfRange, ss.DefRange), "percent_of", "a per-unit step has no percent base", "remove percent_of")
				ok = false
			}
			var good bool
			ss.PerUnit, st.perUnit, good = checkDecimal(c, ppos, "per_unit", ss.PerUnit)
			ok = ok && good
			if ss.Units == "" {
				c.add(ppos, "units", "a per-unit step needs units: the meta key of the transaction that holds the quantity", `add units = "spins"`)
				ok = false
			} else if msg := badText(ss.Units); msg != "" {
				c.add(at(spath, ss.UnitsRange, ss.DefRange), "units", fmt.Sprintf("units %q %s", ss.Units, msg), "name a meta key such as \"spins\"")
				ok = false
			}
			st.units = ss.Units
		default:
			c.add(spos, "percent", "step has neither percent, fixed nor per_unit", `add percent = "12" with percent_of = "amount" or "left", fixed = "100000", or per_unit = "0.01" with units = "spins"`)
			ok = false
		}
		if ss.Units != "" && ss.PerUnit == "" {
			c.add(at(spath, ss.UnitsRange, ss.DefRange), "units", "units without per_unit", `add per_unit = "0.01" or remove units`)
			ok = false
		}
		if ss.Cap != "" {
			d, good := amountIn("cap", at(spath, ss.CapRange, ss.DefRange), ss.Cap)
			if good {
				ss.Cap, st.cap = d.String(), &d
			}
			ok = ok && good
		}
		if ss.Floor != "" {
			d, good := amountIn("floor", at(spath, ss.FloorRange, ss.DefRange), ss.Floor)
			if good {
				ss.Floor, st.floor = d.String(), &d
			}
			ok = ok && good
		}
		if st.cap != nil && st.floor != nil && st.floor.GreaterThan(*st.cap) {
			c.add(at(spath, ss.FloorRange, ss.DefRange), "floor", fmt.Sprintf("floor %s is above cap %s", ss.Floor, ss.Cap), "lower the floor or raise the cap")
			ok = false
		}
		if ok {
			r.steps = append(r.steps, st)
		}
	}
	return usesAffiliate
}

func checkRounding(c *checker, pos, s string) (money.Rounding, bool) {
	r, err := money.ParseRounding(s)
	if err != nil {
		c.add(pos, "rounding", err.Error(), "rounding is never implied: name one")
		return "", false
	}
	return r, true
}

func checkAllocation(c *checker, pos, s string) (money.Allocation, bool) {
	a, err := money.ParseAllocation(s)
	if err != nil {
		c.add(pos, "allocation", err.Error(), "allocation is never implied: name one")
		return "", false
	}
	return a, true
}

// checkDecimal parses a plain non-negative decimal and returns its canonical
// spelling (no trailing zeros).
func checkDecimal(c *checker, pos, key, s string) (string, decimal.Decimal, bool) {
	if !decimalRE.MatchString(s) {
		c.add(pos, key, fmt.Sprintf("%q is not a plain non-negative decimal", s), `write it as a quoted decimal such as "12" or "12.5"`)
		return s, decimal.Decimal{}, false
	}
	d := decimal.RequireFromString(s) // matched decimalRE: cannot fail
	return d.String(), d, true
}

func checkName(c *checker, pos, key, s string) {
	if msg := badText(s); msg != "" {
		c.add(pos, key, fmt.Sprintf("name %q %s", s, msg), "use 1 to 128 printable characters")
	}
}

func checkParty(c *checker, pos, key, s string) {
	if s == refProvider || s == refAffiliate {
		return
	}
	if msg := badText(s); msg != "" {
		c.add(pos, key, fmt.Sprintf("party %q %s", s, msg), `name a party such as "operator", or use "${provider}" or "${affiliate}"`)
		return
	}
	if strings.Contains(s, "${") || strings.Contains(s, "%{") {
		c.add(pos, key, fmt.Sprintf("party %q mixes a reference with text", s), `a party is either a name or exactly "${provider}" or "${affiliate}"`)
	}
}

// checkList validates a condition list and returns it sorted and deduplicated.
func checkList(c *checker, pos, key string, vals []string, valid func(string) string) []string {
	if len(vals) > MaxMatch {
		c.add(pos, key, fmt.Sprintf("%d values, more than %d", len(vals), MaxMatch), "split the rule")
		return vals
	}
	for _, s := range vals {
		msg := badText(s)
		if msg == "" && valid != nil {
			msg = valid(s)
		}
		if msg != "" {
			c.add(pos, key, fmt.Sprintf("%q %s", s, msg), "fix or remove the value")
		}
	}
	if len(vals) == 0 {
		return nil
	}
	out := slices.Clone(vals)
	slices.Sort(out)
	return slices.Compact(out)
}

// badText returns why s is not an acceptable name or value, or "".
func badText(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > maxName:
		return fmt.Sprintf("is longer than %d bytes", maxName)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "has a control or non-printable character"
		}
	}
	return ""
}
