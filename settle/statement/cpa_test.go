package statement_test

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
)

// hybridLines is the worked example of docs/fees.md "Deposits, CPA and
// hybrid deals".
var hybridLines = []string{
	`{"provider":"p","id":"p3-b","type":"bet","amount":"5.00","currency":"EUR","occurred_at":"2026-09-01T10:00:00Z","player":"p3"}`,
	`{"provider":"p","id":"p1-d1","type":"deposit","amount":"50.00","currency":"EUR","occurred_at":"2026-11-02T10:00:00Z","player":"p1","affiliate":"A"}`,
	`{"provider":"p","id":"p2-d1","type":"deposit","amount":"10.00","currency":"EUR","occurred_at":"2026-11-03T10:00:00Z","player":"p2","affiliate":"A"}`,
	`{"provider":"p","id":"p3-d1","type":"deposit","amount":"100.00","currency":"EUR","occurred_at":"2026-11-04T10:00:00Z","player":"p3","affiliate":"A"}`,
	`{"provider":"p","id":"p2-d2","type":"deposit","amount":"100.00","currency":"EUR","occurred_at":"2026-11-05T10:00:00Z","player":"p2","affiliate":"A"}`,
	`{"provider":"p","id":"p4-d1","type":"deposit","amount":"30.00","currency":"EUR","occurred_at":"2026-11-06T10:00:00Z","player":"p4","affiliate":"A"}`,
	`{"provider":"p","id":"p4-r1","type":"refund","parent":"p4-d1","amount":"30.00","currency":"EUR","occurred_at":"2026-11-07T10:00:00Z","player":"p4","affiliate":"A"}`,
	`{"provider":"p","id":"p1-d2","type":"deposit","amount":"200.00","currency":"EUR","occurred_at":"2026-11-10T10:00:00Z","player":"p1","affiliate":"A"}`,
	`{"provider":"p","id":"p1-b","type":"bet","amount":"1000.00","currency":"EUR","occurred_at":"2026-11-11T10:00:00Z","player":"p1","affiliate":"A"}`,
	`{"provider":"p","id":"p1-w","type":"win","amount":"600.00","currency":"EUR","occurred_at":"2026-11-12T10:00:00Z","player":"p1","affiliate":"A"}`,
	`{"provider":"p","id":"p1-x","type":"bonus_cost","amount":"40.00","currency":"EUR","occurred_at":"2026-11-13T10:00:00Z","player":"p1","affiliate":"A"}`,
	`{"provider":"p","id":"p5-d1","type":"deposit","amount":"25.00","currency":"EUR","occurred_at":"2026-11-20T10:00:00Z","player":"p5","affiliate":"A"}`,
	`{"provider":"p","id":"p6-d1","type":"deposit","amount":"40.00","currency":"EUR","occurred_at":"2026-12-01T10:00:00Z","player":"p6","affiliate":"A"}`,
}

func hybridStatements(t *testing.T, lines []string, party string, periods ...string) []*statement.Statement {
	t.Helper()
	book, err := rules.ParseFile(filepath.Join("..", "rules", "testdata", "hybrid-cpa.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
	for _, line := range lines {
		l.apply([]byte(line))
	}
	src := &statement.Source{Entries: l.entries, Book: book}
	var out []*statement.Statement
	var prior *statement.Statement
	for _, ps := range periods {
		p, err := statement.ParsePeriod(ps)
		if err != nil {
			t.Fatal(err)
		}
		s, err := statement.Build(src, party, "EUR", p, prior)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
		prior = s
	}
	return out
}

// TestHybridCPAWorkedExample asserts every figure of the worked example:
// p1 and p5 qualify in November (first deposits 50.00 and 25.00 ≥ 20.00),
// p2's first deposit is 10.00, p3 was first seen 64 days before its first
// deposit, p4's first deposit was refunded; p6 qualifies in December. NGR
// 1,000.00 − 600.00 − 40.00 = 360.00 at 25% = 90.00. Deposits 485.00 net at
// 1.5% = 7.275 → 7.28.
func TestHybridCPAWorkedExample(t *testing.T) {
	a := hybridStatements(t, hybridLines, "A", "2026-11", "2026-12")
	type row struct{ cpaQualified, players, cpaFee, ngr, revFee, closing string }
	get := func(s *statement.Statement) row {
		var r row
		for _, f := range s.Fees {
			switch f.Name {
			case "A-cpa":
				r.cpaQualified, r.players, r.cpaFee = fmt.Sprint(f.CPA.Qualified), fmt.Sprint(f.CPA.Players), f.Fee
			case "A-revshare":
				r.ngr, r.revFee = f.NGR, f.Fee
			}
		}
		r.closing = s.Closing
		return r
	}
	want := []row{
		{"2", "[p1 p5]", "100.00", "360.00", "90.00", "190.00"},
		{"1", "[p6]", "50.00", "0.00", "0.00", "240.00"},
	}
	for i, s := range a {
		if g := get(s); g != want[i] {
			t.Errorf("A %s: got %+v, want %+v", s.Period, g, want[i])
		}
	}
	psp := hybridStatements(t, hybridLines, "psp", "2026-11")[0]
	if f := psp.Fees[0]; f.Deposits != "485.00" || f.Exact != "7.275" || f.Fee != "7.28" || psp.Closing != "7.28" {
		t.Errorf("psp: deposits %s exact %s fee %s closing %s, want 485.00 7.275 7.28 7.28", f.Deposits, f.Exact, f.Fee, psp.Closing)
	}
}

// TestCPAProperties: random players with random deposits (some refunded)
// over three months. Each player qualifies at most once, in the month of
// its first deposit, exactly when that deposit (net of its refund) reaches
// the minimum within 30 days of first seen (computed here independently);
// Σ CPA fees = 50.00 × qualified players; Σ deposit bases = Σ deposits net
// of refunds; every closing = Σ the party's fees so far.
func TestCPAProperties(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	for run := 0; run < 20; run++ {
		type dep struct {
			id       string
			amount   decimal.Decimal
			at       time.Time
			refunded bool
		}
		var lines []string
		wantDeposits := decimal.Zero
		qualified := map[string]string{} // player → month
		base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
		for p := 0; p < 1+rng.Intn(15); p++ {
			player := fmt.Sprintf("p%d", p)
			firstSeen := base.Add(time.Duration(rng.Intn(90*24)) * time.Hour)
			lines = append(lines, fmt.Sprintf(`{"provider":"p","id":"%s-b","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"%s","player":"%s"}`, player, firstSeen.Format(time.RFC3339), player))
			var deps []dep
			for d := 0; d < rng.Intn(4); d++ {
				at := firstSeen.Add(time.Duration(1+rng.Intn(60*24)) * time.Hour)
				if at.After(base.AddDate(0, 3, 0).Add(-time.Hour)) {
					continue
				}
				deps = append(deps, dep{fmt.Sprintf("%s-d%d", player, d), decimal.New(int64(1+rng.Intn(5000)), -2), at, rng.Intn(5) == 0})
			}
			sort.SliceStable(deps, func(i, j int) bool { return deps[i].at.Before(deps[j].at) })
			for i, d := range deps {
				lines = append(lines, fmt.Sprintf(`{"provider":"p","id":"%s","type":"deposit","amount":"%s","currency":"EUR","occurred_at":"%s","player":"%s","affiliate":"A"}`, d.id, d.amount.StringFixed(2), d.at.Format(time.RFC3339), player))
				net := d.amount
				if d.refunded {
					lines = append(lines, fmt.Sprintf(`{"provider":"p","id":"%s-r","type":"refund","parent":"%s","amount":"%s","currency":"EUR","occurred_at":"%s","player":"%s","affiliate":"A"}`, d.id, d.id, d.amount.StringFixed(2), d.at.Add(time.Minute).Format(time.RFC3339), player))
					net = decimal.Zero
				}
				wantDeposits = wantDeposits.Add(net)
				if i == 0 && net.GreaterThanOrEqual(decimal.New(20, 0)) && !d.at.After(firstSeen.Add(30*24*time.Hour)) {
					qualified[player] = d.at.Format("2006-01")
				}
			}
		}
		// Players arrive interleaved out of event-time order: the ledger
		// order is not the event order, and the first deposit is by event time.
		months := []string{"2026-10", "2026-11", "2026-12"}
		a := hybridStatements(t, lines, "A", months...)
		psp := hybridStatements(t, lines, "psp", months...)
		cpaSum, fees := decimal.Zero, decimal.Zero
		for i, s := range a {
			for _, f := range s.Fees {
				fees = fees.Add(decimal.RequireFromString(f.Fee))
				if f.CPA == nil {
					continue
				}
				cpaSum = cpaSum.Add(decimal.RequireFromString(f.Fee))
				for _, p := range f.CPA.Players {
					if qualified[p] != months[i] {
						t.Fatalf("seed %d run %d: %s qualified in %s, want %q", seed, run, p, months[i], qualified[p])
					}
				}
				if f.CPA.Qualified != len(f.CPA.Players) {
					t.Fatalf("seed %d: qualified %d ≠ %d players", seed, f.CPA.Qualified, len(f.CPA.Players))
				}
			}
			if !decimal.RequireFromString(s.Closing).Equal(fees) {
				t.Fatalf("seed %d run %d: %s closing %s, Σ fees %s", seed, run, s.Period, s.Closing, fees)
			}
		}
		if want := decimal.New(50, 0).Mul(decimal.NewFromInt(int64(len(qualified)))); !cpaSum.Equal(want) {
			t.Fatalf("seed %d run %d: Σ CPA %s, want %s (%d qualified)", seed, run, cpaSum, want, len(qualified))
		}
		depSum := decimal.Zero
		for _, s := range psp {
			depSum = depSum.Add(decimal.RequireFromString(s.Fees[0].Deposits))
		}
		if !depSum.Equal(wantDeposits) {
			t.Fatalf("seed %d run %d: Σ deposit bases %s, want %s", seed, run, depSum, wantDeposits)
		}
	}
}
