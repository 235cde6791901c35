package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func checkSrc(t *testing.T, src string) (*Book, []Finding) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return CheckFiles(p)
}

func findingsText(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String())
		b.WriteString("\n")
	}
	return b.String()
}

const checkHead = `ruleset "v" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  party "operator" {}
  party "studio" {}
`

func TestCheckShadowedRules(t *testing.T) {
	book, fs := checkSrc(t, checkHead+`
  rule "all" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
  rule "slots" {
    games = ["slots"]
    share "st" {
      party   = "studio"
      percent = "100"
    }
  }
}
ruleset "w" {
  effective  = "2026-02-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  party "operator" {}
  party "studio" {}
  rule "two games" {
    games = ["a", "b"]
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
  rule "one game" {
    games = ["a"]
    types = ["bet"]
    share "st" {
      party   = "studio"
      percent = "100"
    }
  }
  rule "wider" {
    share "st" {
      party   = "studio"
      percent = "100"
    }
  }
}
`)
	txt := findingsText(fs)
	if book != nil {
		t.Fatalf("check passed:\n%s", txt)
	}
	for _, w := range []string{
		`:14:3: rule: rule "slots" can never match: rule "all" before it has no conditions`,
		`:35:3: rule: rule "one game" can never match: rule "two games" before it matches every transaction it would`,
	} {
		if !strings.Contains(txt, w) {
			t.Errorf("findings lack %q:\n%s", w, txt)
		}
	}
	if strings.Contains(txt, `"wider" can never match`) || len(fs) != 2 {
		t.Errorf("want exactly the two shadowed rules:\n%s", txt)
	}
}

// TestCheckRemainderZeroWeight: the finding is real (the split gives the
// remainder party the opposite sign), and gone with rounding "down".
func TestCheckRemainderZeroWeight(t *testing.T) {
	src := func(rounding string) string {
		return `ruleset "v" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "` + rounding + `"
  allocation = "remainder_to"
  party "a" {}
  party "b" {}
  party "operator" {}
  rule "r" {
    share "a" {
      party   = "a"
      percent = "50"
    }
    share "b" {
      party   = "b"
      percent = "50"
    }
    remainder = "operator"
  }
}
`
	}
	book, fs := checkSrc(t, src("half_up"))
	if book != nil || !strings.Contains(findingsText(fs), `remainder: remainder party "operator" has weight 0 under remainder_to with half_up rounding`) {
		t.Fatalf("no remainder finding:\n%s", findingsText(fs))
	}
	b := mustParse(t, src("half_up"))
	res, err := b.Split("P", tx(t, "bet", "0.01", "EUR", "2026-06-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sharesMap(t, cur(t, "EUR"), res.Shares); got["operator"] != "-0.01" {
		t.Fatalf("shares %v: the finding's example no longer holds", got)
	}
	if book, fs := checkSrc(t, src("down")); book == nil {
		t.Fatalf("rounding down flagged:\n%s", findingsText(fs))
	}
}

func TestCheckDeclaredParties(t *testing.T) {
	_, err := Parse([]byte(checkHead+`
  rule "r" {
    share "st" {
      party   = "studoi"
      percent = "10"
    }
    remainder = "operator"
  }
}
`), "test.hcl")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `test.hcl:10:17: party: party "studoi" is not declared`) {
		t.Fatalf("undeclared party: %v", err)
	}
	// Without declarations: a name used once next to a similar one is a
	// warning, the check still passes.
	book, fs := checkSrc(t, `ruleset "v" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "a" {
    games = ["a"]
    share "st" {
      party   = "studio-1"
      percent = "10"
    }
    remainder = "operator"
  }
  rule "b" {
    share "st" {
      party   = "studio-1"
      percent = "10"
    }
    remainder = "operatr"
  }
}
`)
	txt := findingsText(fs)
	if book == nil || !strings.Contains(txt, `warning: `) || !strings.Contains(txt, `party "operatr" is named once in ruleset "v", next to the similar "operator": a typo?`) {
		t.Fatalf("typo warning missing or check failed:\n%s", txt)
	}
}

// TestCheckPastSyntaxError: a syntax error in one ruleset does not hide the
// problems of the others.
func TestCheckPastSyntaxError(t *testing.T) {
	book, fs := checkSrc(t, `# two rule sets
ruleset "a" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "x" {
    share "s" {
      party = "op"
      percent = "100" }
    }
  }
}
ruleset "b" {
  effective  = "2026-02-01T00:00:00Z"
  rounding   = "half_upp"
  allocation = "largest_remainder"
  rule "x" {
    share "s" {
      party   = "op"
      percent = "100"
    }
  }
  rule "y" {
    share "s" {
      party   = "op"
      percent = "100"
    }
  }
}
`)
	txt := findingsText(fs)
	if book != nil {
		t.Fatalf("check passed:\n%s", txt)
	}
	for _, w := range []string{`rules.hcl:9:`, `rules.hcl:15:16: rounding: unknown rounding "half_upp"`} {
		if !strings.Contains(txt, w) {
			t.Errorf("findings lack %q:\n%s", w, txt)
		}
	}
}

// TestCheckExampleDeclaresParties: the shipped example and every rule file
// of the tests check clean (no warning: they declare their parties, and
// "${provider}"/"${affiliate}" need no declaration), while a real typo in
// the example is caught: a load error once parties are declared, a warning
// "a typo?" in a ruleset that declares none, where a "${provider}" share of
// a rule with a providers condition counts as naming those providers.
func TestCheckExampleDeclaresParties(t *testing.T) {
	example := filepath.Join("..", "..", "config", "examples", "rules.hcl")
	files, _ := filepath.Glob(filepath.Join("testdata", "*.hcl"))
	vec, _ := filepath.Glob(filepath.Join("testdata", "vectors", "*.hcl"))
	files = append(append([]string{example}, files...), vec...)
	if len(files) < 10 {
		t.Fatalf("only %d rule files found: %v", len(files), files)
	}
	for _, f := range files {
		book, fs := CheckFiles(f)
		if book == nil || len(fs) != 0 {
			t.Errorf("%s: want no finding:\n%s", f, findingsText(fs))
		}
	}

	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	// The second version's remainder misspelt: the declarations catch it.
	i := strings.LastIndex(string(src), `remainder = "operator"`)
	typo := string(src[:i]) + `remainder = "opertor"` + string(src[i+len(`remainder = "operator"`):])
	book, fs := checkSrc(t, typo)
	if txt := findingsText(fs); book != nil || !strings.Contains(txt, `error: `) || !strings.Contains(txt, `remainder: party "opertor" is not declared`) {
		t.Fatalf("typo in the example not caught:\n%s", txt)
	}

	// ${provider} expands to the rule's providers: each must be declared.
	book, fs = checkSrc(t, checkHead+`
  rule "r" {
    providers = ["studio", "studoi"]
    share "st" {
      party   = "${provider}"
      percent = "10"
    }
    remainder = "operator"
  }
}
`)
	if txt := findingsText(fs); book != nil || len(fs) != 1 || !strings.Contains(txt, `party ${provider} can be provider "studoi" (the rule's providers), which is not declared`) {
		t.Fatalf("undeclared expansion of ${provider}:\n%s", txt)
	}

	// Without declarations: the fee's party "studio-l" is a typo of
	// "studio-1", which the rule names only through ${provider}.
	undeclared := func(feeParty string) string {
		return `ruleset "v" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "r" {
    providers = ["studio-1"]
    games     = ["slot-1"]
    share "st" {
      party   = "${provider}"
      percent = "12"
    }
    remainder = "operator"
  }
  rule "r2" {
    providers = ["studio-1"]
    share "st" {
      party   = "${provider}"
      percent = "10"
    }
    remainder = "operator"
  }
  rule "other" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
  fee "f" {
    party          = "` + feeParty + `"
    basis          = "ggr"
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = false
    tier {
      percent = "1"
    }
  }
}
`
	}
	book, fs = checkSrc(t, undeclared("studio-l"))
	if txt := findingsText(fs); book == nil || len(fs) != 1 || !strings.Contains(txt, `warning: `) || !strings.Contains(txt, `party "studio-l" is named once in ruleset "v", next to the similar "studio-1": a typo?`) {
		t.Fatalf("typo warning missing:\n%s", txt)
	}
	book, fs = checkSrc(t, undeclared("studio-1"))
	if txt := findingsText(fs); book == nil || len(fs) != 1 || !strings.Contains(txt, `ruleset "v" does not declare its parties`) {
		t.Fatalf("want only the no-declaration warning:\n%s", txt)
	}
}
