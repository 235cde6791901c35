package statement

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tally-mesh/tally/settle/rules"
)

// Period is a UTC calendar day, ISO week (Monday to Monday) or month:
// [Start, End()).
type Period struct {
	Kind  string    // rules.PeriodDay, PeriodWeek or PeriodMonth
	Start time.Time // UTC midnight
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

// PeriodOf is the period of kind that holds t.
func PeriodOf(kind string, t time.Time) Period {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch kind {
	case rules.PeriodMonth:
		return Period{kind, time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)}
	case rules.PeriodWeek:
		return Period{kind, d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))}
	}
	return Period{rules.PeriodDay, d}
}

// End is the first instant after the period.
func (p Period) End() time.Time { return p.Next().Start }

// Next is the following period of the same kind.
func (p Period) Next() Period {
	switch p.Kind {
	case rules.PeriodMonth:
		return Period{p.Kind, p.Start.AddDate(0, 1, 0)}
	case rules.PeriodWeek:
		return Period{p.Kind, p.Start.AddDate(0, 0, 7)}
	}
	return Period{p.Kind, p.Start.AddDate(0, 0, 1)}
}

// Prev is the period of the same kind before p.
func (p Period) Prev() Period {
	switch p.Kind {
	case rules.PeriodMonth:
		return Period{p.Kind, p.Start.AddDate(0, -1, 0)}
	case rules.PeriodWeek:
		return Period{p.Kind, p.Start.AddDate(0, 0, -7)}
	}
	return Period{p.Kind, p.Start.AddDate(0, 0, -1)}
}

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
