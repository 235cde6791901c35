package rules

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Limits on what one book may hold. Every limit is an error, never a truncation.
const (
	MaxSourceBytes = 1 << 20 // one HCL file or one canonical encoding
	MaxVersions    = 1000    // versions in a book
	MaxRules       = 1000    // rules in a version
	MaxShares      = 64      // shares or steps in a rule
	MaxMatch       = 1000    // values in one condition list
	maxName        = 128     // bytes in a name, party or condition value
)

// Party references: written as "${provider}" / "${affiliate}" in HCL and
// stored verbatim in the canonical encoding.
const (
	refProvider  = "${provider}"
	refAffiliate = "${affiliate}"
)

// The source structs are decoded from HCL (hcl tags, with ranges for error
// positions) and are also, once normalized, the canonical JSON encoding (json
// tags, field order = key order). Ranges are never encoded.

type fileSrc struct {
	Rulesets []*versionSrc `hcl:"ruleset,block"`
}

type versionSrc struct {
	Name       string     `hcl:"name,label" json:"name"`
	Effective  string     `hcl:"effective" json:"effective"`
	Rounding   string     `hcl:"rounding" json:"rounding"`
	Allocation string     `hcl:"allocation" json:"allocation"`
	Rules      []*ruleSrc `hcl:"rule,block" json:"rules"`
	// Fees are the period fee contracts: decoded from HCL by parseFees
	// (fees.go) into FeeSet, which is their canonical form and part of the
	// version's hash. A version without fees encodes no "fees" key.
	Fees   []*feeRef   `hcl:"fee,block" json:"-"`
	FeeSet []*feeCanon `json:"fees,omitempty"`
	// Partner trees (partners.go): the declared partners with their
	// parents, the tree's depth limit and the overrides paid up the tree.
	// A version without partners encodes none of these keys, so the hash
	// of every older version is unchanged.
	// Declared parties (check.go): when a ruleset declares any party or
	// partner, every party it names must be declared.
	PartyDecls   []*partyDeclSrc `hcl:"party,block" json:"parties,omitempty"`
	PartnerDepth string          `hcl:"partner_depth,optional" json:"partner_depth,omitempty"`
	Partners     []*partnerSrc   `hcl:"partner,block" json:"partners,omitempty"`
	Overrides    []*overrideSrc  `hcl:"override,block" json:"overrides,omitempty"`
	// Minimum payouts (payout.go); none encodes no key.
	Payouts []*payoutSrc `hcl:"payout,block" json:"payouts,omitempty"`
	// Settlement currencies (settlement.go); none encodes no key.
	Settlements []*settlementSrc `hcl:"settlement,block" json:"settlements,omitempty"`

	DefRange        hcl.Range `hcl:",def_range" json:"-"`
	EffectiveRange  hcl.Range `hcl:"effective,attr_value_range" json:"-"`
	RoundingRange   hcl.Range `hcl:"rounding,attr_value_range" json:"-"`
	AllocationRange hcl.Range `hcl:"allocation,attr_value_range" json:"-"`
	DepthRange      hcl.Range `hcl:"partner_depth,attr_value_range" json:"-"`
}

// feeRef is a fee block as Parse sees it: named, contents left to ParseFees.
type feeRef struct {
	Name string   `hcl:"name,label"`
	Body hcl.Body `hcl:",remain"`
}

type ruleSrc struct {
	Name          string   `hcl:"name,label" json:"name"`
	Types         []string `hcl:"types,optional" json:"types,omitempty"`
	Providers     []string `hcl:"providers,optional" json:"providers,omitempty"`
	Games         []string `hcl:"games,optional" json:"games,omitempty"`
	Categories    []string `hcl:"categories,optional" json:"categories,omitempty"`
	Jurisdictions []string `hcl:"jurisdictions,optional" json:"jurisdictions,omitempty"`
	Brands        []string `hcl:"brands,optional" json:"brands,omitempty"`
	Currencies    []string `hcl:"currencies,optional" json:"currencies,omitempty"`
	// Meta conditions on player attributes the transaction carries in its
	// meta (funds = ["bonus"]): each key's value must be in its list.
	Meta       map[string][]string `hcl:"meta,optional" json:"meta,omitempty"`
	Rounding   string              `hcl:"rounding,optional" json:"rounding"`
	Allocation string              `hcl:"allocation,optional" json:"allocation"`
	Shares     []*shareSrc         `hcl:"share,block" json:"shares,omitempty"`
	Steps      []*stepSrc          `hcl:"step,block" json:"steps,omitempty"`
	Remainder  string              `hcl:"remainder,optional" json:"remainder,omitempty"`

	DefRange        hcl.Range `hcl:",def_range" json:"-"`
	TypesRange      hcl.Range `hcl:"types,attr_value_range" json:"-"`
	MetaRange       hcl.Range `hcl:"meta,attr_value_range" json:"-"`
	CurrenciesRange hcl.Range `hcl:"currencies,attr_value_range" json:"-"`
	RoundingRange   hcl.Range `hcl:"rounding,attr_value_range" json:"-"`
	AllocationRange hcl.Range `hcl:"allocation,attr_value_range" json:"-"`
	RemainderRange  hcl.Range `hcl:"remainder,attr_value_range" json:"-"`
}

type shareSrc struct {
	Name    string `hcl:"name,label" json:"name"`
	Party   string `hcl:"party" json:"party"`
	Percent string `hcl:"percent,optional" json:"percent,omitempty"`
	Weight  string `hcl:"weight,optional" json:"weight,omitempty"`
	// A cap and a floor on the share's amount (absolute, in the
	// transaction's currency); the difference goes to the remainder party.
	Cap   string `hcl:"cap,optional" json:"cap,omitempty"`
	Floor string `hcl:"floor,optional" json:"floor,omitempty"`

	DefRange     hcl.Range `hcl:",def_range" json:"-"`
	PartyRange   hcl.Range `hcl:"party,attr_value_range" json:"-"`
	PercentRange hcl.Range `hcl:"percent,attr_value_range" json:"-"`
	WeightRange  hcl.Range `hcl:"weight,attr_value_range" json:"-"`
	CapRange     hcl.Range `hcl:"cap,attr_value_range" json:"-"`
	FloorRange   hcl.Range `hcl:"floor,attr_value_range" json:"-"`
}

type stepSrc struct {
	Name      string `hcl:"name,label" json:"name"`
	Party     string `hcl:"party" json:"party"`
	Percent   string `hcl:"percent,optional" json:"percent,omitempty"`
	PercentOf string `hcl:"percent_of,optional" json:"percent_of,omitempty"`
	Fixed     string `hcl:"fixed,optional" json:"fixed,omitempty"`
	PerUnit   string `hcl:"per_unit,optional" json:"per_unit,omitempty"`
	Units     string `hcl:"units,optional" json:"units,omitempty"`
	Cap       string `hcl:"cap,optional" json:"cap,omitempty"`
	Floor     string `hcl:"floor,optional" json:"floor,omitempty"`

	DefRange       hcl.Range `hcl:",def_range" json:"-"`
	PartyRange     hcl.Range `hcl:"party,attr_value_range" json:"-"`
	PercentRange   hcl.Range `hcl:"percent,attr_value_range" json:"-"`
	PercentOfRange hcl.Range `hcl:"percent_of,attr_value_range" json:"-"`
	FixedRange     hcl.Range `hcl:"fixed,attr_value_range" json:"-"`
	PerUnitRange   hcl.Range `hcl:"per_unit,attr_value_range" json:"-"`
	UnitsRange     hcl.Range `hcl:"units,attr_value_range" json:"-"`
	CapRange       hcl.Range `hcl:"cap,attr_value_range" json:"-"`
	FloorRange     hcl.Range `hcl:"floor,attr_value_range" json:"-"`
}

// evalCtx lets "${provider}" and "${affiliate}" through HCL's template
// evaluation as literal references; any other variable is an HCL error.
var evalCtx = &hcl.EvalContext{Variables: map[string]cty.Value{
	"provider":  cty.StringVal(refProvider),
	"affiliate": cty.StringVal(refAffiliate),
}}

// ParseFile reads and parses one HCL rule file. See Parse.
func ParseFile(path string) (*Book, error) {
	return ParseFiles(path)
}

// ParseFiles parses several HCL rule files into one book: the versions of all
// files together, sorted by effective time. Every problem of every file is
// reported at once.
func ParseFiles(paths ...string) (*Book, error) {
	var all []*Version
	var problems []Problem
	for _, p := range paths {
		src, err := readBounded(p)
		if err != nil {
			problems = append(problems, Problem{Pos: p, Msg: err.Error(), Hint: "check the path and that the file is at most 1 MiB"})
			continue
		}
		vs, ps := parseHCL(src, p)
		all = append(all, vs...)
		problems = append(problems, ps...)
	}
	return newBook(all, problems)
}

// Parse parses HCL rule source; filename is used in error positions. The
// error, if any, wraps a *ParseError (errors.Is(err, ErrInvalid)) that lists
// every problem with file:line:column, key, value and a fix.
func Parse(src []byte, filename string) (*Book, error) {
	vs, problems := parseHCL(src, filename)
	return newBook(vs, problems)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSourceBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSourceBytes {
		return nil, fmt.Errorf("file larger than %d bytes", MaxSourceBytes)
	}
	return b, nil
}

func parseHCL(src []byte, filename string) ([]*Version, []Problem) {
	if len(src) > MaxSourceBytes {
		return nil, []Problem{{Pos: filename, Msg: fmt.Sprintf("source is %d bytes, more than %d", len(src), MaxSourceBytes), Hint: "split the rule sets over several files"}}
	}
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diagProblems(diags)
	}
	if ps := numberLiterals(f.Body); len(ps) > 0 {
		return nil, ps // converting them to strings could take unbounded time
	}
	// Decoding reports unknown keys, wrong types and unknown variables; the
	// semantic checks still run on what decoded, so one pass reports every
	// problem. A semantic problem at a position HCL already reported is the
	// same problem seen twice and is dropped.
	var fs fileSrc
	diags = gohcl.DecodeBody(f.Body, evalCtx, &fs)
	problems := diagProblems(diags)
	reported := map[string]bool{}
	for _, d := range diags {
		if d.Subject != nil {
			reported[rangePos(*d.Subject)] = true
		}
	}
	fees, fps := parseFees(src, filename)
	for _, p := range fps {
		if !reported[p.Pos] {
			problems = append(problems, p)
			reported[p.Pos] = true
		}
	}
	for _, rs := range fs.Rulesets {
		for _, fc := range fees {
			if fc.Ruleset == rs.Name {
				rs.FeeSet = append(rs.FeeSet, canonFee(fc))
			}
		}
	}
	if len(fs.Rulesets) == 0 && len(problems) == 0 {
		return nil, []Problem{{Pos: filename, Key: "ruleset", Msg: "no ruleset block", Hint: `add ruleset "<name>" { effective = "...", rounding = "...", allocation = "...", rule ... }`}}
	}
	var vs []*Version
	for _, rs := range fs.Rulesets {
		v, ps := compile(rs, "")
		for _, p := range ps {
			if !reported[p.Pos] {
				problems = append(problems, p)
			}
		}
		if v != nil {
			vs = append(vs, v)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return vs, nil
}

func diagProblems(diags hcl.Diagnostics) []Problem {
	var out []Problem
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if strings.Contains(d.Detail, "value must be known") {
			continue // the echo of an "Unknown variable" error on the same attribute
		}
		p := Problem{Msg: d.Summary}
		if d.Detail != "" {
			p.Msg += ": " + d.Detail
		}
		if d.Subject != nil {
			p.Pos = rangePos(*d.Subject)
		}
		out = append(out, p)
	}
	return out
}

func rangePos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// newBook checks the versions against each other and sorts them.
func newBook(vs []*Version, problems []Problem) (*Book, error) {
	if len(vs) > MaxVersions {
		problems = append(problems, Problem{Pos: "book", Msg: fmt.Sprintf("%d versions, more than %d", len(vs), MaxVersions), Hint: "archive old versions"})
	}
	names := map[string]*Version{}
	times := map[string]*Version{}
	for _, v := range vs {
		if o, ok := names[v.Name]; ok {
			problems = append(problems, Problem{Pos: v.pos, Key: "ruleset", Msg: fmt.Sprintf("version %q already defined at %s", v.Name, o.pos), Hint: "give every version a unique name"})
		}
		names[v.Name] = v
		if o, ok := times[v.Effective.Format(time.RFC3339Nano)]; ok {
			problems = append(problems, Problem{Pos: v.pos, Key: "effective", Msg: fmt.Sprintf("version %q has the same effective time as %q (%s)", v.Name, o.Name, o.pos), Hint: "two versions cannot take effect at the same instant"})
		}
		times[v.Effective.Format(time.RFC3339Nano)] = v
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("parse rules: %w", &ParseError{Problems: problems})
	}
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].Effective.Before(vs[j].Effective) })
	return &Book{versions: vs}, nil
}

// numberLiterals reports every unquoted number. Decimals in rules are quoted
// strings, like amounts on the wire: an HCL number is a binary float, and
// turning a literal like 1e999999999 into a string would not finish.
func numberLiterals(body hcl.Body) []Problem {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var out []Problem
	_ = hclsyntax.VisitAll(sb, func(n hclsyntax.Node) hcl.Diagnostics {
		if lit, ok := n.(*hclsyntax.LiteralValueExpr); ok && lit.Val.Type() == cty.Number {
			out = append(out, Problem{Pos: rangePos(lit.SrcRange), Msg: "unquoted number", Hint: `write decimals as quoted strings, such as percent = "12.5"`})
		}
		return nil
	})
	return out
}
