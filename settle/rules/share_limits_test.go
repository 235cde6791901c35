package rules

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

// TestShareLimitsExample asserts the worked example of docs/rules.md "Caps
// and floors on shares" (testdata/share-limits.hcl).
func TestShareLimitsExample(t *testing.T) {
	b := mustParseFile(t, "testdata/share-limits.hcl")
	eur := cur(t, "EUR")
	for _, c := range []struct {
		typ    txn.Type
		amount string
		funds  string
		rule   string
		want   map[string]string
	}{
		{txn.Bet, "1000.00", "cash", "cash", map[string]string{"aff": "50.00", "studio": "100.00", "operator": "850.00"}},
		{txn.Bet, "5.00", "", "cash", map[string]string{"aff": "1.50", "studio": "1.00", "operator": "2.50"}},
		{txn.Win, "1000.00", "cash", "cash", map[string]string{"aff": "-50.00", "studio": "-100.00", "operator": "-850.00"}},
		{txn.Bet, "0.50", "cash", "cash", map[string]string{"aff": "0.15", "studio": "0.35", "operator": "0.00"}},
		{txn.Bet, "1000.00", "bonus", "bonus funds", map[string]string{"operator": "1000.00"}},
	} {
		x := tx(t, c.typ, c.amount, "EUR", "2026-06-01T00:00:00Z")
		if c.funds != "" {
			x.Meta = map[string]string{"funds": c.funds}
		}
		res, err := b.Split("P", x)
		if err != nil {
			t.Fatal(err)
		}
		got := sharesMap(t, eur, res.Shares)
		if res.Rule != c.rule || len(got) != len(c.want) {
			t.Errorf("%s %s %s: rule %q shares %v, want %q %v", c.typ, c.amount, c.funds, res.Rule, got, c.rule, c.want)
			continue
		}
		for p, w := range c.want {
			if got[p] != w {
				t.Errorf("%s %s %s: %s = %s, want %s", c.typ, c.amount, c.funds, p, got[p], w)
			}
		}
	}
}

// TestShareLimitsProperties: random amounts, caps and floors. Shares sum to
// the amount exactly (Split panics otherwise), a capped share never exceeds
// its cap, a floored share reaches its floor unless the remainder party is
// empty, and the remainder party never takes the opposite sign because of a
// floor.
func TestShareLimitsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 4))
	for iter := 0; iter < 400; iter++ {
		code := []string{"EUR", "JPY", "KWD"}[rng.IntN(3)]
		c := cur(t, code)
		unit := decimal.New(1, -int32(c.Exponent))
		capv := decimal.New(rng.Int64N(100000), -int32(c.Exponent))
		floor := decimal.Min(capv, decimal.New(rng.Int64N(10000), -int32(c.Exponent)))
		pa, pb := 1+rng.IntN(60), 1+rng.IntN(39)
		src := `ruleset "p" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "` + []string{"half_up", "half_even", "down"}[rng.IntN(3)] + `"
  allocation = "` + []string{"largest_remainder", "top_down"}[rng.IntN(2)] + `"
  rule "r" {
    share "a" {
      party   = "a"
      percent = "` + decimal.NewFromInt(int64(pa)).String() + `"
      cap     = "` + capv.String() + `"
    }
    share "b" {
      party   = "b"
      percent = "` + decimal.NewFromInt(int64(pb)).String() + `"
      floor   = "` + floor.String() + `"
    }
    remainder = "operator"
  }
}
`
		b := mustParse(t, src)
		amt := decimal.New(rng.Int64N(10_000_000), -int32(c.Exponent))
		typ := []txn.Type{txn.Bet, txn.Win}[rng.IntN(2)]
		x := tx(t, typ, amt.StringFixed(int32(c.Exponent)), code, "2026-06-01T00:00:00Z")
		res, err := b.Split("P", x)
		if err != nil {
			t.Fatal(err)
		}
		sh := map[string]decimal.Decimal{}
		for _, s := range res.Shares {
			sh[s.Party] = s.Amount.Abs()
			if s.Amount.Sign()*x.Signed().Sign() < 0 {
				t.Fatalf("%s %s: %s has the opposite sign: %v", typ, amt, s.Party, res.Shares)
			}
		}
		if sh["a"].GreaterThan(capv) {
			t.Fatalf("a = %s above cap %s", sh["a"], capv)
		}
		if sh["b"].LessThan(floor) && sh["operator"].GreaterThanOrEqual(unit) {
			t.Fatalf("b = %s below floor %s while operator holds %s", sh["b"], floor, sh["operator"])
		}
		if sum := money.Sum(res.Shares); !sum.Equal(x.Signed()) {
			t.Fatalf("sum %s ≠ %s", sum, x.Signed())
		}
	}
}

func TestShareLimitErrors(t *testing.T) {
	_, err := Parse([]byte(`ruleset "v" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "m" {
    meta = { funds = [] }
    share "a" {
      party   = "a"
      percent = "100"
    }
  }
  rule "r" {
    share "a" {
      party   = "a"
      percent = "50"
      cap     = "1.00"
      floor   = "2.00"
    }
    share "b" {
      party   = "b"
      percent = "50"
      cap     = "1.00"
    }
  }
}
`), "test.hcl")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("accepted: %v", err)
	}
	for _, w := range []string{`floor 2 is above cap 1`, `a share with a cap or floor needs a remainder party`, `meta: key "funds" has no value`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// TestFeeMetaCondition: a fee contract selects on player attributes too:
// only cash-funded transactions count in this fee's basis.
func TestFeeMetaCondition(t *testing.T) {
	b := mustParse(t, `ruleset "v" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "r" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
  fee "cash only" {
    party          = "aff"
    basis          = "ggr"
    meta           = { funds = ["cash", "cash"] }
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = false
    tier {
      percent = "25"
    }
  }
}
`)
	v := b.Versions()[0]
	fc := v.Fees()[0]
	x := tx(t, txn.Bet, "10.00", "EUR", "2026-06-01T00:00:00Z")
	if fc.Selects("P", x) {
		t.Error("a transaction without meta.funds selected")
	}
	x.Meta = map[string]string{"funds": "bonus"}
	if fc.Selects("P", x) {
		t.Error("a bonus-funded transaction selected")
	}
	x.Meta = map[string]string{"funds": "cash"}
	if !fc.Selects("P", x) {
		t.Error("a cash transaction not selected")
	}
	if !strings.Contains(string(v.Canonical()), `"meta":{"funds":["cash"]}`) {
		t.Errorf("canonical: %s", v.Canonical())
	}
	back, err := ParseCanonical(v.Canonical())
	if err != nil || back.Hash() != v.Hash() || !back.Fees()[0].Selects("P", x) {
		t.Fatalf("round trip: %v", err)
	}
}
