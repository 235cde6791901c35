package statement

import "testing"

// FuzzParsePeriod: any input either fails or parses to a period whose
// String parses back to the same period, which holds its own start.
func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"2026-11", "2026-11-05", "2026-W45", "2026-W53", "2025-W53", "0000-01", "9999-12-31", "2026-W00", "2026-1-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod(s)
		if err != nil {
			return
		}
		q, err := ParsePeriod(p.String())
		if err != nil || q != p {
			t.Fatalf("ParsePeriod(%q) = %v, its String %q parses to %v, %v", s, p, p.String(), q, err)
		}
		if !p.Contains(p.Start) || p.Contains(p.End()) || !p.End().After(p.Start) {
			t.Fatalf("period %v does not hold [start, end)", p)
		}
	})
}
