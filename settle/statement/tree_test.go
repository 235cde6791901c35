package statement_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
)

// TestTreeStatementsCarry: the partner tree of the hierarchy vector over two
// months. November's NGR is −3,000.00 (A carries it), December's 20,000.00:
// A's base is 17,000.00, commission 5,100.00, and the overrides above it are
// computed on that carried figure in both ways of building S's and M's
// December statements: after their issued November statements, and from
// nothing (replayed). Closing balances add up with the override lines.
func TestTreeStatementsCarry(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "rules", "testdata", "vectors", "hierarchy-deducted.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
	for _, line := range []string{
		`{"provider":"p","id":"n1","type":"bet","amount":"1000.00","currency":"EUR","occurred_at":"2026-11-10T12:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"n2","type":"win","amount":"4000.00","currency":"EUR","occurred_at":"2026-11-11T12:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"d1","type":"bet","amount":"23500.00","currency":"EUR","occurred_at":"2026-12-02T12:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"d2","type":"bonus_cost","amount":"2500.00","currency":"EUR","occurred_at":"2026-12-03T12:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"d3","type":"jackpot_contribution","amount":"600.00","currency":"EUR","occurred_at":"2026-12-04T12:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"d4","type":"tax","amount":"400.00","currency":"EUR","occurred_at":"2026-12-05T12:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"d5","type":"rollback","parent":"d4","amount":"400.00","currency":"EUR","occurred_at":"2026-12-06T12:00:00Z","affiliate":"A"}`,
		`{"provider":"p","id":"d6","type":"tax","amount":"400.00","currency":"EUR","occurred_at":"2026-12-07T12:00:00Z","affiliate":"A"}`,
	} {
		l.apply([]byte(line))
	}
	src := &statement.Source{Entries: l.entries, Book: book}
	nov, _ := statement.ParsePeriod("2026-11")
	dec, _ := statement.ParsePeriod("2026-12")
	want := map[string]string{"A": "4590.00", "S": "484.50", "M": "25.50"} // A 5100 − 510; S 510 − 25.50; M 5% of 510
	for _, party := range []string{"A", "S", "M"} {
		prior, err := statement.Build(src, party, "EUR", nov, nil)
		if err != nil {
			t.Fatal(err)
		}
		if prior.Closing != "0.00" {
			t.Fatalf("%s November closing %s, want 0.00", party, prior.Closing)
		}
		for _, p := range []*statement.Statement{prior, nil} {
			s, err := statement.Build(src, party, "EUR", dec, p)
			if err != nil {
				t.Fatal(err)
			}
			got := s.Closing
			if got != want[party] {
				t.Errorf("%s December (prior %v) closing %s, want %s; overrides %+v fees %+v", party, p != nil, got, want[party], s.Overrides, s.Fees)
			}
			if party == "A" && (s.Fees[0].NGR != "20000.00" || s.Fees[0].CarriedIn != "-3000.00" || s.Fees[0].Taxes != "400.00") {
				t.Errorf("A's fee line %+v: want NGR 20000.00 (tax rolled back and posted again), carried in -3000.00", s.Fees[0])
			}
		}
	}
	parties := statement.Parties(src, dec)
	if fmt.Sprint(parties) != "[[A EUR] [M EUR] [S EUR] [operator EUR]]" {
		t.Errorf("Parties = %v, want A, M, S (through the overrides) and operator", parties)
	}
}
