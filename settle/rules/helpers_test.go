package rules

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

func mustParseFile(t testing.TB, path string) *Book {
	t.Helper()
	b, err := ParseFile(path)
	if err != nil {
		t.Fatalf("ParseFile(%s): %v", path, err)
	}
	return b
}

func mustParse(t testing.TB, src string) *Book {
	t.Helper()
	b, err := Parse([]byte(src), "test.hcl")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return b
}

func cur(t testing.TB, code string) money.Currency {
	t.Helper()
	c, ok := money.Lookup(code)
	if !ok {
		t.Fatalf("unknown currency %s", code)
	}
	return c
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func ts(s string) time.Time {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return tm
}

// tx builds a transaction; mutate the result for attribution.
func tx(t testing.TB, typ txn.Type, amount, code, when string) txn.Tx {
	return txn.Tx{ID: "t-1", Type: typ, Amount: dec(amount), Currency: cur(t, code), OccurredAt: ts(when)}
}

// sharesMap renders shares as party → formatted amount, failing on a
// duplicate party.
func sharesMap(t testing.TB, c money.Currency, shares []money.Share) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, s := range shares {
		if _, dup := m[s.Party]; dup {
			t.Fatalf("party %s appears twice in %v", s.Party, shares)
		}
		m[s.Party] = c.Format(s.Amount)
	}
	return m
}

// vectorsDir is the repository's copy of the acceptance vectors, kept under
// testdata so `go test` never depends on anything outside the repository.
// Every test that reads a vector fails (never skips) when its copy is
// missing; TestVectorCopiesPresent lists them. The originals live in the
// lead's ../shared/vectors; TestVectorCopies checks the copies against them
// when that folder exists. nodes, money and cmd/tally read these same files.
func vectorsDir(t *testing.T) string {
	t.Helper()
	return filepath.Join("testdata", "vectors")
}

// vectorFiles are the copies the repository must hold: every acceptance
// vector, and README.md kept as vectors-README.md (a README.md inside
// testdata would read as the package's own).
var vectorFiles = map[string]string{
	"allocation.json":    "allocation.json",
	"dirty-stream.json":  "dirty-stream.json",
	"tiers.json":         "tiers.json",
	"waterfall-jpy.json": "waterfall-jpy.json",
	// hierarchy.json (partner trees): evaluated by cmd/tally
	// TestRulesEvalHierarchy and TestVectorsThroughNode.
	"hierarchy.json": "hierarchy.json",
	"README.md":      "vectors-README.md",
}

// sharedVectorsDir is ../shared/vectors beside the repository, or "" when a
// clone has no such folder (it is the lead's workspace, not part of the
// repository).
func sharedVectorsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
	v := filepath.Join(dir, "..", "shared", "vectors")
	if _, err := os.Stat(v); err != nil {
		return ""
	}
	return v
}
