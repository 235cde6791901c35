package money

import (
	"fmt"
	"sort"

	"github.com/shopspring/decimal"
)

// Currency is an ISO 4217 currency and the number of decimals of its minor unit.
type Currency struct {
	Code     string
	Exponent int32
}

// registry holds the currencies tally settles. Exponents follow ISO 4217
// (JPY 0, EUR 2, KWD 3, CLF 4). Extend it here; never infer an exponent.
var registry = map[string]Currency{}

func init() {
	for exp, codes := range map[int32][]string{
		0: {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"},
		2: {"AED", "ARS", "AUD", "BRL", "CAD", "CHF", "CNY", "COP", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "ILS", "INR", "MXN", "MYR", "NOK", "NZD", "PEN", "PHP", "PLN", "RON", "RSD", "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD", "ZAR"},
		3: {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"},
		4: {"CLF", "UYW"},
	} {
		for _, c := range codes {
			registry[c] = Currency{Code: c, Exponent: exp}
		}
	}
}

// Lookup returns the currency with the given ISO 4217 code.
func Lookup(code string) (Currency, bool) {
	c, ok := registry[code]
	return c, ok
}

// Codes returns every known currency code, sorted.
func Codes() []string {
	out := make([]string, 0, len(registry))
	for c := range registry {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Fits reports whether d has no more decimals than the currency allows.
func (c Currency) Fits(d decimal.Decimal) bool {
	return d.Equal(d.Truncate(c.Exponent))
}

// Unit is the smallest amount of the currency (0.01 for EUR, 1 for JPY).
func (c Currency) Unit() decimal.Decimal {
	return decimal.New(1, -c.Exponent)
}

// Format prints d with exactly the currency's number of decimals: the bytes
// of d.StringFixed(c.Exponent), without math/big's formatting when d fits the
// currency and has at most 18 digits (appendFixed).
func (c Currency) Format(d decimal.Decimal) string {
	var buf [32]byte
	if b, ok := appendFixed(buf[:0], d, c.Exponent); ok {
		return string(b)
	}
	return d.StringFixed(c.Exponent)
}

// AppendFormat appends Format(d) to dst, without a string in between when
// the fast path applies.
func (c Currency) AppendFormat(dst []byte, d decimal.Decimal) []byte {
	if b, ok := appendFixed(dst, d, c.Exponent); ok {
		return b
	}
	return append(dst, d.StringFixed(c.Exponent)...)
}

// Minor converts d to an integer count of minor units. It fails if d has more
// decimals than the currency allows or does not fit in an int64.
func (c Currency) Minor(d decimal.Decimal) (int64, error) {
	if !c.Fits(d) {
		return 0, fmt.Errorf("%s has more than %d decimals for %s", d, c.Exponent, c.Code)
	}
	m := d.Shift(c.Exponent)
	if !m.IsInteger() || m.Cmp(maxInt64) > 0 || m.Cmp(minInt64) < 0 {
		return 0, fmt.Errorf("%s %s out of range", d, c.Code)
	}
	return m.IntPart(), nil
}

// FromMinor converts an integer count of minor units to a decimal amount.
func (c Currency) FromMinor(m int64) decimal.Decimal {
	return decimal.New(m, -c.Exponent)
}

var (
	maxInt64 = decimal.New(1<<62, 0).Mul(decimal.NewFromInt(2)).Sub(decimal.NewFromInt(1))
	minInt64 = maxInt64.Neg().Sub(decimal.NewFromInt(1))
)
