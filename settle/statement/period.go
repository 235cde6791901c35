package statement

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tally-mesh/tally/settle/rules"
)

// Period is a calendar day, ISO week (Monday to Monday) or month in a time
// zone: [Start, End()). The zone is Start's location (UTC unless In gave
// another): every boundary is local midnight, recomputed from the calendar
// date with time.Date, so a day across a DST change is 23 or 25 hours and
// a midnight that does not exist (clocks jump from 23:59:59 to 01:00)
// starts the day at the first instant that does.
type Period struct {
	Kind  string    // rules.PeriodDay, PeriodWeek or PeriodMonth
	Start time.Time // local midnight, in the period's location
}

// midnight is the first instant of the calendar date y-m-d in loc: local
// midnight, or, where a DST change skips midnight itself, the instant of
// the change (time.Date would normalize a skipped midnight backwards, into
// the day before).
func midnight(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	y, m, d = time.Date(y, m, d, 12, 0, 0, 0, loc).Date() // the normalized date asked for
	if ty, tm, td := t.Date(); ty != y || tm != m || td != d {
		_, end := t.ZoneBounds()
		t = end
	}
	return t
}

// In is the period with the same label (the same calendar month, week or
// day) in loc.
func (p Period) In(loc *time.Location) Period {
	y, m, d := p.Start.Date()
	return Period{p.Kind, midnight(y, m, d, loc)}
}

// PeriodIn is the period of kind in loc that holds t.
func PeriodIn(kind string, t time.Time, loc *time.Location) Period {
	t = t.In(loc)
	y, m, d := t.Date()
	switch kind {
	case rules.PeriodMonth:
		return Period{kind, midnight(y, m, 1, loc)}
	case rules.PeriodWeek:
		back := (int(time.Date(y, m, d, 12, 0, 0, 0, loc).Weekday()) + 6) % 7
		return Period{kind, midnight(y, m, d-back, loc)}
	}
	return Period{rules.PeriodDay, midnight(y, m, d, loc)}
}

// shift is the period n periods after p (n < 0: before), by calendar date.
func (p Period) shift(n int) Period {
	y, m, d := p.Start.Date()
	loc := p.Start.Location()
	switch p.Kind {
	case rules.PeriodMonth:
		return Period{p.Kind, midnight(y, m+time.Month(n), 1, loc)}
	case rules.PeriodWeek:
		return Period{p.Kind, midnight(y, m, d+7*n, loc)}
	}
	return Period{p.Kind, midnight(y, m, d+n, loc)}
}

// ParsePeriod reads "2026-11" (a month), "2026-11-05" (a day) or "2026-W45"
// (an ISO week).
func ParsePeriod(s string) (Period, error) {
	switch {
	case len(s) == 7 && s[4] == '-':
		t, err := time.Parse("2006-01", s)
		if err != nil {
			return Period{}, fmt.Errorf("period %q: %w", s, err)
		}
		return Period{rules.PeriodMonth, t.UTC()}, nil
	case len(s) == 10:
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return Period{}, fmt.Errorf("period %q: %w", s, err)
		}
		return Period{rules.PeriodDay, t.UTC()}, nil
	case len(s) == 8 && strings.HasPrefix(s[4:], "-W"):
		y, err1 := strconv.Atoi(s[:4])
		w, err2 := strconv.Atoi(s[6:])
		if err1 != nil || err2 != nil || w < 1 || w > 53 {
			return Period{}, fmt.Errorf("period %q: not an ISO week such as 2026-W45", s)
		}
		// ISO week 1 holds January 4th; weeks start on Monday.
		jan4 := time.Date(y, 1, 4, 0, 0, 0, 0, time.UTC)
		start := jan4.AddDate(0, 0, -((int(jan4.Weekday())+6)%7)+7*(w-1))
		if yy, ww := start.ISOWeek(); yy != y || ww != w {
			return Period{}, fmt.Errorf("period %q: %d has no week %d", s, y, w)
		}
		return Period{rules.PeriodWeek, start}, nil
	}
	return Period{}, fmt.Errorf("period %q: write a month 2026-11, a day 2026-11-05 or an ISO week 2026-W45", s)
}

// PeriodOf is the UTC period of kind that holds t.
func PeriodOf(kind string, t time.Time) Period { return PeriodIn(kind, t, time.UTC) }

// End is the first instant after the period.
func (p Period) End() time.Time { return p.Next().Start }

// Next is the following period of the same kind.
func (p Period) Next() Period { return p.shift(1) }

// Prev is the period of the same kind before p.
func (p Period) Prev() Period { return p.shift(-1) }

// Contains reports whether t falls in the period.
func (p Period) Contains(t time.Time) bool { return !t.Before(p.Start) && t.Before(p.End()) }

// String is the form ParsePeriod reads.
func (p Period) String() string {
	switch p.Kind {
	case rules.PeriodMonth:
		return p.Start.Format("2006-01")
	case rules.PeriodWeek:
		y, w := p.Start.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w)
	}
	return p.Start.Format("2006-01-02")
}
