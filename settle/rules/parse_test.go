package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// head is a valid ruleset opening; tests append rules and close it.
const head = `ruleset "v1" {
  effective  = "2026-11-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
`

const opShare = `
  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings that must all appear, positions included
	}{
		{"hcl syntax", `ruleset "x" {`, []string{"test.hcl:1:"}},
		{"no ruleset", `# empty`, []string{"test.hcl: ruleset: no ruleset block"}},
		{"unknown key", head + `  colour = "red"` + opShare + "}", []string{`test.hcl:5:3: Unsupported argument`, `"colour"`}},
		{"missing rounding", `ruleset "v" {
  effective = "2026-11-01T00:00:00Z"
  allocation = "top_down"` + opShare + "}", []string{`test.hcl:1:`, `"rounding" is required`}},
		{"bad effective", strings.Replace(head, "2026-11-01T00:00:00Z", "2026-11-01", 1) + opShare + "}", []string{`test.hcl:2:16: effective: "2026-11-01" is not an RFC 3339 time`}},
		{"bad rounding", strings.Replace(head, `"half_up"`, `"nearest"`, 1) + opShare + "}", []string{`test.hcl:3:16: rounding: unknown rounding "nearest"`, "never implied"}},
		{"bad allocation", strings.Replace(head, `"largest_remainder"`, `"pro_rata"`, 1) + opShare + "}", []string{`test.hcl:4:16: allocation: unknown allocation "pro_rata"`}},
		{"no rules", head + "}", []string{"test.hcl:1:1: rule: ruleset has no rule"}},
		{"percent over 100", head + `
  rule "r" {
    share "a" {
      party   = "a"
      percent = "60"
    }
    share "b" {
      party   = "b"
      percent = "50"
    }
  }
}`, []string{"test.hcl:6:3: percent: shares add up to 110%"}},
		{"percent under 100 without remainder", head + `
  rule "r" {
    share "a" {
      party   = "a"
      percent = "60"
    }
  }
}`, []string{`test.hcl:6:3: remainder: shares add up to 60%`, `add remainder = "operator"`}},
		{"affiliate without remainder", head + `
  rule "r" {
    share "a" {
      party   = "${affiliate}"
      percent = "100"
    }
  }
}`, []string{`test.hcl:6:3: remainder: a share for "${affiliate}" needs a remainder party`}},
		{"unknown variable", head + `
  rule "r" {
    share "a" {
      party   = "${player}"
      percent = "100"
    }
  }
}`, []string{`test.hcl:8:20: Unknown variable`, `"player"`}},
		{"exponent decimal", head + `
  rule "r" {
    share "a" {
      party   = "a"
      percent = "1e2"
    }
  }
}`, []string{`test.hcl:9:17: percent: "1e2" is not a plain non-negative decimal`}},
		{"unquoted number", head + `
  rule "r" {
    share "a" {
      party   = "a"
      percent = 1e999999999
    }
  }
}`, []string{`test.hcl:9:17: unquoted number`, `quoted strings`}},
		{"negative weight", head + `
  rule "r" {
    share "a" {
      party  = "a"
      weight = "-1"
    }
  }
}`, []string{`test.hcl:9:16: weight: "-1" is not a plain non-negative decimal`}},
		{"mixed percent and weight", head + `
  rule "r" {
    share "a" {
      party   = "a"
      percent = "50"
    }
    share "b" {
      party  = "b"
      weight = "1"
    }
  }
}`, []string{`test.hcl:6:3: share: a rule mixes percent and weight shares`}},
		{"reversal type and unknown currency", head + `
  rule "r" {
    types      = ["refund"]
    currencies = ["EURO"]
    share "a" {
      party   = "a"
      percent = "100"
    }
  }
}`, []string{`test.hcl:7:18: types: "refund" is a reversal`, `test.hcl:8:18: currencies: "EURO" is not a known ISO 4217`}},
		{"remainder_to without remainder", head + `
  rule "r" {
    allocation = "remainder_to"
    share "a" {
      party   = "a"
      percent = "100"
    }
  }
}`, []string{`test.hcl:6:3: remainder: allocation "remainder_to" needs a remainder party`}},
		{"duplicate rule and share", head + `
  rule "r" {
    share "a" {
      party   = "a"
      percent = "50"
    }
    share "a" {
      party   = "b"
      percent = "50"
    }
  }
  rule "r" {
    share "a" {
      party   = "a"
      percent = "100"
    }
  }
}`, []string{`test.hcl:11:5: share: share "a" declared twice`, `test.hcl:16:3: rule: rule "r" already defined at test.hcl:6:3`}},
		{"waterfall problems", head + `
  rule "w" {
    step "tax" {
      party      = "tax"
      percent    = "12"
      percent_of = "ggr"
    }
    step "bonus" {
      party = "bonus"
      fixed = "1.5"
    }
  }
}`, []string{`test.hcl:10:20: percent_of: "ggr" is not a percent base`, `test.hcl:14:15: fixed: a fixed amount needs the rule to be limited to its currencies`, `test.hcl:6:3: remainder: a waterfall needs a remainder party`}},
		{"fixed does not fit currency", head + `
  rule "w" {
    currencies = ["JPY"]
    step "bonus" {
      party = "bonus"
      fixed = "1.5"
    }
    remainder = "operator"
  }
}`, []string{`test.hcl:10:15: fixed: 1.5 has more decimals than JPY allows (0)`}},
		{"shares and steps", head + `
  rule "x" {
    share "a" {
      party   = "a"
      percent = "100"
    }
    step "b" {
      party      = "b"
      percent    = "1"
      percent_of = "amount"
    }
    remainder = "operator"
  }
}`, []string{`test.hcl:6:3: share: a rule has either share blocks or step blocks, not both`}},
		{"party mixing text and reference", head + `
  rule "r" {
    share "a" {
      party   = "studio-${provider}"
      percent = "100"
    }
  }
}`, []string{`test.hcl:8:17: party: party "studio-${provider}" mixes a reference with text`}},
		{"same effective twice", head + opShare + "}\n" + strings.Replace(head, `"v1"`, `"v2"`, 1) + opShare + "}", []string{`version "v2" has the same effective time as "v1"`}},
		{"same name twice", head + opShare + "}\n" + strings.Replace(head, "2026-11-01", "2026-12-01", 1) + opShare + "}", []string{`version "v1" already defined at test.hcl:1:1`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "test.hcl")
			if err == nil {
				t.Fatalf("Parse succeeded, want errors %q", tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse error %v does not match ErrInvalid", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Errorf("Parse error %v is not a *ParseError with problems", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse error\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// TestParseReportsAllProblems checks that one parse reports every problem of
// a file, syntax-level and semantic, each with its own position.
func TestParseReportsAllProblems(t *testing.T) {
	src := `ruleset "x" {
  effective  = "soon"
  rounding   = "half_upp"
  allocation = "top_down"
  rule "a" {
    types = ["bett"]
    share "s" {
      party  = "${affiliate}"
      percnt = "5"
    }
  }
}`
	_, err := Parse([]byte(src), "all.hcl")
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Parse error = %v, want *ParseError", err)
	}
	for _, w := range []string{"all.hcl:9:7: Unsupported argument", "all.hcl:2:16: effective", "all.hcl:3:16: rounding", "all.hcl:6:13: types", "all.hcl:7:5: percent: share has neither", "all.hcl:5:3: remainder"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Parse error\n%v\nwant it to contain %q", err, w)
		}
	}
}

func TestParseFileErrors(t *testing.T) {
	_, err := ParseFile("testdata/does-not-exist.hcl")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "testdata/does-not-exist.hcl") {
		t.Errorf("ParseFile(missing) = %v, want ErrInvalid naming the file", err)
	}
	if _, err := Parse(make([]byte, MaxSourceBytes+1), "big.hcl"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Parse(oversized) = %v, want ErrInvalid", err)
	}
}

func TestExampleVersions(t *testing.T) {
	b := mustParseFile(t, "testdata/example.hcl")
	vs := b.Versions()
	if len(vs) != 2 || vs[0].Name != "2026-11" || vs[1].Name != "2026-12" {
		t.Fatalf("Versions() = %v, want 2026-11 then 2026-12", vs)
	}
	if !vs[1].Effective.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("2026-12 effective = %s", vs[1].Effective)
	}
	tests := []struct {
		when    string
		want    string
		wantErr error
	}{
		{"2026-10-31T23:59:59Z", "", ErrNoVersion},
		{"2026-11-01T00:00:00Z", "2026-11", nil},
		{"2026-11-30T23:59:59.999999999Z", "2026-11", nil},
		{"2026-12-01T00:00:00Z", "2026-12", nil},
		{"2026-12-01T01:30:00+02:00", "2026-11", nil}, // 2026-11-30T23:30Z
		{"2030-01-01T00:00:00Z", "2026-12", nil},
	}
	for _, tc := range tests {
		v, err := b.At(ts(tc.when))
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("At(%s) error = %v, want %v", tc.when, err, tc.wantErr)
			continue
		}
		if err == nil && v.Name != tc.want {
			t.Errorf("At(%s) = %s, want %s", tc.when, v.Name, tc.want)
		}
	}
}

// TestParseFilesMerges checks that versions from several files form one book
// and that a clash across files is reported with both positions.
func TestParseFilesMerges(t *testing.T) {
	b, err := ParseFiles("testdata/example.hcl", "testdata/vectors/waterfall-jpy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(b.Versions()); got != 3 {
		t.Errorf("ParseFiles = %d versions, want 3", got)
	}
	if b.Versions()[0].Name != "waterfall" {
		t.Errorf("first version = %s, want the earliest (waterfall)", b.Versions()[0].Name)
	}
	_, err = ParseFiles("testdata/example.hcl", "testdata/example.hcl")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `version "2026-11" already defined at testdata/example.hcl:5:1`) {
		t.Errorf("ParseFiles(twice) = %v, want a duplicate-version error", err)
	}
}

// TestCanonicalGolden pins the canonical encoding and hash of the example
// versions: an unintended change to the encoding would change every recorded
// rule hash. Regenerate with -update only for an intended change.
func TestCanonicalGolden(t *testing.T) {
	b := mustParseFile(t, "testdata/example.hcl")
	var got strings.Builder
	for _, v := range b.Versions() {
		h := v.Hash()
		got.WriteString(hex.EncodeToString(h[:]) + " " + string(v.Canonical()) + "\n")
	}
	const golden = "testdata/example.canonical"
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got.String() != string(want) {
		t.Errorf("canonical encoding changed:\ngot\n%s\nwant\n%s", got.String(), want)
	}
}

func TestCanonicalRoundTrip(t *testing.T) {
	for _, path := range []string{"testdata/example.hcl", "testdata/vectors/allocation.hcl", "testdata/vectors/waterfall-jpy.hcl"} {
		for _, v := range mustParseFile(t, path).Versions() {
			c := v.Canonical()
			if h := v.Hash(); h != sha256.Sum256(c) {
				t.Errorf("%s %s: Hash() is not SHA-256 of Canonical()", path, v.Name)
			}
			back, err := ParseCanonical(c)
			if err != nil {
				t.Fatalf("%s %s: ParseCanonical: %v", path, v.Name, err)
			}
			if back.Hash() != v.Hash() || back.Name != v.Name || !back.Effective.Equal(v.Effective) {
				t.Errorf("%s %s: round trip changed the version", path, v.Name)
			}
		}
	}
}

// TestCanonicalStable checks that spelling differences that do not change
// meaning (decimal zeros, time offset, condition order, set-level vs spelled-out
// rounding) give the same hash, and that a change of meaning does not.
func TestCanonicalStable(t *testing.T) {
	a := `ruleset "v" {
  effective  = "2026-11-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "r" {
    types = ["win", "bet"]
    share "s" {
      party   = "${provider}"
      percent = "12"
    }
    remainder = "operator"
  }
}`
	same := `# same meaning, other spelling
ruleset "v" {
  effective  = "2026-11-01T01:00:00+01:00"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "r" {
    types    = ["bet", "win", "bet"]
    rounding = "half_up"
    share "s" {
      party   = "${provider}"
      percent = "12.000"
    }
    remainder = "operator"
  }
}`
	other := strings.Replace(a, `"12"`, `"12.5"`, 1)
	ha := mustParse(t, a).Versions()[0].Hash()
	if hs := mustParse(t, same).Versions()[0].Hash(); hs != ha {
		t.Errorf("equivalent spellings hash differently:\n%s\n%s", mustParse(t, a).Versions()[0].Canonical(), mustParse(t, same).Versions()[0].Canonical())
	}
	if ho := mustParse(t, other).Versions()[0].Hash(); ho == ha {
		t.Error("a different percent hashes the same")
	}
}

func TestParseCanonicalRejects(t *testing.T) {
	v := mustParseFile(t, "testdata/example.hcl").Versions()[0]
	c := string(v.Canonical())
	tests := []struct{ name, in string }{
		{"not json", "ruleset"},
		{"unknown field", strings.Replace(c, `"name":"2026-11"`, `"name":"2026-11","x":1`, 1)},
		{"not canonical spacing", strings.Replace(c, `"name":`, `"name" :`, 1)},
		{"not canonical decimal", strings.Replace(c, `"percent":"12"`, `"percent":"12.0"`, 1)},
		{"invalid rule", strings.Replace(c, `"percent":"12"`, `"percent":"112"`, 1)},
		{"trailing data", c + "{}"},
		{"too big", strings.Repeat(" ", MaxSourceBytes+1)},
	}
	for _, tc := range tests {
		if _, err := ParseCanonical([]byte(tc.in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseCanonical(%s) error = %v, want ErrInvalid", tc.name, err)
		}
	}
}
