package rules

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

const treeHead = `ruleset "t" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  party "operator" {}
  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
`

func treeOf(t *testing.T, src string) *Tree {
	t.Helper()
	b := mustParse(t, treeHead+src+"}\n")
	v, err := b.At(ts("2026-06-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	return v.Tree()
}

// TestTreeVector: the figures of vectors/hierarchy.json from Tree.Compute
// alone, given A's commission (30% of the NGR, computed by the fee).
func TestTreeVector(t *testing.T) {
	eur := cur(t, "EUR")
	for _, c := range []struct {
		paidBy, ownA string
		net          map[string]string
	}{
		{"operator", "6000.00", map[string]string{"A": "6000", "S": "600", "M": "30"}},
		{"below", "6000.00", map[string]string{"A": "5400", "S": "570", "M": "30"}},
		{"operator", "0.00", map[string]string{"A": "0", "S": "0", "M": "0"}},
		{"operator", "0.05", map[string]string{"A": "0.05", "S": "0.01", "M": "0"}},
	} {
		tr := treeOf(t, fmt.Sprintf(`
  partner "M" {}
  partner "S" { parent = "M" }
  partner "A" { parent = "S" }
  override "S-on-A" {
    party   = "S"
    of      = "A"
    percent = "10"
    paid_by = %q
  }
  override "M-on-S" {
    party   = "M"
    of      = "S"
    percent = "5"
    paid_by = %q
  }
`, c.paidBy, c.paidBy))
		r, err := tr.Compute(eur, map[string]decimal.Decimal{"A": dec(c.ownA)})
		if err != nil {
			t.Fatal(err)
		}
		for p, w := range c.net {
			if !r.Net[p].Equal(dec(w)) {
				t.Errorf("%s A=%s: net %s = %s, want %s", c.paidBy, c.ownA, p, r.Net[p], w)
			}
		}
	}
}

func TestTreeParseErrors(t *testing.T) {
	for _, c := range []struct {
		name, src string
		want      []string
	}{
		{"undeclared parent", `partner "A" { parent = "S" }`, []string{`parent: parent "S" is not a declared partner`}},
		{"own parent", `partner "A" { parent = "A" }`, []string{`is its own parent`}},
		{"cycle", "partner \"A\" { parent = \"B\" }\npartner \"B\" { parent = \"A\" }", []string{`in a cycle of parents`}},
		{"too deep", "partner_depth = \"2\"\npartner \"M\" {}\npartner \"S\" { parent = \"M\" }\npartner \"A\" { parent = \"S\" }", []string{`partner "A" is at depth 3, deeper than 2`}},
		{"bad depth", "partner_depth = \"0\"\npartner \"M\" {}", []string{`partner_depth: "0" is not a whole number from 1 to 16`}},
		{"duplicate partner", "partner \"M\" {}\npartner \"M\" {}", []string{`partner "M" already declared`}},
		{"override not by the parent", "partner \"M\" {}\npartner \"S\" { parent = \"M\" }\npartner \"A\" { parent = \"S\" }\noverride \"o\" {\n party = \"M\"\n of = \"A\"\n percent = \"5\"\n paid_by = \"operator\"\n}",
			[]string{`party: "M" is not the parent of "A" (its parent is "S")`}},
		{"override of an undeclared partner", "partner \"M\" {}\noverride \"o\" {\n party = \"M\"\n of = \"X\"\n percent = \"5\"\n paid_by = \"operator\"\n}", []string{`of: "X" is not a declared partner`}},
		{"override above 100", "partner \"M\" {}\npartner \"S\" { parent = \"M\" }\noverride \"o\" {\n party = \"M\"\n of = \"S\"\n percent = \"100.01\"\n paid_by = \"below\"\n}", []string{`percent: 100.01 is above 100`}},
		{"unknown payer", "partner \"M\" {}\npartner \"S\" { parent = \"M\" }\noverride \"o\" {\n party = \"M\"\n of = \"S\"\n percent = \"5\"\n paid_by = \"agent\"\n}", []string{`paid_by: unknown payer "agent"`}},
		{"two overrides on one partner", "partner \"M\" {}\npartner \"S\" { parent = \"M\" }\noverride \"o1\" {\n party = \"M\"\n of = \"S\"\n percent = \"5\"\n paid_by = \"below\"\n}\noverride \"o2\" {\n party = \"M\"\n of = \"S\"\n percent = \"5\"\n paid_by = \"below\"\n}", []string{`"S" already pays override "o1"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(treeHead+c.src+"\n}\n"), "test.hcl")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse accepted it (err %v)", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestTreeCanonical: the tree is part of the version's canonical form and
// hash, round-trips through ParseCanonical, and a version without partners
// encodes none of its keys.
func TestTreeCanonical(t *testing.T) {
	b := mustParseFile(t, "testdata/vectors/hierarchy-on-top.hcl")
	v := b.Versions()[0]
	c := string(v.Canonical())
	for _, w := range []string{`"partner_depth":"3"`, `"partners":[{"name":"A","parent":"S"},{"name":"M"},{"name":"S","parent":"M"}]`, `"overrides":[{"name":"M-on-S","party":"M","of":"S","percent":"5","paid_by":"operator","rounding":"half_up"}`, `"affiliates":["A"]`, `"basis":"ngr"`} {
		if !strings.Contains(c, w) {
			t.Errorf("canonical lacks %s:\n%s", w, c)
		}
	}
	back, err := ParseCanonical(v.Canonical())
	if err != nil {
		t.Fatalf("ParseCanonical: %v", err)
	}
	if back.Hash() != v.Hash() || back.Tree() == nil || len(back.Tree().Overrides) != 2 {
		t.Fatalf("round trip lost the tree: %+v", back.Tree())
	}
	d := mustParseFile(t, "testdata/vectors/hierarchy-deducted.hcl").Versions()[0]
	if d.Hash() == v.Hash() {
		t.Fatal("paid_by does not change the hash")
	}
	plain := mustParseFile(t, "testdata/vectors/tiers.hcl").Versions()[0]
	if s := string(plain.Canonical()); strings.Contains(s, "partner") || strings.Contains(s, "override") || strings.Contains(s, "affiliates") {
		t.Fatalf("a version without partners encodes tree keys: %s", s)
	}
}

// TestTreeProperties: random trees (depth ≤ 6, up to 30 partners) with
// random percents and commissions. Every figure fits the currency; each
// override is its percent of the gross commission below rounded once
// (within half a minor unit of exact, never above percent × base + half a
// unit, 0 on a base ≤ 0); on top, every partner keeps its gross and the
// operator pays Σ own + Σ overrides; deducted, the tree is paid exactly Σ
// own (overrides only move money up) and no partner with a commission ≥ 0
// ends negative.
func TestTreeProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 1))
	for iter := 0; iter < 300; iter++ {
		code := []string{"EUR", "JPY", "KWD"}[rng.IntN(3)]
		c := cur(t, code)
		paidBy := []string{PaidByOperator, PaidByBelow}[rng.IntN(2)]
		n := 1 + rng.IntN(30)
		var src strings.Builder
		src.WriteString("partner_depth = \"6\"\n")
		depth := map[int]int{}
		for i := 0; i < n; i++ {
			fmt.Fprintf(&src, "partner \"p%d\" {", i)
			depth[i] = 1
			if i > 0 && rng.IntN(5) > 0 {
				par := rng.IntN(i)
				if depth[par] < 6 {
					fmt.Fprintf(&src, " parent = \"p%d\"", par)
					depth[i] = depth[par] + 1
					pct := decimal.New(rng.Int64N(10001), -2) // 0.00 to 100.00
					fmt.Fprintf(&src, " }\noverride \"o%d\" {\n party = \"p%d\"\n of = \"p%d\"\n percent = %q\n paid_by = %q\n", i, par, i, pct.String(), paidBy)
				}
			}
			src.WriteString("}\n")
		}
		tr := treeOf(t, src.String())
		own := map[string]decimal.Decimal{}
		sumOwn := decimal.Zero
		for i := 0; i < n; i++ {
			if rng.IntN(3) == 0 {
				continue
			}
			a := decimal.New(rng.Int64N(1_000_000_00)-1_000_00, -int32(c.Exponent)) // mostly ≥ 0, some negative
			own[fmt.Sprintf("p%d", i)] = a
			sumOwn = sumOwn.Add(a)
		}
		r, err := tr.Compute(c, own)
		if err != nil {
			t.Fatal(err)
		}
		half := decimal.New(5, -int32(c.Exponent)-1)
		sumOv := decimal.Zero
		for _, o := range r.Overrides {
			if !c.Fits(o.Amount) || o.Amount.IsNegative() {
				t.Fatalf("override %s = %s: negative or does not fit %s", o.Name, o.Amount, code)
			}
			if !o.Base.IsPositive() && !o.Amount.IsZero() {
				t.Fatalf("override %s on base %s = %s, want 0", o.Name, o.Base, o.Amount)
			}
			limit := decimal.Max(o.Base, decimal.Zero).Mul(o.Percent).Shift(-2)
			if o.Amount.Sub(limit).Abs().GreaterThan(half) || o.Amount.GreaterThan(limit.Add(half)) {
				t.Fatalf("override %s = %s, exact %s: off by more than half a unit", o.Name, o.Amount, limit)
			}
			if o.Base.IsPositive() && o.Amount.GreaterThan(o.Base) {
				t.Fatalf("override %s = %s exceeds the commission below %s", o.Name, o.Amount, o.Base)
			}
			sumOv = sumOv.Add(o.Amount)
		}
		sumNet := decimal.Zero
		for p, net := range r.Net {
			sumNet = sumNet.Add(net)
			if paidBy == PaidByOperator && !net.Equal(r.Gross[p]) {
				t.Fatalf("on top: %s net %s ≠ gross %s", p, net, r.Gross[p])
			}
			if paidBy == PaidByBelow && !own[p].IsNegative() && net.IsNegative() {
				t.Fatalf("deducted: %s with commission %s ends at %s", p, own[p], net)
			}
		}
		want := sumOwn
		if paidBy == PaidByOperator {
			want = sumOwn.Add(sumOv)
		}
		if !sumNet.Equal(want) {
			t.Fatalf("%s: tree paid %s, want %s (own %s, overrides %s)", paidBy, sumNet, want, sumOwn, sumOv)
		}
	}
}
