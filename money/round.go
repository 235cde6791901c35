package money

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// Rounding names how a single figure is rounded to a currency's exponent.
// A rule always names its rounding; there is no default.
type Rounding string

const (
	// HalfUp rounds to the nearest unit, halves away from zero
	// (2.5 → 3, −2.5 → −3): "commercial" rounding.
	HalfUp Rounding = "half_up"
	// HalfEven rounds to the nearest unit, halves to the even neighbour
	// (2.5 → 2, 3.5 → 4): "banker's" rounding.
	HalfEven Rounding = "half_even"
	// Down truncates toward zero (2.9 → 2, −2.9 → −2).
	Down Rounding = "down"
)

// Valid reports whether r is one of the named rounding modes.
func (r Rounding) Valid() bool {
	switch r {
	case HalfUp, HalfEven, Down:
		return true
	}
	return false
}

// ParseRounding returns the rounding mode named s ("half_up", "half_even", "down").
func ParseRounding(s string) (Rounding, error) {
	r := Rounding(s)
	if !r.Valid() {
		return "", fmt.Errorf("unknown rounding %q (use %q, %q or %q)", s, HalfUp, HalfEven, Down)
	}
	return r, nil
}

// Round rounds d to exp decimals (a currency's Exponent) with mode. It is exact:
// no intermediate float, no precision limit. An unknown mode is a programmer
// error (modes come from the constants or ParseRounding) and panics.
func Round(d decimal.Decimal, exp int32, mode Rounding) decimal.Decimal {
	switch mode {
	case HalfUp:
		return d.Round(exp) // shopspring: half away from zero
	case HalfEven:
		return d.RoundBank(exp)
	case Down:
		return d.RoundDown(exp) // toward zero
	}
	panic(fmt.Sprintf("money: unknown rounding mode %q", string(mode)))
}
