package statement_test

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
)

// clawbackArrivals is the worked example of docs/fees.md "CPA clawback":
// what reached the ledger before each statement was issued.
var clawbackArrivals = [][]string{
	{ // before the November statement
		`{"provider":"p","id":"p1-d","type":"deposit","amount":"100.00","currency":"EUR","occurred_at":"2026-11-05T10:00:00Z","player":"p1","affiliate":"A"}`,
		`{"provider":"p","id":"p2-d","type":"deposit","amount":"40.00","currency":"EUR","occurred_at":"2026-11-10T10:00:00Z","player":"p2","affiliate":"A"}`,
		`{"provider":"p","id":"p3-d","type":"deposit","amount":"30.00","currency":"EUR","occurred_at":"2026-11-20T10:00:00Z","player":"p3","affiliate":"A"}`,
		`{"provider":"p","id":"p4-d","type":"deposit","amount":"25.00","currency":"EUR","occurred_at":"2026-11-25T10:00:00Z","player":"p4","affiliate":"A"}`,
	},
	{ // before the December statement
		`{"provider":"p","id":"p1-r","type":"refund","parent":"p1-d","amount":"100.00","currency":"EUR","occurred_at":"2026-12-02T10:00:00Z","player":"p1","affiliate":"A"}`,
		`{"provider":"p","id":"p2-r","type":"refund","parent":"p2-d","amount":"25.00","currency":"EUR","occurred_at":"2026-12-05T10:00:00Z","player":"p2","affiliate":"A"}`,
		`{"provider":"p","id":"p3-r1","type":"refund","parent":"p3-d","amount":"5.00","currency":"EUR","occurred_at":"2026-12-08T10:00:00Z","player":"p3","affiliate":"A"}`,
		`{"provider":"p","id":"p5-d","type":"deposit","amount":"50.00","currency":"EUR","occurred_at":"2026-12-10T10:00:00Z","player":"p5","affiliate":"A"}`,
		`{"provider":"p","id":"p5-r","type":"refund","parent":"p5-d","amount":"50.00","currency":"EUR","occurred_at":"2026-12-12T10:00:00Z","player":"p5","affiliate":"A"}`,
		`{"provider":"p","id":"p6-d","type":"deposit","amount":"60.00","currency":"EUR","occurred_at":"2026-12-15T10:00:00Z","player":"p6","affiliate":"A"}`,
		`{"provider":"p","id":"p4-r","type":"rollback","parent":"p4-d","amount":"25.00","currency":"EUR","occurred_at":"2026-12-30T10:00:00Z","player":"p4","affiliate":"A"}`,
	},
	{ // before the January statement: a late December refund
		`{"provider":"p","id":"p3-r2","type":"refund","parent":"p3-d","amount":"10.00","currency":"EUR","occurred_at":"2026-12-19T10:00:00Z","player":"p3","affiliate":"A"}`,
	},
}

// clawbackChain applies arrivals batch by batch and issues party's
// statement of periods[i] after batch i, each on the ledger of its time.
// It also returns, for each, the statement replayed from scratch on that
// ledger (no prior).
func clawbackChain(t *testing.T, book *rules.Book, arrivals [][]string, party string, periods []string) (issued, replayed []*statement.Statement) {
	t.Helper()
	l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
	var prior *statement.Statement
	for i, batch := range arrivals {
		for _, line := range batch {
			l.apply([]byte(line))
		}
		p, err := statement.ParsePeriod(periods[i])
		if err != nil {
			t.Fatal(err)
		}
		entries := append([]store.Entry(nil), l.entries...)
		s, err := statement.Build(&statement.Source{Entries: entries, Book: book}, party, "EUR", p, prior)
		if err != nil {
			t.Fatal(err)
		}
		r, err := statement.Build(&statement.Source{Entries: entries, Book: book}, party, "EUR", p, nil)
		if err != nil {
			t.Fatal(err)
		}
		issued, replayed, prior = append(issued, s), append(replayed, r), s
	}
	return issued, replayed
}

// TestCPAClawbackWorkedExample asserts every figure of the worked example.
// November pays p1–p4 (4 × 50.00). By the December statement p1's deposit
// was refunded in full and p2's down to 15.00, both within 30 days: two
// clawback lines of −50.00; p3 keeps 25.00 ≥ 20.00; p4's rollback came 35
// days after its deposit, outside the window: its CPA stands; p5's deposit
// was refunded before any statement paid it: never paid, never clawed
// back; p6 qualifies in December. A late December refund of p3 (within
// its window, arriving after the December statement) brings it to 15.00:
// clawed back on the January statement. Each issued closing equals the
// closing replayed from scratch on the same ledger.
func TestCPAClawbackWorkedExample(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "rules", "testdata", "cpa-clawback.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	periods := []string{"2026-11", "2026-12", "2027-01"}
	issued, replayed := clawbackChain(t, book, clawbackArrivals, "A", periods)
	type row struct{ players, cpaFee, clawbacks, closing string }
	want := []row{
		{"[p1 p2 p3 p4]", "200.00", "", "200.00"},
		{"[p6]", "50.00", "p1 100.00→0.00 -50.00; p2 40.00→15.00 -50.00", "150.00"},
		{"[]", "0.00", "p3 25.00→15.00 -50.00", "100.00"},
	}
	for i, s := range issued {
		var g row
		for _, f := range s.Fees {
			g.players, g.cpaFee = fmt.Sprint(f.CPA.Players), f.Fee
		}
		var cs []string
		for _, c := range s.Clawbacks {
			cs = append(cs, fmt.Sprintf("%s %s→%s %s", c.Player, c.PaidNet, c.Net, c.Amount))
			if c.Fee != "A-cpa" || c.Period != "2026-11" || c.ClawbackDays != 30 || c.MinDeposit != "20.00" {
				t.Errorf("%s: clawback line %+v", s.Period, c)
			}
		}
		g.clawbacks, g.closing = strings.Join(cs, "; "), s.Closing
		if g != want[i] {
			t.Errorf("A %s: got %+v, want %+v", s.Period, g, want[i])
		}
		if replayed[i].Closing != s.Closing || len(replayed[i].Clawbacks) != 0 {
			t.Errorf("A %s: replayed closing %s (clawbacks %d), issued %s", s.Period, replayed[i].Closing, len(replayed[i].Clawbacks), s.Closing)
		}
	}
	csv := string(statement.CSV(issued[1]))
	if !strings.Contains(csv, "A,EUR,2026-12,cpa_clawback,A-cpa,,1,0.00,-50.00,\"player p1 first deposit p/p1-d of 2026-11 at 2026-11-05T10:00:00Z: net 100.00 when paid, 0.00 now (minimum 20.00, reversals within 30 days), ruleset cpa-clawback\"") {
		t.Errorf("CSV lacks the p1 clawback row:\n%s", csv)
	}

	// Without clawback_days (the hybrid contract's CPA rule), nothing is
	// clawed back and every reversal counts.
	hcl, err := os.ReadFile(filepath.Join("..", "rules", "testdata", "cpa-clawback.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := rules.Parse([]byte(strings.Replace(string(hcl), `clawback_days = "30"`, "", 1)), "no-clawback.hcl")
	if err != nil {
		t.Fatal(err)
	}
	issued, _ = clawbackChain(t, plain, clawbackArrivals, "A", periods)
	for _, s := range issued {
		if len(s.Clawbacks) != 0 {
			t.Errorf("%s: clawbacks without clawback_days: %+v", s.Period, s.Clawbacks)
		}
	}
	if issued[2].Closing != "250.00" {
		t.Errorf("without clawback: closing %s, want 250.00 (4 + 1 CPAs, none taken back)", issued[2].Closing)
	}
}

// TestCPAClawbackProperties: random players with a first deposit (and
// sometimes a later one), reversed partly or fully at random times, every
// transaction reaching the ledger in a random batch at or after its month,
// four monthly statements issued batch by batch. A player is clawed back at
// most once and only after a statement paid it; Σ CPA fees + Σ clawbacks =
// 50.00 × the players whose first deposit still reaches 20.00 net of its
// reversals within 30 days (computed here independently); and every issued
// closing equals the closing replayed from scratch on the same ledger.
func TestCPAClawbackProperties(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "rules", "testdata", "cpa-clawback.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	const seed = 20261115
	rng := rand.New(rand.NewSource(seed))
	periods := []string{"2026-11", "2026-12", "2027-01", "2027-02"}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	monthOf := func(at time.Time) int { return (at.Year()-2026)*12 + int(at.Month()) - 11 }
	totalPaid, totalClawed := 0, 0
	for run := 0; run < 40; run++ {
		type ev struct {
			batch int
			line  string
		}
		var evs []ev
		stillQualified := 0
		for p := 0; p < 1+rng.Intn(12); p++ {
			player := fmt.Sprintf("p%d", p)
			dAt := start.Add(time.Duration(rng.Intn(100*24)) * time.Hour)
			dBatch := monthOf(dAt) + rng.Intn(4-monthOf(dAt))
			amount := int64(500 + rng.Intn(6000)) // 5.00 … 64.99
			evs = append(evs, ev{dBatch, fmt.Sprintf(`{"provider":"p","id":"%s-d","type":"deposit","amount":"%s","currency":"EUR","occurred_at":"%s","player":"%s","affiliate":"A"}`,
				player, decimal.New(amount, -2).StringFixed(2), dAt.Format(time.RFC3339), player)})
			net, left := amount, amount
			for r := 0; r < rng.Intn(3) && left > 0; r++ {
				amt := 1 + rng.Int63n(left)
				if rng.Intn(3) == 0 {
					amt = left
				}
				left -= amt
				rAt := dAt.Add(time.Duration(1+rng.Intn(50*24)) * time.Hour)
				if monthOf(rAt) > 3 {
					continue
				}
				if !rAt.After(dAt.Add(30 * 24 * time.Hour)) {
					net -= amt
				}
				rBatch := max(dBatch, monthOf(rAt))
				rBatch += rng.Intn(4 - rBatch)
				evs = append(evs, ev{rBatch, fmt.Sprintf(`{"provider":"p","id":"%s-r%d","type":"%s","parent":"%s-d","amount":"%s","currency":"EUR","occurred_at":"%s","player":"%s","affiliate":"A"}`,
					player, r, []string{"refund", "rollback"}[rng.Intn(2)], player, decimal.New(amt, -2).StringFixed(2), rAt.Format(time.RFC3339), player)})
			}
			if rng.Intn(3) == 0 { // a later deposit: never the first
				at := dAt.Add(time.Duration(1+rng.Intn(20*24)) * time.Hour)
				if monthOf(at) <= 3 {
					b := max(dBatch, monthOf(at))
					evs = append(evs, ev{b, fmt.Sprintf(`{"provider":"p","id":"%s-d2","type":"deposit","amount":"100.00","currency":"EUR","occurred_at":"%s","player":"%s","affiliate":"A"}`,
						player, at.Format(time.RFC3339), player)})
				}
			}
			if net >= 2000 {
				stillQualified++
			}
		}
		arrivals := make([][]string, 4)
		for _, e := range evs { // generation order within a batch: a deposit before its reversals
			arrivals[e.batch] = append(arrivals[e.batch], e.line)
		}
		issued, replayed := clawbackChain(t, book, arrivals, "A", periods)
		paid, clawed := map[string]bool{}, map[string]bool{}
		sum := decimal.Zero
		for i, s := range issued {
			for _, c := range s.Clawbacks {
				if !paid[c.Player] || clawed[c.Player] {
					t.Fatalf("seed %d run %d %s: %s clawed back (paid %v, clawed before %v)", seed, run, s.Period, c.Player, paid[c.Player], clawed[c.Player])
				}
				clawed[c.Player] = true
				sum = sum.Add(decimal.RequireFromString(c.Amount))
			}
			for _, f := range s.Fees {
				for _, p := range f.CPA.Players {
					if paid[p] {
						t.Fatalf("seed %d run %d %s: %s paid twice", seed, run, s.Period, p)
					}
					paid[p] = true
				}
				sum = sum.Add(decimal.RequireFromString(f.Fee))
			}
			if s.Closing != replayed[i].Closing {
				t.Fatalf("seed %d run %d %s: issued closing %s, replayed %s", seed, run, s.Period, s.Closing, replayed[i].Closing)
			}
		}
		if want := decimal.New(50*int64(stillQualified), 0); !sum.Equal(want) || !decimal.RequireFromString(issued[3].Closing).Equal(want) {
			t.Fatalf("seed %d run %d: Σ CPA + clawbacks %s, closing %s, want %s (%d players qualify)", seed, run, sum, issued[3].Closing, want, stillQualified)
		}
		totalPaid, totalClawed = totalPaid+len(paid), totalClawed+len(clawed)
	}
	t.Logf("%d CPAs paid, %d clawed back", totalPaid, totalClawed)
	if totalPaid == 0 || totalClawed == 0 {
		t.Fatalf("the runs paid %d and clawed back %d CPAs: the property is not exercised", totalPaid, totalClawed)
	}
}
