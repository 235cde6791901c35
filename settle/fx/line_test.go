package fx

import (
	"errors"
	"strings"
	"testing"
)

// TestParseLine reads the seam's fx_rate payload and refuses, with
// ErrBadRate, every deviation from it: nothing is repaired.
func TestParseLine(t *testing.T) {
	good := `{"id":"fx-ecb-EURUSD-1793491200","type":"fx_rate","amount":"0","currency":"EUR","occurred_at":"2026-11-01T00:00:00Z","meta":{"source":"ecb","pair":"EUR/USD","rate":"1.08","posted_by":"treasury@op"}}`
	e, err := ParseLine([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRate(e)
	if err != nil || r.Pair() != "EUR/USD" || r.Rate.String() != "1.08" || r.Source != "ecb" || r.PostedBy != "treasury@op" || r.AsOf.Unix() != 1793491200 {
		t.Fatalf("rate %+v, %v", r, err)
	}
	for name, line := range map[string]string{
		"wrong id":        strings.Replace(good, "1793491200", "1793491201", 1),
		"unknown field":   strings.Replace(good, `"amount":"0"`, `"amount":"0","x":1`, 1),
		"duplicate key":   strings.Replace(good, `"amount":"0"`, `"amount":"0","amount":"0"`, 1),
		"amount not 0":    strings.Replace(good, `"amount":"0"`, `"amount":"1.00"`, 1),
		"amount number":   strings.Replace(good, `"amount":"0"`, `"amount":0`, 1),
		"other type":      strings.Replace(good, `"fx_rate"`, `"bet"`, 1),
		"missing id":      strings.Replace(good, `"id":"fx-ecb-EURUSD-1793491200",`, ``, 1),
		"pair not base":   strings.Replace(good, `"EUR/USD"`, `"GBP/USD"`, 1),
		"rate exponent":   strings.Replace(good, `"1.08"`, `"1.08e0"`, 1),
		"rate zero":       strings.Replace(good, `"1.08"`, `"0"`, 1),
		"extra meta":      strings.Replace(good, `"posted_by"`, `"note":"x","posted_by"`, 1),
		"missing poster":  strings.Replace(good, `,"posted_by":"treasury@op"`, ``, 1),
		"fraction second": strings.Replace(good, `00:00:00Z`, `00:00:00.5Z`, 1),
		"trailing":        good + `{}`,
		"unknown base":    strings.Replace(strings.Replace(good, `"EUR"`, `"XXQ"`, 1), "EUR/USD", "XXQ/USD", 1),
	} {
		if _, err := ParseLine([]byte(line)); !errors.Is(err, ErrBadRate) {
			t.Errorf("%s: %v, want ErrBadRate", name, err)
		}
	}
}
