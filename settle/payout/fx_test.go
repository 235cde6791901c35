package payout

import (
	"errors"
	"testing"
	"time"

	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
)

// TestPayoutFX pays the November statement of the docs/rules.md FX example
// (studio-b, USD, 48.33 EUR settled at the close rate 1.12 = 54.13, closing
// 84.13) on 3 December, when the ECB rate is 1.15: 48.33 × 1.15 = 55.5795 →
// 55.58, an FX difference of +1.45 paid on top (85.58) and recorded with the
// rate. The next run counts 84.13 as paid before, not 85.58.
func TestPayoutFX(t *testing.T) {
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	es := []store.Entry{
		fx.Entry("ecb", "EUR", "USD", "1.12", at("2026-11-30T16:00:00Z"), "t"),
		fx.Entry("ecb", "EUR", "USD", "1.15", at("2026-12-02T16:00:00Z"), "t"),
		fx.Entry("fed", "EUR", "USD", "9.99", at("2026-12-03T00:00:00Z"), "t"), // other source: ignored
	}
	for i := range es {
		es[i].Index = uint64(i)
	}
	rates, err := fx.NewTable(es)
	if err != nil {
		t.Fatal(err)
	}
	nov := stmt("B", "USD", "2026-11", "84.13", "")
	nov.Statement.FX = []statement.FXLine{
		{Kind: statement.FXAccrual, Currency: "EUR", Amount: "48.33", Converted: "52.56", Source: "ecb", Rounding: "half_even"},
		{Kind: statement.FXDifference, Currency: "EUR", Amount: "48.33", Pair: "EUR/USD", Rate: "1.12", Source: "ecb", Rounding: "half_even", Accrued: "52.56", Settled: "54.13", Converted: "1.57"},
	}
	req := Request{Period: "2026-11", CreatedBy: "maker", ApprovedBy: "checker", Now: at("2026-12-03T09:00:00Z"), Banks: banks(t)}
	if _, _, err := Plan(nil, []Candidate{nov}, req); !errors.Is(err, ErrNoRates) {
		t.Fatalf("without rates: %v, want ErrNoRates", err)
	}
	req.Rates = rates
	run, _, err := Plan(nil, []Candidate{nov}, req)
	if err != nil {
		t.Fatal(err)
	}
	it := run.Items[0]
	if it.Amount != "85.58" || it.Due != "84.13" || it.FXDifference != "1.45" || len(it.FX) != 1 {
		t.Fatalf("item %+v", it)
	}
	f := it.FX[0]
	if f.Rate != "1.15" || f.RateID != "fx-ecb-EURUSD-1796227200" || f.AtClose != "54.13" || f.AtPayout != "55.58" || f.Difference != "1.45" || f.Rounding != "half_even" {
		t.Fatalf("item fx %+v", f)
	}
	if run.Totals[0].Sum != "85.58" || run.ControlSum().String() != "85.58" {
		t.Fatalf("totals %+v", run.Totals)
	}
	// December (cumulative closing 94.13, no foreign balance): 10.00 due.
	dec := stmt("B", "USD", "2026-12", "94.13", "")
	req.Period, req.Now = "2026-12", at("2027-01-04T09:00:00Z")
	run2, _, err := Plan([]Run{*run}, []Candidate{nov, dec}, req)
	if err != nil {
		t.Fatal(err)
	}
	if it := run2.Items[0]; it.PaidBefore != "84.13" || it.Amount != "10.00" || it.FXDifference != "" {
		t.Fatalf("december item %+v", it)
	}
	// No rate in force at payout: refused, not paid at the close rate.
	req.Now = at("2026-11-30T15:00:00Z")
	if _, _, err := Plan(nil, []Candidate{nov}, req); !errors.Is(err, fx.ErrNoRate) {
		t.Fatalf("no payout-time rate: %v", err)
	}
}
