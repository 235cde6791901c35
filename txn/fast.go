package txn

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Fast paths for the shape nearly every transaction has. Each one handles a
// strict subset of its input and hands anything else to the general code
// (encoding/json), so both give the same result on every input the fast one
// takes; FuzzFastDecode and FuzzFastCanonical check exactly that.

// scanFast reads b into r when b is a flat JSON object whose keys are the
// exact (lower-case) field names, each at most once, whose strings are
// valid UTF-8 without escapes or control characters, whose amount is such a string, whose seq
// is a plain unsigned integer and whose meta is an object of such strings,
// with only JSON whitespace around. It reports false, with r in an
// unspecified state, for anything else (unknown or repeated keys, escapes,
// non-ASCII, null, a number amount, trailing data...): Decode then takes the
// encoding/json path, which gives the definite answer.
//
// All strings share one copy of b; r.Amount aliases b.
func scanFast(b []byte, r *rawTx) bool {
	s := string(b) // one allocation; every field is a substring
	i := skipWS(s, 0)
	if i >= len(s) || s[i] != '{' {
		return false
	}
	i = skipWS(s, i+1)
	var seen uint16
	if i < len(s) && s[i] == '}' {
		return false // an empty object: let the general path name what is missing
	}
	for {
		key, j, ok := scanStr(s, i)
		if !ok {
			return false
		}
		j = skipWS(s, j)
		if j >= len(s) || s[j] != ':' {
			return false
		}
		j = skipWS(s, j+1)
		bit, ok := fieldBit(key)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch key {
		case "seq":
			k := j
			for k < len(s) && s[k] >= '0' && s[k] <= '9' {
				k++
			}
			if k == j || k-j > 19 || (s[j] == '0' && k-j > 1) {
				return false
			}
			v, err := strconv.ParseUint(s[j:k], 10, 64)
			if err != nil {
				return false
			}
			r.Seq, j = v, k
		case "meta":
			m, k, ok := scanMeta(s, j)
			if !ok {
				return false
			}
			r.Meta, j = m, k
		case "amount":
			v, k, ok := scanStr(s, j)
			if !ok {
				return false
			}
			r.Amount, r.amountText, r.has, j = b[j:k], v, r.has|hasAmountText, k
		default:
			v, k, ok := scanStr(s, j)
			if !ok {
				return false
			}
			j = k
			switch key {
			case "id":
				r.ID, r.has = v, r.has|hasID
			case "type":
				r.Type, r.has = v, r.has|hasType
			case "currency":
				r.Currency, r.has = v, r.has|hasCurrency
			case "occurred_at":
				r.OccurredAt, r.has = v, r.has|hasOccurredAt
			case "round":
				r.Round = v
			case "parent":
				r.Parent = v
			case "game":
				r.Game = v
			case "category":
				r.Category = v
			case "jurisdiction":
				r.Jurisdiction = v
			case "brand":
				r.Brand = v
			case "affiliate":
				r.Affiliate = v
			case "player":
				r.Player = v
			}
		}
		j = skipWS(s, j)
		if j >= len(s) {
			return false
		}
		switch s[j] {
		case ',':
			i = skipWS(s, j+1)
		case '}':
			return skipWS(s, j+1) == len(s)
		default:
			return false
		}
	}
}

func fieldBit(key string) (uint16, bool) {
	switch key {
	case "id":
		return 1 << 0, true
	case "type":
		return 1 << 1, true
	case "amount":
		return 1 << 2, true
	case "currency":
		return 1 << 3, true
	case "occurred_at":
		return 1 << 4, true
	case "round":
		return 1 << 5, true
	case "parent":
		return 1 << 6, true
	case "seq":
		return 1 << 7, true
	case "game":
		return 1 << 8, true
	case "category":
		return 1 << 9, true
	case "jurisdiction":
		return 1 << 10, true
	case "brand":
		return 1 << 11, true
	case "affiliate":
		return 1 << 12, true
	case "player":
		return 1 << 13, true
	case "meta":
		return 1 << 14, true
	}
	return 0, false
}

// scanMeta reads a flat object of simple strings with distinct keys.
func scanMeta(s string, i int) (map[string]string, int, bool) {
	if i >= len(s) || s[i] != '{' {
		return nil, 0, false
	}
	m := map[string]string{}
	i = skipWS(s, i+1)
	if i < len(s) && s[i] == '}' {
		return m, i + 1, true
	}
	for {
		k, j, ok := scanStr(s, i)
		if !ok {
			return nil, 0, false
		}
		j = skipWS(s, j)
		if j >= len(s) || s[j] != ':' {
			return nil, 0, false
		}
		v, j, ok := scanStr(s, skipWS(s, j+1))
		if !ok {
			return nil, 0, false
		}
		if _, dup := m[k]; dup {
			return nil, 0, false
		}
		m[k] = v
		j = skipWS(s, j)
		if j >= len(s) {
			return nil, 0, false
		}
		switch s[j] {
		case ',':
			i = skipWS(s, j+1)
		case '}':
			return m, j + 1, true
		default:
			return nil, 0, false
		}
	}
}

// scanStr reads a JSON string at s[i] without escapes or control
// characters, made of printable ASCII other than '"' and '\\' and of valid
// UTF-8 sequences of non-ASCII characters, and returns its content (exactly
// its bytes: such a literal means itself) and the index after it.
func scanStr(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, false
	}
	hi := false
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			if hi && !utf8.ValidString(s[i+1:j]) {
				return "", 0, false // the general path names the bad byte
			}
			return s[i+1 : j], j + 1, true
		case c >= 0x80:
			hi = true
		case c < 0x20 || c == 0x7f || c == '\\':
			return "", 0, false
		}
	}
	return "", 0, false
}

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// simpleASCII reports whether s is printable ASCII other than '"' and '\\':
// such a JSON string literal means exactly its bytes.
func simpleASCII(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// htmlSafe reports whether encoding/json writes s as is between quotes:
// printable ASCII without '"', '\\', '<', '>' and '&' (which it escapes).
func htmlSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendJSONString appends s as encoding/json.Marshal writes it.
func appendJSONString(dst []byte, s string) []byte {
	if htmlSafe(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic("txn: encoding a string: " + err.Error()) // strings always encode
	}
	return append(dst, b...)
}

// appendCanonical appends t's canonical JSON (see Canonical): byte for byte
// what json.Marshal of wireTx writes, without reflection.
func (t Tx) appendCanonical(dst []byte) []byte {
	field := func(name string) {
		dst = append(dst, ',', '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
	}
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, t.ID)
	field("type")
	dst = appendJSONString(dst, string(t.Type))
	field("amount")
	dst = appendAmount(dst, t.Amount, t.Currency.Exponent)
	field("currency")
	dst = appendJSONString(dst, t.Currency.Code)
	field("occurred_at")
	dst = append(dst, '"')
	dst = t.OccurredAt.UTC().AppendFormat(dst, time.RFC3339Nano) // digits, '-', ':', 'T', '.', 'Z': never escaped
	dst = append(dst, '"')
	for _, f := range []struct{ name, v string }{{"round", t.Round}, {"parent", t.Parent}} {
		if f.v != "" {
			field(f.name)
			dst = appendJSONString(dst, f.v)
		}
	}
	if t.Seq != 0 {
		field("seq")
		dst = strconv.AppendUint(dst, t.Seq, 10)
	}
	for _, f := range []struct{ name, v string }{
		{"game", t.Game}, {"category", t.Category}, {"jurisdiction", t.Jurisdiction},
		{"brand", t.Brand}, {"affiliate", t.Affiliate}, {"player", t.Player},
	} {
		if f.v != "" {
			field(f.name)
			dst = appendJSONString(dst, f.v)
		}
	}
	if len(t.Meta) > 0 {
		field("meta")
		dst = append(dst, '{')
		for i, k := range slices.Sorted(maps.Keys(t.Meta)) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONString(dst, t.Meta[k])
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendAmount appends d as the JSON string t.Currency.Format writes
// (d.StringFixed(places)), without allocating for the common case: d >= 0
// with at most places decimals and at most 18 digits once scaled. Anything
// else goes through StringFixed (FuzzFastCanonical checks both against
// Format).
func appendAmount(dst []byte, d decimal.Decimal, places int32) []byte {
	e := d.Exponent()
	if places < 0 || places > 18 || e < -places || d.Sign() < 0 || e > 18 {
		return appendJSONString(dst, d.StringFixed(places))
	}
	k := int(e + places) // d = c × 10^e = v × 10^-places with v = c × 10^k
	if d.NumDigits()+k > 18 {
		return appendJSONString(dst, d.StringFixed(places))
	}
	v := uint64(d.CoefficientInt64())
	for range k {
		v *= 10
	}
	var buf [24]byte
	digits := strconv.AppendUint(buf[:0], v, 10)
	dst = append(dst, '"')
	if p := int(places); p > 0 {
		if len(digits) <= p { // 0.0x: leading zeros up to one before the point
			dst = append(dst, '0', '.')
			for range p - len(digits) {
				dst = append(dst, '0')
			}
			dst = append(dst, digits...)
		} else {
			dst = append(dst, digits[:len(digits)-p]...)
			dst = append(dst, '.')
			dst = append(dst, digits[len(digits)-p:]...)
		}
	} else {
		dst = append(dst, digits...)
	}
	return append(dst, '"')
}
