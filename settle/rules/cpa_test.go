package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

const cpaFee = `ruleset "v1" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
  fee "a-cpa" {
    party          = "A"
    basis          = "cpa"
    period         = "month"
    currency       = "EUR"
    minimum        = "0"
    carry_negative = false
    cpa {
      amount      = "50.00"
      min_deposit = "20.00"
      within_days = "30"
    }
  }
}
`

// TestCPAParse: a cpa fee parses into its rule and is part of the canonical
// form; misuse is reported with its fix.
func TestCPAParse(t *testing.T) {
	fees, err := ParseFees([]byte(cpaFee), "test.hcl")
	if err != nil {
		t.Fatal(err)
	}
	c := fees[0].CPA
	if c == nil || c.Amount.String() != "50" || c.MinDeposit.String() != "20" || c.WithinDays != 30 {
		t.Fatalf("cpa %+v", c)
	}
	book, err := Parse([]byte(cpaFee), "test.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v := book.Versions()[0]
	if !strings.Contains(string(v.Canonical()), `"cpa":{"amount":"50","min_deposit":"20","within_days":30}`) {
		t.Errorf("canonical form lacks the cpa rule: %s", v.Canonical())
	}
	r, err := fees[0].ComputeCPA(3)
	if err != nil || r.Fee.String() != "150" {
		t.Fatalf("ComputeCPA(3) = %v, %v; want 150", r.Fee, err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"tiers", "    cpa {", "    tier {\n      percent = \"1\"\n    }\n    cpa {", "tiers on a cpa fee"},
		{"mode", `    minimum        = "0"`, "    mode = \"marginal\"\n    minimum = \"0\"", `mode "marginal" on a cpa fee`},
		{"no block", `basis          = "cpa"`, `basis          = "ggr"`, `a cpa block on a "ggr" fee`},
		{"carry", "carry_negative = false", "carry_negative = true", "carry_negative = true on a cpa fee"},
		{"amount", `amount      = "50.00"`, `amount      = "50.001"`, "amount 50.001 has more decimals"},
		{"days", `within_days = "30"`, `within_days = "030"`, `"030" is not a whole number`},
	} {
		_, err := ParseFees([]byte(strings.Replace(cpaFee, tc.old, tc.new, 1)), "test.hcl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	noMode := strings.Replace(strings.Replace(cpaFee, `basis          = "cpa"`, `basis          = "deposits"`, 1), "    cpa {\n      amount      = \"50.00\"\n      min_deposit = \"20.00\"\n      within_days = \"30\"\n    }\n", "    tier {\n      percent = \"1\"\n    }\n", 1)
	if _, err := ParseFees([]byte(noMode), "test.hcl"); err == nil || !strings.Contains(err.Error(), `"mode" is required`) {
		t.Errorf("deposits fee without mode: %v", err)
	}
}

// TestCPAQualifies: the rule's bounds are inclusive.
func TestCPAQualifies(t *testing.T) {
	c := CPA{Amount: decimal.New(50, 0), MinDeposit: decimal.New(20, 0), WithinDays: 30}
	seen := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		net  string
		at   time.Time
		want bool
	}{
		{"20.00", seen.Add(30 * 24 * time.Hour), true},
		{"19.99", seen, false},
		{"20.00", seen.Add(30*24*time.Hour + time.Second), false},
		{"0", seen, false},
	} {
		if got := c.Qualifies(decimal.RequireFromString(tc.net), tc.at, seen); got != tc.want {
			t.Errorf("Qualifies(%s, %s) = %v", tc.net, tc.at, got)
		}
	}
}

// TestCPAClawbackParse: clawback_days is part of the rule and of the
// canonical form (absent without it, so older versions keep their hash),
// round-trips through ParseCanonical, and is a whole number of days; a
// reversal counts when it occurred at most that many days after the
// deposit (bound inclusive).
func TestCPAClawbackParse(t *testing.T) {
	src := strings.Replace(cpaFee, `within_days = "30"`, "within_days = \"30\"\n      clawback_days = \"90\"", 1)
	book, err := Parse([]byte(src), "test.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v := book.Versions()[0]
	if c := v.Fees()[0].CPA; c == nil || c.ClawbackDays != 90 {
		t.Fatalf("cpa %+v", c)
	}
	if !strings.Contains(string(v.Canonical()), `"cpa":{"amount":"50","min_deposit":"20","within_days":30,"clawback_days":90}`) {
		t.Errorf("canonical form lacks clawback_days: %s", v.Canonical())
	}
	back, err := ParseCanonical(v.Canonical())
	if err != nil || back.Hash() != v.Hash() || back.Fees()[0].CPA.ClawbackDays != 90 {
		t.Fatalf("canonical round trip: %v", err)
	}
	plain, err := Parse([]byte(cpaFee), "test.hcl")
	if err != nil || strings.Contains(string(plain.Versions()[0].Canonical()), "clawback") {
		t.Fatalf("a fee without clawback_days encodes one: %v", err)
	}
	for _, bad := range []string{`"0"`, `"090"`, `"x"`, `"36601"`} {
		_, err := ParseFees([]byte(strings.Replace(src, `clawback_days = "90"`, "clawback_days = "+bad, 1)), "test.hcl")
		if err == nil || !strings.Contains(err.Error(), "clawback_days: "+bad+" is not a whole number from 1 to 36600") {
			t.Errorf("clawback_days = %s: %v", bad, err)
		}
	}
	dep := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	c := CPA{ClawbackDays: 30}
	if !c.Counts(dep, dep.Add(30*24*time.Hour)) || c.Counts(dep, dep.Add(30*24*time.Hour+time.Second)) || !(CPA{}).Counts(dep, dep.AddDate(5, 0, 0)) {
		t.Error("Counts: the window is 30 × 24 h, inclusive; without one every reversal counts")
	}
}
