package rules

import (
	"errors"
	"strings"
	"testing"
)

func TestPayoutParse(t *testing.T) {
	b := mustParseFile(t, "testdata/carry-payout.hcl")
	v := b.Versions()[0]
	p, ok := v.Payout("A", "EUR")
	if !ok || !p.Minimum.Equal(dec("100")) {
		t.Fatalf("Payout(A, EUR) = %+v, %v", p, ok)
	}
	if _, ok := v.Payout("A", "USD"); ok {
		t.Fatal("payout in a currency the ruleset does not name")
	}
	c := string(v.Canonical())
	for _, w := range []string{`"payouts":[{"party":"A","currency":"EUR","minimum":"100"}]`, `"carry_reset":"quarter"`, `"parties":[{"name":"A"},{"name":"operator"}]`} {
		if !strings.Contains(c, w) {
			t.Errorf("canonical lacks %s:\n%s", w, c)
		}
	}
	back, err := ParseCanonical(v.Canonical())
	if err != nil || back.Hash() != v.Hash() {
		t.Fatalf("round trip: %v", err)
	}
	if _, ok := back.Payout("A", "EUR"); !ok {
		t.Fatal("round trip lost the payout")
	}
	for _, c := range []struct{ due, withheld, closing string }{
		{"0", "99.99", "99.99"}, {"100.00", "0", "100.00"}, {"0", "-5.00", "-5.00"}, {"0", "0", "0"},
	} {
		d, w := p.Split(dec(c.closing))
		if !d.Equal(dec(c.due)) || !w.Equal(dec(c.withheld)) || !d.Add(w).Equal(dec(c.closing)) {
			t.Errorf("Split(%s) = %s, %s; want %s, %s", c.closing, d, w, c.due, c.withheld)
		}
	}
}

func TestPayoutErrors(t *testing.T) {
	_, err := Parse([]byte(checkHead+`
  rule "r" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
  payout "studio" {
    currency = "EURO"
    minimum  = "1"
  }
  payout "operator" {
    currency = "EUR"
    minimum  = "0.001"
  }
  payout "ghost" {
    currency = "EUR"
    minimum  = "1"
  }
}
`), "test.hcl")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("accepted: %v", err)
	}
	for _, w := range []string{`currency: "EURO" is not a known ISO 4217 currency code`, `minimum: 0.001 has more decimals than EUR allows (2)`, `payout: party "ghost" is not declared`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}
