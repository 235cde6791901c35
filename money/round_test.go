package money

import (
	"testing"

	"github.com/shopspring/decimal"
)

func TestRound(t *testing.T) {
	tests := []struct {
		name string
		in   string
		exp  int32
		mode Rounding
		want string
	}{
		{"half up tie", "6.1725", 3, HalfUp, "6.173"},
		{"half even tie down", "6.1725", 3, HalfEven, "6.172"},
		{"half even tie up", "6.1735", 3, HalfEven, "6.174"},
		{"down", "6.1729", 3, Down, "6.172"},
		{"half up usd 1.005", "1.005", 2, HalfUp, "1.01"},
		{"half even usd 1.005", "1.005", 2, HalfEven, "1"},
		{"half up negative tie away from zero", "-2.5", 0, HalfUp, "-3"},
		{"half even negative tie", "-2.5", 0, HalfEven, "-2"},
		{"down negative toward zero", "-2.9", 0, Down, "-2"},
		{"half up below tie", "148148.04", 0, HalfUp, "148148"},
		{"half up above tie", "306357.8", 0, HalfUp, "306358"},
		{"already fits", "12.30", 2, HalfUp, "12.3"},
		{"jpy exponent zero", "0.5", 0, HalfUp, "1"},
		{"zero", "0", 2, HalfEven, "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Round(decimal.RequireFromString(tc.in), tc.exp, tc.mode)
			if !got.Equal(decimal.RequireFromString(tc.want)) {
				t.Errorf("Round(%s, %d, %s) = %s, want %s", tc.in, tc.exp, tc.mode, got, tc.want)
			}
		})
	}
}

func TestParseRounding(t *testing.T) {
	for _, s := range []string{"half_up", "half_even", "down"} {
		if r, err := ParseRounding(s); err != nil || string(r) != s {
			t.Errorf("ParseRounding(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "HALF_UP", "up", "bankers"} {
		if _, err := ParseRounding(s); err == nil {
			t.Errorf("ParseRounding(%q) = nil error, want error", s)
		}
	}
}

func TestRoundUnknownModePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Round with unknown mode did not panic")
		}
	}()
	Round(decimal.NewFromInt(1), 2, Rounding("nearest"))
}
