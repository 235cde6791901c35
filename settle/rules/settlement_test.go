package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/tally-mesh/tally/money"
)

const settlementSrcOK = `
ruleset "fx" {
  effective  = "2026-11-01T00:00:00Z"
  rounding   = "down"
  allocation = "largest_remainder"
  rule "all" {
    share "studio" {
      party   = "studio-b"
      percent = "30"
    }
    remainder = "operator"
  }
  settlement "studio-b" {
    currency      = "USD"
    source        = "ecb"
    allow_inverse = true
  }
  settlement "operator" {
    currency = "EUR"
    rounding = "half_up"
  }
}
`

func TestSettlementParse(t *testing.T) {
	v := mustParse(t, settlementSrcOK).Versions()[0]
	s, ok := v.Settlement("studio-b")
	if !ok || s.Currency.Code != "USD" || s.Rounding != DefaultFXRounding || s.Source != "ecb" || !s.Inverse {
		t.Fatalf("Settlement(studio-b) = %+v, %v", s, ok)
	}
	if DefaultFXRounding != money.HalfEven {
		t.Fatal("docs/rules.md states half_even as the default FX rounding")
	}
	if s, _ := v.Settlement("operator"); s.Rounding != money.HalfUp || s.Inverse || s.Source != "" {
		t.Fatalf("operator: %+v", s)
	}
	if _, ok := v.Settlement("nobody"); ok {
		t.Fatal("settlement of an unnamed party")
	}
	c := string(v.Canonical())
	for _, w := range []string{`"settlements":[{"party":"operator","currency":"EUR","rounding":"half_up"},{"party":"studio-b","currency":"USD","rounding":"half_even","source":"ecb","allow_inverse":true}]`} {
		if !strings.Contains(c, w) {
			t.Errorf("canonical lacks %s:\n%s", w, c)
		}
	}
	back, err := ParseCanonical(v.Canonical())
	if err != nil || back.Hash() != v.Hash() {
		t.Fatalf("round trip: %v", err)
	}
	if len(back.Settlements()) != 2 {
		t.Fatal("round trip lost a settlement")
	}
	// A version without settlements encodes no key: older hashes unchanged.
	if strings.Contains(string(mustParse(t, plainRuleset).Versions()[0].Canonical()), "settlements") {
		t.Fatal("empty settlements encoded")
	}
}

const plainRuleset = `
ruleset "plain" {
  effective  = "2026-11-01T00:00:00Z"
  rounding   = "down"
  allocation = "largest_remainder"
  rule "all" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
}
`

func TestSettlementProblems(t *testing.T) {
	for name, c := range map[string]struct{ block, want string }{
		"currency": {`settlement "a" { currency = "XYZ" }`, `"XYZ" is not a known ISO 4217`},
		"rounding": {"settlement \"a\" {\n currency = \"USD\"\n rounding = \"nearest\"\n}", `unknown rounding "nearest"`},
		"twice":    {`settlement "a" { currency = "USD" }` + "\n" + `settlement "a" { currency = "GBP" }`, `settlement of "a" already defined`},
		"fee":      {`settlement "a" { currency = "USD" }` + "\n" + "fee \"f\" {\n party = \"a\"\n currency = \"EUR\"\n period = \"month\"\n basis = \"ggr\"\n rounding = \"down\"\n mode = \"marginal\"\n carry_negative = false\n minimum = \"0\"\n tier {\n percent = \"10\"\n }\n}", `fee "f" of "a" is in EUR but the party is settled in USD`},
		"payout":   {`settlement "a" { currency = "USD" }` + "\n" + "payout \"a\" {\n currency = \"EUR\"\n minimum = \"10\"\n}", `payout of "a" is in EUR but the party is settled in USD`},
		"declared": {`party "operator" {}` + "\n" + `settlement "typo" { currency = "USD" }`, `party "typo" is not declared`},
	} {
		src := strings.Replace(plainRuleset, "rule \"all\"", c.block+"\n  rule \"all\"", 1)
		_, err := Parse([]byte(src), "test.hcl")
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
