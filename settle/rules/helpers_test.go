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

// vectorsDir is the repository's copy of the shared acceptance vectors
// (../shared/vectors), kept under testdata so `go test` never skips them;
// TestVectorCopies checks the copies still match the shared originals.
func vectorsDir(t *testing.T) string {
	t.Helper()
	return filepath.Join("testdata", "vectors")
}

// sharedVectorsDir is ../shared/vectors beside the repository, if present.
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
		t.Skipf("shared vectors not found at %s (they live outside the repository): %v", v, err)
	}
	return v
}
