package console

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// TestPartyHoursInZone: a party's hours are its contract's zone's hours,
// also for a zone 5:30 off UTC (quarter-hour buckets), and "a day" is the
// zone's day.
func TestPartyHoursInZone(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	eur, _ := money.Lookup("EUR")
	r := &revenue{now: func() time.Time { return time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC) }, ggr: map[ggrKey]*statement.Gaming{}, party: map[partyKey]*agg{}}
	add := func(at string, amount string) {
		ts, _ := time.Parse(time.RFC3339, at)
		r.add(store.Entry{Provider: "p", Tx: txn.Tx{ID: at, Type: txn.Bet, Currency: eur, Amount: decimal.RequireFromString(amount), OccurredAt: ts},
			Shares: []money.Share{{Party: "studio", Amount: decimal.RequireFromString(amount)}}}, 0)
	}
	add("2026-11-01T18:29:00Z", "1.00") // 23:59 on the 1st in Kolkata
	add("2026-11-01T18:30:00Z", "2.00") // 00:00 on the 2nd
	add("2026-11-01T19:15:00Z", "4.00") // 00:45 on the 2nd
	add("2026-11-02T01:45:00Z", "8.00") // 07:15 on the 2nd
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, kolkata)
	hs := r.partyHours("studio", day, day.AddDate(0, 0, 1), kolkata)
	if len(hs) != 24 {
		t.Fatalf("%d hours, want 24: %+v", len(hs), hs)
	}
	if hs[0].Hour != "2026-11-02T00:00:00+05:30" || hs[0].Amount != "6.00" || hs[0].Count != 2 {
		t.Errorf("00:00: %+v", hs[0])
	}
	if hs[7].Amount != "8.00" || hs[1].Amount != "0.00" {
		t.Errorf("07:00 %+v, 01:00 %+v", hs[7], hs[1])
	}
	// The same entries by UTC hour: the 1st's 23:59 is the 1st's 18:00 UTC.
	utc := r.partyHours("studio", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), time.UTC)
	if utc[18].Amount != "3.00" || utc[19].Amount != "4.00" {
		t.Errorf("UTC 18:00 %+v 19:00 %+v", utc[18], utc[19])
	}
	if got := r.partyHours("other", day, day.AddDate(0, 0, 1), kolkata); len(got) != 0 {
		t.Errorf("another party: %+v", got)
	}
}
