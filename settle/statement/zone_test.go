package statement_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
)

// TestPeriodsInZonesDSTSafe: in zones with DST (Berlin, Santiago, where the
// September change skips midnight itself, Lord Howe's 30-minute change) and
// without (Seoul), every day, ISO week and month of 2025–2027 starts at
// local midnight (or the first instant after a skipped one), ends where the
// next starts, and every half hour of those years falls in exactly the
// period PeriodIn names, whose label round-trips.
func TestPeriodsInZonesDSTSafe(t *testing.T) {
	for _, name := range []string{"Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Asia/Seoul"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{rules.PeriodDay, rules.PeriodWeek, rules.PeriodMonth} {
			p := statement.PeriodIn(kind, time.Date(2025, 1, 1, 12, 0, 0, 0, loc), loc)
			end := time.Date(2028, 1, 1, 0, 0, 0, 0, loc)
			for n := 0; p.Start.Before(end); n++ {
				if n > 2000 {
					t.Fatal("loop bound")
				}
				next := p.Next()
				if !p.End().Equal(next.Start) || !next.Start.After(p.Start) {
					t.Fatalf("%s %s %s: end %s, next start %s", name, kind, p, p.End(), next.Start)
				}
				if h, m, _ := p.Start.Clock(); (h != 0 || m != 0) && p.Start.Add(-time.Hour).In(loc).Day() == p.Start.Day() {
					t.Fatalf("%s %s %s starts at %s, not at local midnight", name, kind, p, p.Start)
				}
				if !next.Prev().Start.Equal(p.Start) {
					t.Fatalf("%s %s: Prev of %s is %s", name, kind, next, next.Prev())
				}
				q, err := statement.ParsePeriod(p.String())
				if err != nil || !q.In(loc).Start.Equal(p.Start) {
					t.Fatalf("%s %s: label %q parses to %v (%v)", name, kind, p, q, err)
				}
				p = next
			}
		}
		for at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC); at.Year() < 2028; at = at.Add(30 * time.Minute) {
			p := statement.PeriodIn(rules.PeriodDay, at, loc)
			if !p.Contains(at) || p.Prev().Contains(at) || p.Next().Contains(at) {
				t.Fatalf("%s: %s not in exactly %s", name, at, p)
			}
		}
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, c := range []struct {
		day   string
		hours float64
	}{{"2026-03-29", 23}, {"2026-10-25", 25}, {"2026-06-01", 24}} {
		p, _ := statement.ParsePeriod(c.day)
		if h := p.In(berlin).End().Sub(p.In(berlin).Start).Hours(); h != c.hours {
			t.Errorf("Berlin %s lasts %vh, want %v", c.day, h, c.hours)
		}
	}
	santiago, _ := time.LoadLocation("America/Santiago")
	p, _ := statement.ParsePeriod("2026-09-06")
	if got := p.In(santiago).Start.UTC().Format(time.RFC3339); got != "2026-09-06T04:00:00Z" {
		t.Errorf("Santiago 2026-09-06 (midnight skipped) starts at %s, want 2026-09-06T04:00:00Z (01:00 -03)", got)
	}
}

// TestStatementInPartyZone: a party declared with time_zone = "Asia/Seoul"
// closes November at midnight KST: a bet at 2026-10-31T15:00Z (00:00 KST on
// November 1st) is November's, one at 2026-11-30T15:30Z (00:30 KST on
// December 1st) is December's; the statement says its zone and its UTC
// bounds; a UTC party sees both in November.
func TestStatementInPartyZone(t *testing.T) {
	src := `ruleset "z" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  party "seoul" {
    time_zone = "Asia/Seoul"
  }
  party "utc" {}
  rule "r" {
    share "s" {
      party   = "seoul"
      percent = "50"
    }
    share "u" {
      party   = "utc"
      percent = "50"
    }
  }
}
`
	book, err := rules.Parse([]byte(src), "z.hcl")
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
	l.apply([]byte(`{"provider":"p","id":"b1","type":"bet","amount":"10.00","currency":"EUR","occurred_at":"2026-10-31T15:00:00Z"}`))
	l.apply([]byte(`{"provider":"p","id":"b2","type":"bet","amount":"20.00","currency":"EUR","occurred_at":"2026-11-30T15:30:00Z"}`))
	s := &statement.Source{Entries: l.entries, Book: book}
	nov, _ := statement.ParsePeriod("2026-11")
	got := map[string]string{}
	for _, party := range []string{"seoul", "utc"} {
		st, err := statement.Build(s, party, "EUR", nov, nil)
		if err != nil {
			t.Fatal(err)
		}
		got[party] = fmt.Sprintf("%s %s %s..%s %s", st.Period, st.TimeZone, st.Start.Format(time.RFC3339), st.End.Format(time.RFC3339), st.Closing)
		if party == "seoul" {
			dec, err := statement.Build(s, party, "EUR", nov.Next(), st)
			if err != nil {
				t.Fatal(err)
			}
			got["seoul-dec"] = fmt.Sprintf("%s %s", dec.Period, dec.Closing)
		}
	}
	want := map[string]string{
		"seoul":     "2026-11 Asia/Seoul 2026-10-31T15:00:00Z..2026-11-30T15:00:00Z 5.00",
		"seoul-dec": "2026-12 15.00",
		"utc":       "2026-11  2026-11-01T00:00:00Z..2026-12-01T00:00:00Z 15.00",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
	if _, err := rules.Parse([]byte(strings.Replace(src, "Asia/Seoul", "KST", 1)), "z.hcl"); err == nil || !strings.Contains(err.Error(), `time_zone: "KST" is not an IANA time zone`) {
		t.Errorf("a bad zone: %v", err)
	}
}
