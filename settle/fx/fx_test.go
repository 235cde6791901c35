package fx_test

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func table(t *testing.T, es ...store.Entry) *fx.Table {
	t.Helper()
	for i := range es {
		es[i].Index = uint64(i)
	}
	tb, err := fx.NewTable(es)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestRateInForce(t *testing.T) {
	other := store.Entry{Tx: txn.Tx{ID: "b1", Type: txn.Bet}} // not a rate: skipped
	tb := table(t,
		fx.Entry("ecb", "EUR", "USD", "1.08", t0, "alice"),
		other,
		fx.Entry("ecb", "EUR", "USD", "1.10", t0.Add(48*time.Hour), "alice"),
		fx.Entry("fed", "EUR", "USD", "1.20", t0.Add(48*time.Hour), "bob"), // same as-of, later in ledger: wins for any source
		fx.Entry("ecb", "USD", "JPY", "150", t0, "alice"),
	)
	if tb.Len() != 4 {
		t.Fatalf("len %d", tb.Len())
	}
	for _, c := range []struct {
		at     time.Time
		source string
		want   string
	}{
		{t0, "", "1.08"},
		{t0.Add(47 * time.Hour), "", "1.08"},
		{t0.Add(48 * time.Hour), "", "1.2"}, // as_of ≤ t: a rate is in force from its as-of
		{t0.Add(48 * time.Hour), "ecb", "1.1"},
		{t0.Add(100 * time.Hour), "fed", "1.2"},
	} {
		q, err := tb.At("EUR", "USD", c.at, fx.Policy{Source: c.source})
		if err != nil || q.Rate.Rate.String() != c.want || q.Inverse {
			t.Errorf("at %s source %q: %+v %v, want %s", c.at, c.source, q.Rate, err, c.want)
		}
	}
	// Before the first as-of, for a source without rates, and for the
	// inverse pair without permission: a definite error.
	for _, c := range []struct {
		from, to string
		at       time.Time
		p        fx.Policy
	}{
		{"EUR", "USD", t0.Add(-time.Second), fx.Policy{}},
		{"EUR", "USD", t0.Add(time.Hour), fx.Policy{Source: "boe"}},
		{"USD", "EUR", t0.Add(time.Hour), fx.Policy{}},
		{"EUR", "GBP", t0.Add(time.Hour), fx.Policy{Inverse: true}},
	} {
		if _, err := tb.At(c.from, c.to, c.at, c.p); !errors.Is(err, fx.ErrNoRate) {
			t.Errorf("%s→%s at %s %+v: %v, want ErrNoRate", c.from, c.to, c.at, c.p, err)
		}
	}
	// The inverse, when allowed: 100 USD at 1 / 1.08 = 92.592592… → 92.59.
	q, err := tb.At("USD", "EUR", t0.Add(time.Hour), fx.Policy{Inverse: true})
	if err != nil || !q.Inverse {
		t.Fatalf("inverse: %+v %v", q, err)
	}
	if got, _ := q.Convert(decimal.RequireFromString("100.00"), money.HalfEven); got.String() != "92.59" {
		t.Errorf("100 USD at 1/1.08 = %s, want 92.59", got)
	}
	if q.Describe() != "1 / EUR/USD 1.08 (ecb, as of 2026-11-01T00:00:00Z, fx-ecb-EURUSD-1793491200)" {
		t.Errorf("describe %q", q.Describe())
	}
	// Identity.
	if q, err := tb.At("EUR", "EUR", t0.Add(-time.Hour), fx.Policy{}); err != nil || !q.Identity {
		t.Errorf("identity: %+v %v", q, err)
	}
	// With both directions allowed, the later as-of wins.
	tb2 := table(t, fx.Entry("ecb", "EUR", "USD", "1.08", t0, "a"), fx.Entry("ecb", "USD", "EUR", "0.9", t0.Add(time.Hour), "a"))
	q, _ = tb2.At("EUR", "USD", t0.Add(2*time.Hour), fx.Policy{Inverse: true})
	if !q.Inverse || q.Rate.Rate.String() != "0.9" {
		t.Errorf("later inverse should win: %+v", q)
	}
	q, _ = tb2.At("EUR", "USD", t0.Add(30*time.Minute), fx.Policy{Inverse: true})
	if q.Inverse {
		t.Errorf("direct in force before the inverse's as-of: %+v", q)
	}
}

func TestMalformedRateIsAnError(t *testing.T) {
	good := fx.Entry("ecb", "EUR", "USD", "1.08", t0, "alice")
	for name, mut := range map[string]func(e *store.Entry){
		"no source":     func(e *store.Entry) { delete(e.Tx.Meta, "source") },
		"no posted_by":  func(e *store.Entry) { e.Tx.Meta["posted_by"] = "" },
		"pair base":     func(e *store.Entry) { e.Tx.Meta["pair"] = "GBP/USD" },
		"pair quote":    func(e *store.Entry) { e.Tx.Meta["pair"] = "EUR/XXX" },
		"pair same":     func(e *store.Entry) { e.Tx.Meta["pair"] = "EUR/EUR" },
		"pair no slash": func(e *store.Entry) { e.Tx.Meta["pair"] = "EURUSD" },
		"rate zero":     func(e *store.Entry) { e.Tx.Meta["rate"] = "0.000" },
		"rate sign":     func(e *store.Entry) { e.Tx.Meta["rate"] = "-1.08" },
		"rate exponent": func(e *store.Entry) { e.Tx.Meta["rate"] = "1.08e0" },
		"rate 13 dp":    func(e *store.Entry) { e.Tx.Meta["rate"] = "1.0000000000001" },
		"id":            func(e *store.Entry) { e.Tx.ID = "fx-ecb-EURUSD-1" },
		"amount":        func(e *store.Entry) { e.Tx.Amount = decimal.NewFromInt(1) },
		"shares":        func(e *store.Entry) { e.Shares = []money.Share{{Party: "x", Amount: decimal.Zero}} },
		"sub-second":    func(e *store.Entry) { e.Tx.OccurredAt = e.Tx.OccurredAt.Add(time.Millisecond) },
	} {
		e := good
		e.Tx.Meta = map[string]string{}
		for k, v := range good.Tx.Meta {
			e.Tx.Meta[k] = v
		}
		mut(&e)
		if _, err := fx.NewTable([]store.Entry{e}); !errors.Is(err, fx.ErrBadRate) {
			t.Errorf("%s: %v, want ErrBadRate", name, err)
		}
	}
	if _, err := fx.NewTable([]store.Entry{good}); err != nil {
		t.Fatal(err)
	}
}

// TestRoundRatMatchesMoneyRound: a direct conversion is amount × rate
// rounded by money.Round, and every mode is symmetric around zero.
func TestRoundRatMatchesMoneyRound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		d := decimal.New(rng.Int64N(2_000_000)-1_000_000, -int32(rng.IntN(7)))
		exp := int32(rng.IntN(4))
		for _, m := range []money.Rounding{money.HalfUp, money.HalfEven, money.Down} {
			got := fx.RoundRat(d.Rat(), exp, m)
			if want := money.Round(d, exp, m); !got.Equal(want) {
				t.Fatalf("RoundRat(%s, %d, %s) = %s, money.Round %s", d, exp, m, got, want)
			}
			if neg := fx.RoundRat(new(big.Rat).Neg(d.Rat()), exp, m); !neg.Equal(got.Neg()) {
				t.Fatalf("RoundRat(−%s) = %s, want %s", d, neg, got.Neg())
			}
		}
	}
}

// TestPropertyAccrueSettleReverse: shares and their reversals in a foreign
// currency, each accrued at its event's rate (a reversal at its parent's),
// settled at a close rate. The settlement-currency total is always exactly
// convert(Σ foreign) at the close rate, and it differs from Σ accrued by the
// posted FX difference and nothing else; a fully reversed position accrues
// exactly 0 and has no difference; a position accrued and settled at one
// rate has a difference of at most half a unit per accrual (none with one).
func TestPropertyAccrueSettleReverse(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	pairs := [][2]string{{"EUR", "USD"}, {"USD", "JPY"}, {"JPY", "EUR"}, {"EUR", "KWD"}, {"KWD", "CLF"}}
	for iter := range 3000 {
		pr := pairs[iter%len(pairs)]
		from, _ := money.Lookup(pr[0])
		to, _ := money.Lookup(pr[1])
		mode := []money.Rounding{money.HalfUp, money.HalfEven, money.Down}[iter%3]
		inverse := iter%2 == 1
		// Rates posted hourly over a day, in the direction the policy uses.
		var es []store.Entry
		for h := range 24 {
			r := decimal.New(rng.Int64N(5_000_000)+1, -int32(rng.IntN(7)))
			b, q := from.Code, to.Code
			if inverse {
				b, q = q, b
			}
			es = append(es, fx.Entry("src", b, q, r.String(), t0.Add(time.Duration(h)*time.Hour), "op"))
		}
		tb := table(t, es...)
		pol := fx.Policy{Inverse: inverse}
		pos := fx.Position{From: from.Code, To: to.Code, Rounding: mode}
		rev := fx.Position{From: from.Code, To: to.Code, Rounding: mode}
		n := 1 + rng.IntN(40)
		for range n {
			amt := decimal.New(rng.Int64N(20_000_001)-10_000_000, -from.Exponent)
			at := t0.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
			q, err := tb.At(from.Code, to.Code, at, pol)
			if err != nil {
				t.Fatal(err)
			}
			c, err := pos.Accrue(amt, q)
			if err != nil {
				t.Fatal(err)
			}
			// the share and its reversal, at the parent's rate
			c1, _ := rev.Accrue(amt, q)
			c2, _ := rev.Accrue(amt.Neg(), q)
			if !c1.Add(c2).IsZero() || !c.Equal(c1) || !to.Fits(c) {
				t.Fatalf("reversal at the parent's rate does not cancel: %s %s %s", c, c1, c2)
			}
		}
		closeQ, err := tb.At(from.Code, to.Code, t0.Add(24*time.Hour), pol)
		if err != nil {
			t.Fatal(err)
		}
		settled, diff, err := pos.Settle(closeQ)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := closeQ.Convert(pos.Amount, mode)
		if !settled.Equal(want) || !pos.Accrued.Add(diff).Equal(settled) || !to.Fits(diff) {
			t.Fatalf("settled %s, accrued %s + diff %s, want %s", settled, pos.Accrued, diff, want)
		}
		if s, d, _ := rev.Settle(closeQ); !rev.Amount.IsZero() || !rev.Accrued.IsZero() || !s.IsZero() || !d.IsZero() {
			t.Fatalf("fully reversed position: amount %s accrued %s settled %s diff %s", rev.Amount, rev.Accrued, s, d)
		}
		// One rate throughout: the difference is rounding only.
		one := fx.Position{From: from.Code, To: to.Code, Rounding: mode}
		for range n {
			if _, err := one.Accrue(decimal.New(rng.Int64N(2_000_001)-1_000_000, -from.Exponent), closeQ); err != nil {
				t.Fatal(err)
			}
		}
		_, d1, _ := one.Settle(closeQ)
		limit := to.Unit().Mul(decimal.NewFromInt(int64(n)))
		if mode != money.Down {
			limit = limit.Div(decimal.NewFromInt(2))
		}
		if d1.Abs().GreaterThan(limit) {
			t.Fatalf("same-rate difference %s exceeds rounding bound %s (%d accruals, %s)", d1, limit, n, mode)
		}
	}
}

func TestConvertRejects(t *testing.T) {
	tb := table(t, fx.Entry("ecb", "EUR", "JPY", "160.5", t0, "a"))
	q, _ := tb.At("EUR", "JPY", t0, fx.Policy{})
	if _, err := q.Convert(decimal.RequireFromString("1.001"), money.HalfUp); err == nil {
		t.Error("1.001 EUR accepted")
	}
	if _, err := q.Convert(decimal.RequireFromString("1.00"), "nearest"); err == nil {
		t.Error("unknown rounding accepted")
	}
	// 1.01 EUR × 160.5 = 162.105 JPY: half_up 162, half_even 162, down 162;
	// 0.03 × 160.5 = 4.815 → 5/5/4.
	for _, c := range []struct {
		amt  string
		mode money.Rounding
		want string
	}{{"1.01", money.HalfUp, "162"}, {"0.03", money.HalfUp, "5"}, {"0.03", money.Down, "4"}, {"-0.03", money.Down, "-4"}, {"-0.03", money.HalfEven, "-5"}} {
		if got, _ := q.Convert(decimal.RequireFromString(c.amt), c.mode); got.String() != c.want {
			t.Errorf("%s EUR %s = %s JPY, want %s", c.amt, c.mode, got, c.want)
		}
	}
}
