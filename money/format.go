package money

import (
	"strconv"

	"github.com/shopspring/decimal"
)

// maxFastZeros bounds the zeros the fast formatters write for an exponent;
// anything further out is left to shopspring (it never occurs in money).
const maxFastZeros = 64

// String returns exactly d.String(), byte for byte, without math/big's
// formatting when d's coefficient has at most 18 digits (every amount tally
// settles). Anything else, or a changed decimal.TrimTrailingZeros /
// decimal.UseScientificNotation, is formatted by shopspring itself.
func String(d decimal.Decimal) string {
	var buf [48]byte
	b, ok := appendString(buf[:0], d)
	if !ok {
		return d.String()
	}
	return string(b)
}

// AppendString appends exactly d.String() to dst (see String).
func AppendString(dst []byte, d decimal.Decimal) []byte {
	if b, ok := appendString(dst, d); ok {
		return b
	}
	return append(dst, d.String()...)
}

// appendString is the fast path of String: false (dst unchanged in length)
// when shopspring must decide.
func appendString(dst []byte, d decimal.Decimal) ([]byte, bool) {
	if !decimal.TrimTrailingZeros || decimal.UseScientificNotation || d.NumDigits() > 18 {
		return dst, false
	}
	c, e := d.CoefficientInt64(), d.Exponent() // |c| < 10^18: no MinInt64
	switch {
	case e == 0:
		return strconv.AppendInt(dst, c, 10), true
	case e > 0: // shopspring: the coefficient followed by e zeros (0 stays "0")
		if e > maxFastZeros {
			return dst, false
		}
		dst = strconv.AppendInt(dst, c, 10)
		if c != 0 {
			dst = appendZeros(dst, int(e))
		}
		return dst, true
	case -e > maxFastZeros:
		return dst, false
	}
	if c < 0 {
		dst = append(dst, '-')
		c = -c
	}
	var digits [20]byte
	str := strconv.AppendInt(digits[:0], c, 10)
	frac := int(-e) // digits after the point before trimming
	var intPart, fracPart []byte
	lead := 0 // zeros between the point and the coefficient's digits
	if len(str) > frac {
		intPart, fracPart = str[:len(str)-frac], str[len(str)-frac:]
	} else {
		intPart, lead, fracPart = []byte{'0'}, frac-len(str), str
	}
	for len(fracPart) > 0 && fracPart[len(fracPart)-1] == '0' {
		fracPart = fracPart[:len(fracPart)-1]
	}
	dst = append(dst, intPart...)
	if len(fracPart) == 0 {
		return dst, true // shopspring drops the leading zeros with an empty fraction
	}
	dst = append(dst, '.')
	dst = appendZeros(dst, lead)
	return append(dst, fracPart...), true
}

// appendFixed appends exactly d.StringFixed(places) when that needs no
// rounding (d has at most places decimals) and the digits fit the fast path;
// false otherwise.
func appendFixed(dst []byte, d decimal.Decimal, places int32) ([]byte, bool) {
	if places < 0 || places > maxFastZeros || d.NumDigits() > 18 {
		return dst, false
	}
	c, e := d.CoefficientInt64(), d.Exponent()
	if e < -places || e > maxFastZeros {
		return dst, false // rounding (or an absurd exponent): shopspring decides
	}
	// The value at exponent −places is c followed by e + places zeros.
	if c < 0 {
		dst = append(dst, '-')
		c = -c
	}
	var digits [20 + 2*maxFastZeros]byte
	str := strconv.AppendInt(digits[:0], c, 10)
	if c != 0 {
		str = appendZeros(str, int(e+places))
	}
	p := int(places)
	if p == 0 {
		return append(dst, str...), true
	}
	if len(str) > p {
		dst = append(dst, str[:len(str)-p]...)
		dst = append(dst, '.')
		return append(dst, str[len(str)-p:]...), true
	}
	dst = append(dst, '0', '.')
	dst = appendZeros(dst, p-len(str))
	return append(dst, str...), true
}

func appendZeros(dst []byte, n int) []byte {
	for range n {
		dst = append(dst, '0')
	}
	return dst
}
