package rules

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // time zones of contracts: the same rules on every host

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
)

// Declared parties and the checks of `tally rules check` beyond what Parse
// refuses: rules that can never match, a remainder party that can take the
// opposite sign, parties named once in a ruleset that declares none, and
// every problem of a file even when one block has a syntax error.

type partyDeclSrc struct {
	Name     string `hcl:"name,label" json:"name"`
	TimeZone string `hcl:"time_zone,optional" json:"time_zone,omitempty"`

	DefRange      hcl.Range `hcl:",def_range" json:"-"`
	TimeZoneRange hcl.Range `hcl:"time_zone,attr_value_range" json:"-"`
}

// checkZones reads the time_zone of party and partner declarations: an IANA
// zone name (the tz database is embedded, so every host reads the same
// rules). Parties without one use UTC.
func checkZones(c *checker, src *versionSrc, vpath string) map[string]*time.Location {
	out := map[string]*time.Location{}
	one := func(pos, party, tz string) {
		if tz == "" {
			return
		}
		loc, err := time.LoadLocation(tz)
		if err != nil || tz == "Local" {
			c.add(pos, "time_zone", fmt.Sprintf("%q is not an IANA time zone", tz), `name the zone the contract's periods close in, such as time_zone = "Asia/Seoul"`)
			return
		}
		out[party] = loc
	}
	for _, p := range src.PartyDecls {
		one(at(fmt.Sprintf("%s party %q", vpath, p.Name), p.TimeZoneRange, p.DefRange), p.Name, p.TimeZone)
	}
	for _, p := range src.Partners {
		one(at(fmt.Sprintf("%s partner %q", vpath, p.Name), p.TimeZoneRange, p.DefRange), p.Name, p.TimeZone)
	}
	return out
}

// TimeZone is the zone party's periods close in (its declaration's
// time_zone), UTC when it has none.
func (v *Version) TimeZone(party string) *time.Location {
	if loc, ok := v.zones[party]; ok {
		return loc
	}
	return time.UTC
}

// checkDeclared sorts the party declarations of src and, when the ruleset
// declares any party or partner, reports every party it names that is not
// declared. It returns the declared set, nil when none.
func checkDeclared(c *checker, src *versionSrc, vpath string) map[string]bool {
	if len(src.PartyDecls) == 0 && len(src.Partners) == 0 {
		return nil
	}
	sort.SliceStable(src.PartyDecls, func(i, j int) bool { return src.PartyDecls[i].Name < src.PartyDecls[j].Name })
	decl := map[string]bool{}
	for _, p := range src.PartyDecls {
		pos := at(fmt.Sprintf("%s party %q", vpath, p.Name), p.DefRange)
		checkName(c, pos, "party", p.Name)
		if decl[p.Name] {
			c.add(pos, "party", fmt.Sprintf("party %q declared twice", p.Name), "declare every party once")
		}
		decl[p.Name] = true
	}
	for _, p := range src.Partners {
		if decl[p.Name] && slices.ContainsFunc(src.PartyDecls, func(d *partyDeclSrc) bool { return d.Name == p.Name }) {
			c.add(at(fmt.Sprintf("%s partner %q", vpath, p.Name), p.DefRange), "partner", fmt.Sprintf("%q is declared both as a party and as a partner", p.Name), "a partner is a declared party: remove its party block")
		}
		decl[p.Name] = true
	}
	// A templated party is checked against what it can expand to:
	// "${provider}" in a rule with a providers condition can only be one of
	// those providers, each of which must be declared. Without the
	// condition it is any provider with credentials (the node's
	// configuration, not the rule file), and "${affiliate}" is the
	// transaction's attribution field, an open set of partners: neither
	// can be listed here, so both are exempt.
	use := func(pos, key, party string, providers []string) {
		switch {
		case party == "" || party == refAffiliate || decl[party]:
		case party == refProvider:
			for _, p := range providers {
				if !decl[p] {
					c.add(pos, key, fmt.Sprintf("party %s can be provider %q (the rule's providers), which is not declared", refProvider, p),
						fmt.Sprintf(`this ruleset declares its parties: add party %q {}, or correct the providers list if it is a typo`, p))
				}
			}
		default:
			c.add(pos, key, fmt.Sprintf("party %q is not declared", party), fmt.Sprintf(`this ruleset declares its parties: add party %q {} if it is not a typo`, party))
		}
	}
	for _, r := range src.Rules {
		rpath := fmt.Sprintf("%s rule %q", vpath, r.Name)
		for _, s := range r.Shares {
			use(at(fmt.Sprintf("%s share %q", rpath, s.Name), s.PartyRange, s.DefRange), "party", s.Party, r.Providers)
		}
		for _, s := range r.Steps {
			use(at(fmt.Sprintf("%s step %q", rpath, s.Name), s.PartyRange, s.DefRange), "party", s.Party, r.Providers)
		}
		use(at(rpath, r.RemainderRange, r.DefRange), "remainder", r.Remainder, nil)
	}
	for _, f := range src.FeeSet {
		use(fmt.Sprintf("%s fee %q", vpath, f.Name), "party", f.Party, nil)
	}
	for _, p := range src.Payouts {
		use(at(fmt.Sprintf("%s payout %q", vpath, p.Party), p.DefRange), "payout", p.Party, nil)
	}
	for _, o := range src.Overrides {
		use(at(fmt.Sprintf("%s override %q", vpath, o.Name), o.PartyRange, o.DefRange), "party", o.Party, nil)
	}
	return decl
}

// Finding is one thing `tally rules check` reports. An error means the
// book does not load (Parse refuses it) or a rule is certainly wrong (it
// can never match, or its remainder party can take the opposite sign); a
// warning is likely wrong and does not fail the check.
type Finding struct {
	Problem
	Warning bool
}

func (f Finding) String() string {
	if f.Warning {
		return "warning: " + f.Problem.String()
	}
	return "error: " + f.Problem.String()
}

// CheckFiles parses the files like ParseFiles and lints the result. It
// reports every problem at once: a file with an HCL syntax error is parsed
// again one top-level block at a time (the blocks starting at column 1), so
// the syntax error is reported with its block and every other block is
// still checked. The book is nil when any error was found (warnings do not
// count).
func CheckFiles(paths ...string) (*Book, []Finding) {
	var out []Finding
	var vs []*Version
	for _, p := range paths {
		src, err := readBounded(p)
		if err != nil {
			out = append(out, Finding{Problem: Problem{Pos: p, Msg: err.Error(), Hint: "check the path and that the file is at most 1 MiB"}})
			continue
		}
		fv, ps := parseHCL(src, p)
		if len(ps) > 0 && hasSyntaxError(src, p) {
			fv, ps = parseByBlock(src, p)
		}
		for _, pr := range ps {
			out = append(out, Finding{Problem: pr})
		}
		vs = append(vs, fv...)
	}
	for _, v := range vs {
		out = append(out, v.lint()...)
	}
	book, err := newBook(vs, nil)
	if pe := (*ParseError)(nil); errors.As(err, &pe) {
		for _, pr := range pe.Problems {
			out = append(out, Finding{Problem: pr})
		}
	}
	for _, f := range out {
		if !f.Warning {
			return nil, out
		}
	}
	return book, out
}

func hasSyntaxError(src []byte, filename string) bool {
	_, diags := hclparse.NewParser().ParseHCL(src, filename)
	return diags.HasErrors()
}

// parseByBlock parses every top-level block of src on its own: the lines
// from one line starting with a letter at column 1 to the next, the other
// lines blanked so positions stay those of the file. A block with a syntax
// error reports its first syntax problem (what follows it is usually the
// same mistake seen again); the others are checked in full.
func parseByBlock(src []byte, filename string) ([]*Version, []Problem) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	var starts []int
	for i, l := range lines {
		if len(l) > 0 && (l[0] >= 'a' && l[0] <= 'z' || l[0] >= 'A' && l[0] <= 'Z') {
			starts = append(starts, i)
		}
	}
	if len(starts) == 0 {
		_, ps := parseHCL(src, filename)
		return nil, ps
	}
	var vs []*Version
	var problems []Problem
	for k, s := range starts {
		e := len(lines)
		if k+1 < len(starts) {
			e = starts[k+1]
		}
		var chunk bytes.Buffer
		for i, l := range lines {
			if i >= s && i < e {
				chunk.Write(l)
			} else if bytes.HasSuffix(l, []byte("\n")) {
				chunk.WriteByte('\n')
			}
		}
		if k == 0 && s > 0 { // comments before the first block belong to it
			chunk.Reset()
			for i, l := range lines {
				if i < e {
					chunk.Write(l)
				} else if bytes.HasSuffix(l, []byte("\n")) {
					chunk.WriteByte('\n')
				}
			}
		}
		if _, diags := hclparse.NewParser().ParseHCL(chunk.Bytes(), filename); diags.HasErrors() {
			ps := diagProblems(diags)
			if len(ps) > 0 {
				problems = append(problems, ps[0])
			}
			continue
		}
		v, ps := parseHCL(chunk.Bytes(), filename)
		vs = append(vs, v...)
		problems = append(problems, ps...)
	}
	return vs, problems
}

// lint is what rules check reports about a valid version.
func (v *Version) lint() []Finding {
	var out []Finding
	add := func(warn bool, pos, key, msg, hint string) {
		out = append(out, Finding{Problem: Problem{Pos: pos, Key: key, Msg: msg, Hint: hint}, Warning: warn})
	}
	// Rules are tried in order: a rule whose every condition is as wide as
	// a later rule's takes all of that rule's transactions.
	for j, b := range v.rules {
		for _, a := range v.rules[:j] {
			if a.covers(b) {
				what := "has no conditions"
				if !a.catchAll() {
					what = "matches every transaction it would"
				}
				add(false, b.pos, "rule", fmt.Sprintf("rule %q can never match: rule %q before it %s", b.name, a.name, what),
					"move the narrower rule before the wider one, or remove it")
				break
			}
		}
	}
	for _, r := range v.rules {
		if len(r.shares) == 0 || r.allocation != money.RemainderTo || r.rounding == money.Down {
			continue
		}
		w, sum := decimal.Zero, decimal.Zero
		for _, s := range r.shares {
			sum = sum.Add(s.weight)
			if s.party == r.remainder {
				w = w.Add(s.weight)
			}
		}
		if r.percent {
			w = w.Add(hundred.Sub(sum))
		}
		if w.IsZero() {
			add(false, r.pos, "remainder", fmt.Sprintf("remainder party %q has weight 0 under remainder_to with %s rounding: when the other shares round up it takes the opposite sign (50/50 of 0.01 half_up: 0.01 + 0.01, remainder -0.01)", r.remainder, r.rounding),
				`use rounding = "down" (the others never round up), give the remainder party a share of its own, or use largest_remainder`)
		}
	}
	if v.declared == nil {
		uses := map[string]int{}
		where := map[string]string{}
		count := func(p, pos string) {
			if p == "" || p == refProvider || p == refAffiliate {
				return
			}
			uses[p]++
			if where[p] == "" {
				where[p] = pos
			}
		}
		// A "${provider}" share of a rule with a providers condition names
		// each of those providers (what it can expand to); otherwise a
		// templated party names no party of the file (see checkDeclared).
		expand := func(p string, r *rule) {
			if p == refProvider {
				for _, q := range r.providers {
					count(q, r.pos)
				}
				return
			}
			count(p, r.pos)
		}
		for _, r := range v.rules {
			for _, s := range r.shares {
				expand(s.party, r)
			}
			for _, s := range r.steps {
				expand(s.party, r)
			}
			count(r.remainder, r.pos)
		}
		for _, f := range v.fees {
			count(f.Party, v.pos)
		}
		names := make([]string, 0, len(uses))
		for p := range uses {
			names = append(names, p)
		}
		sort.Strings(names)
		typos := 0
		for _, p := range names {
			if uses[p] != 1 {
				continue
			}
			var near []string
			for _, q := range names {
				if q != p && similar(p, q) {
					near = append(near, fmt.Sprintf("%q", q))
				}
			}
			if len(near) > 0 {
				typos++
				add(true, where[p], "party", fmt.Sprintf("party %q is named once in ruleset %q, next to the similar %s: a typo?", p, v.Name, strings.Join(near, ", ")),
					fmt.Sprintf("declare the ruleset's parties (party %q {} ...): then a name that is not declared is an error", p))
			}
		}
		if typos == 0 && len(names) > 0 {
			add(true, v.pos, "party", fmt.Sprintf("ruleset %q does not declare its parties", v.Name), `add a party block for each party it names, such as party "operator" {}: a misspelt party then fails to load ("${provider}" and "${affiliate}" are not declared; a "${provider}" in a rule with providers = [...] needs each of those providers declared)`)
		}
	}
	return out
}

// similar reports whether two party names are likely the same one
// misspelt: equal ignoring case and separators, or at most 2 edits apart
// (names of 4 bytes or more).
func similar(a, b string) bool {
	norm := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '-' || r == '_' || r == ' ' || r == '.' {
				return -1
			}
			return r
		}, strings.ToLower(s))
	}
	if norm(a) == norm(b) {
		return true
	}
	if len(a) < 4 || len(b) < 4 {
		return false
	}
	// Levenshtein distance, bounded by the names' length (≤ 128 bytes).
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)] <= 2
}

func (r *rule) catchAll() bool {
	return len(r.meta) == 0 && len(r.types) == 0 && len(r.providers) == 0 && len(r.games) == 0 && len(r.categories) == 0 &&
		len(r.jurisdictions) == 0 && len(r.brands) == 0 && len(r.currencies) == 0
}

// covers reports whether r matches every transaction b matches: on every
// condition r is absent, or b's list is given and within r's.
func (r *rule) covers(b *rule) bool {
	within := func(ra, bs []string) bool {
		if len(ra) == 0 {
			return true
		}
		if len(bs) == 0 {
			return false
		}
		for _, x := range bs {
			if !slices.Contains(ra, x) {
				return false
			}
		}
		return true
	}
	rt := make([]string, len(r.types))
	for i, t := range r.types {
		rt[i] = string(t)
	}
	bt := make([]string, len(b.types))
	for i, t := range b.types {
		bt[i] = string(t)
	}
	for k, vals := range r.meta {
		if !within(vals, b.meta[k]) {
			return false
		}
	}
	return within(rt, bt) && within(r.providers, b.providers) && within(r.games, b.games) && within(r.categories, b.categories) &&
		within(r.jurisdictions, b.jurisdictions) && within(r.brands, b.brands) && within(r.currencies, b.currencies)
}
