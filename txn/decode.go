package txn

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
)

// Limits bound what Decode accepts. Zero fields take the defaults of DefaultLimits.
type Limits struct {
	PayloadBytes int             // largest single transaction payload
	IDLen        int             // longest id and parent
	FieldLen     int             // longest optional attribute (game, brand, ...)
	MetaKeys     int             // most meta entries
	MetaBytes    int             // most bytes across meta keys and values
	AmountMax    decimal.Decimal // largest amount in major units
	// Operator admits the operator types (correction, fx_rate, payout_run). Only the
	// settle engine's limits set it: every edge refuses them (reserved_type).
	Operator bool
}

// DefaultLimits are the limits used when a config leaves them unset.
func DefaultLimits() Limits { return defaultLimits }

// defaultLimits is built once: withDefaults runs for every transaction.
// Sharing AmountMax is safe: decimal.Decimal values are never mutated.
var defaultLimits = Limits{
	PayloadBytes: 16 << 10,
	IDLen:        128,
	FieldLen:     128,
	MetaKeys:     16,
	MetaBytes:    1024,
	AmountMax:    decimal.New(1, 12),
}

func (l Limits) withDefaults() Limits {
	if l.PayloadBytes > 0 && l.IDLen > 0 && l.FieldLen > 0 && l.MetaKeys > 0 && l.MetaBytes > 0 && l.AmountMax.IsPositive() {
		return l
	}
	d := defaultLimits
	if l.PayloadBytes <= 0 {
		l.PayloadBytes = d.PayloadBytes
	}
	if l.IDLen <= 0 {
		l.IDLen = d.IDLen
	}
	if l.FieldLen <= 0 {
		l.FieldLen = d.FieldLen
	}
	if l.MetaKeys <= 0 {
		l.MetaKeys = d.MetaKeys
	}
	if l.MetaBytes <= 0 {
		l.MetaBytes = d.MetaBytes
	}
	if !l.AmountMax.IsPositive() {
		l.AmountMax = d.AmountMax
	}
	return l
}

// rawTx is what Decode reads; amount stays raw so a JSON number can be refused.
type rawTx struct {
	ID           string
	Type         string
	Amount       []byte // the raw JSON value
	Currency     string
	OccurredAt   string
	has          uint8  // which of ID, Type, Currency, OccurredAt were given (not null), and hasAmountText
	amountText   string // Amount's content when scanFast read it (a string without escapes)
	Round        string
	Parent       string
	Seq          uint64
	Game         string
	Category     string
	Jurisdiction string
	Brand        string
	Affiliate    string
	Player       string
	Meta         map[string]string
}

// Bits of rawTx.has. The required strings are values with a presence bit,
// not pointers, so a decoded rawTx stays on the stack.
const (
	hasID uint8 = 1 << iota
	hasType
	hasCurrency
	hasOccurredAt
	hasAmountText // amountText holds Amount's content: no String decode needed
)

// Decode parses and validates one canonical JSON transaction. It never panics;
// every input yields either a Tx or an *Error with a stable code. A
// rejection carries the id (Error.ID) whenever the id parsed.
func Decode(b []byte, lim Limits) (Tx, *Error) {
	lim = lim.withDefaults()
	if len(b) > lim.PayloadBytes {
		e := reject(CodePayloadTooLarge, "payload is %d bytes, limit is %d", len(b), lim.PayloadBytes)
		return Tx{}, echoID(e, b, lim)
	}
	var r rawTx
	if scanFast(b, &r) { // valid UTF-8 only, no escapes, no name twice: strict JSON
		return r.validate(lim)
	}
	return decodeJSON(b, lim)
}

// echoID sets e.ID from b's id when one can be read (see PeekString).
func echoID(e *Error, b []byte, lim Limits) *Error {
	b = bytes.TrimPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte(bom))
	if id, ok := PeekString(b, "id"); ok {
		e.WithID(id, lim)
	}
	return e
}

// decodeJSON is Decode through strict JSON (Object): every input scanFast
// does not take, with the definite rejection for each kind of bad input.
func decodeJSON(b []byte, lim Limits) (Tx, *Error) {
	ms, e := Object(b)
	if e != nil {
		return Tx{}, echoID(e, b, lim)
	}
	var r rawTx
	if e := r.fill(ms); e != nil {
		if r.has&hasID != 0 {
			e.WithID(r.ID, lim)
		} else {
			echoID(e, b, lim)
		}
		return Tx{}, e
	}
	return r.validate(lim)
}

// fill sets r from the members of a strict JSON object. A JSON null is an
// absent field.
func (r *rawTx) fill(ms []Member) *Error {
	for _, m := range ms {
		if m.Name == "amount" {
			if m.Value.Kind() != 'n' {
				r.Amount = m.Value
			}
			continue
		}
		if m.Name == "seq" {
			switch m.Value.Kind() {
			case 'n':
				continue
			case '0':
				v, err := strconv.ParseUint(string(m.Value), 10, 64)
				if err == nil {
					r.Seq = v
					continue
				}
			}
			return reject(CodeInvalidField, "seq must be an integer from 0 to 18446744073709551615, not %s", clip(string(m.Value)))
		}
		if m.Name == "meta" {
			if m.Value.Kind() == 'n' {
				continue
			}
			mm, e := ObjectMembers("meta", m.Value)
			if e != nil {
				return e
			}
			r.Meta = make(map[string]string, len(mm))
			for _, kv := range mm {
				v, ok, e := String("meta."+clip(kv.Name), kv.Value)
				if e != nil {
					return e
				}
				if !ok {
					return reject(CodeInvalidField, "meta.%s must be a JSON string, not null", clip(kv.Name))
				}
				r.Meta[kv.Name] = v
			}
			continue
		}
		var dst *string
		var bit uint8
		switch m.Name {
		case "id":
			dst, bit = &r.ID, hasID
		case "type":
			dst, bit = &r.Type, hasType
		case "currency":
			dst, bit = &r.Currency, hasCurrency
		case "occurred_at":
			dst, bit = &r.OccurredAt, hasOccurredAt
		case "round":
			dst = &r.Round
		case "parent":
			dst = &r.Parent
		case "game":
			dst = &r.Game
		case "category":
			dst = &r.Category
		case "jurisdiction":
			dst = &r.Jurisdiction
		case "brand":
			dst = &r.Brand
		case "affiliate":
			dst = &r.Affiliate
		case "player":
			dst = &r.Player
		default:
			return reject(CodeUnknownField, "unknown field %q", clip(m.Name))
		}
		r.has |= bit // before String, as a rejection below still counts the field as given (its id "" echoes nothing)
		v, ok, e := String(m.Name, m.Value)
		if e != nil {
			return e
		}
		if !ok { // null: absent
			r.has &^= bit
			continue
		}
		*dst = v
	}
	return nil
}

// validate checks r; a rejection carries the id when it is a valid id.
func (r *rawTx) validate(lim Limits) (Tx, *Error) {
	t, e := r.check(lim)
	if e != nil && r.has&hasID != 0 {
		e.WithID(r.ID, lim)
	}
	return t, e
}

func (r *rawTx) check(lim Limits) (Tx, *Error) {
	for _, f := range []struct {
		name string
		v    bool
	}{{"id", r.has&hasID == 0}, {"type", r.has&hasType == 0}, {"amount", len(r.Amount) == 0 || string(r.Amount) == "null"}, {"currency", r.has&hasCurrency == 0}, {"occurred_at", r.has&hasOccurredAt == 0}} {
		if f.v {
			return Tx{}, reject(CodeMissingField, "%s is required", f.name)
		}
	}
	if e := checkID("id", r.ID, lim.IDLen); e != nil {
		return Tx{}, e
	}
	t := Tx{ID: r.ID, Type: Type(r.Type), Seq: r.Seq}
	if !t.Type.Valid() {
		return Tx{}, reject(CodeInvalidType, "type %q is not one of bet, win, rollback, refund, purchase, adjustment, fee, bonus_cost, jackpot_contribution, jackpot_win, tax, deposit", clip(r.Type))
	}
	if t.Type.Operator() && !lim.Operator {
		return Tx{}, reject(CodeReservedType, "type %q is reserved for the system's own entries (approved adjustments, FX rates, payout runs); a provider cannot send it", t.Type)
	}
	cur, ok := money.Lookup(r.Currency)
	if !ok {
		return Tx{}, reject(CodeUnknownCurrency, "currency %q is not a known ISO 4217 code", clip(r.Currency))
	}
	t.Currency = cur
	if r.Amount[0] != '"' {
		return Tx{}, reject(CodeAmountNotString, "amount must be a decimal string such as \"10.00\", not a JSON %s", jsonKind(r.Amount))
	}
	s := r.amountText
	if r.has&hasAmountText == 0 {
		var e *Error
		if s, _, e = String("amount", r.Amount); e != nil {
			return Tx{}, reject(CodeInvalidAmount, "amount is not a valid JSON string")
		}
	}
	amt, e := parseAmount(s, cur, lim)
	if e != nil {
		return Tx{}, e
	}
	t.Amount = amt
	ts, err := time.Parse(time.RFC3339Nano, r.OccurredAt)
	if err != nil {
		return Tx{}, reject(CodeInvalidTime, "occurred_at %q is not RFC 3339 with an offset (e.g. 2026-11-01T10:00:00Z)", clip(r.OccurredAt))
	}
	if y := ts.UTC().Year(); y < 1970 || y > 9999 {
		return Tx{}, reject(CodeInvalidTime, "occurred_at %q is outside the years 1970-9999", clip(r.OccurredAt))
	}
	t.OccurredAt = ts.UTC()
	if t.Type.Reversal() {
		if r.Parent == "" {
			return Tx{}, reject(CodeMissingParent, "%s needs parent: the id of the transaction it reverses", t.Type)
		}
		if r.Parent == t.ID {
			return Tx{}, reject(CodeInvalidField, "parent must differ from id")
		}
	}
	if r.Parent != "" {
		if e := checkID("parent", r.Parent, lim.IDLen); e != nil {
			return Tx{}, e
		}
		t.Parent = r.Parent
	}
	for _, f := range [...]struct{ name, v string }{{"round", r.Round}, {"game", r.Game}, {"category", r.Category}, {"jurisdiction", r.Jurisdiction}, {"brand", r.Brand}, {"affiliate", r.Affiliate}, {"player", r.Player}} {
		if len(f.v) > lim.FieldLen || !printable(f.v) {
			return Tx{}, reject(CodeInvalidField, "%s must be at most %d printable characters", f.name, lim.FieldLen)
		}
	}
	t.Round, t.Game, t.Category, t.Jurisdiction, t.Brand, t.Affiliate, t.Player = r.Round, r.Game, r.Category, r.Jurisdiction, r.Brand, r.Affiliate, r.Player
	if len(r.Meta) > 0 {
		if len(r.Meta) > lim.MetaKeys {
			return Tx{}, reject(CodeMetaTooLarge, "meta has %d keys, limit is %d", len(r.Meta), lim.MetaKeys)
		}
		n := 0
		for k, v := range r.Meta {
			n += len(k) + len(v)
			if k == "" || !printable(k) {
				return Tx{}, reject(CodeInvalidField, "meta key %q must be non-empty printable text", clip(k))
			}
			if !utf8.ValidString(v) { // only a Tx built in code: decoded JSON is always UTF-8
				return Tx{}, reject(CodeInvalidUTF8, "meta.%s is not valid UTF-8", clip(k))
			}
		}
		if n > lim.MetaBytes {
			return Tx{}, reject(CodeMetaTooLarge, "meta holds %d bytes, limit is %d", n, lim.MetaBytes)
		}
		t.Meta = r.Meta
	}
	return t, nil
}

// AmountChars is the most characters (digits and point) an amount may
// have; docs/ingest-errors.md states it. It bounds the work of parsing a
// decimal long before any limit on its value.
const AmountChars = 40

// parseAmount accepts only plain decimals: digits, one optional point, no sign
// (a minus before a plain decimal is negative_amount), no exponent, no spaces,
// at most AmountChars characters.
func parseAmount(s string, cur money.Currency, lim Limits) (decimal.Decimal, *Error) {
	if neg := strings.HasPrefix(s, "-"); neg || !plainDecimal(s) {
		if neg && plainDecimal(s[1:]) {
			return decimal.Decimal{}, reject(CodeNegativeAmount, "amount %q is negative: amounts are >= 0 and the type gives the sign", clip(s))
		}
		return decimal.Decimal{}, reject(CodeInvalidAmount, "amount %q is not a plain decimal such as \"10.00\"", clip(s))
	}
	if len(s) > AmountChars {
		intPart, frac, _ := strings.Cut(s, ".")
		if len(intPart) > AmountChars || frac == "" {
			return decimal.Decimal{}, reject(CodeAmountRange, "amount has %d digits before the point; an amount is at most %d characters (and at most %s)", len(intPart), AmountChars, lim.AmountMax)
		}
		return decimal.Decimal{}, reject(CodeTooManyDecimals, "amount has %d decimals and %d characters; an amount is at most %d characters, with at most %d decimals for %s", len(frac), len(s), AmountChars, cur.Exponent, cur.Code)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, reject(CodeInvalidAmount, "amount %q is not a decimal", clip(s))
	}
	if !cur.Fits(d) {
		return decimal.Decimal{}, reject(CodeTooManyDecimals, "amount %s has more than %d decimals allowed for %s", clip(s), cur.Exponent, cur.Code)
	}
	if intDigits(s) >= limitDigits(lim.AmountMax) && d.GreaterThan(lim.AmountMax) { // fewer integer digits: below the limit, without big.Int work
		return decimal.Decimal{}, reject(CodeAmountRange, "amount %s exceeds the limit %s", clip(s), lim.AmountMax)
	}
	return d, nil
}

// intDigits is the number of digits of a plain decimal's integer part,
// without leading zeros ("0.5" has none, "012.3" two).
func intDigits(s string) int {
	n := 0
	for i := 0; i < len(s) && s[i] != '.'; i++ {
		if n > 0 || s[i] != '0' {
			n++
		}
	}
	return n
}

// limitDigits is the number of digits of max's integer part (max > 0): any
// amount with fewer integer digits is below 10^(limitDigits-1) <= max.
func limitDigits(max decimal.Decimal) int {
	return max.NumDigits() + int(max.Exponent())
}

// plainDecimal reports whether s is digits with at most one inner point.
func plainDecimal(s string) bool {
	if s == "" {
		return false
	}
	dot, digits := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

func checkID(name, v string, max int) *Error {
	if v == "" || len(v) > max || !printable(v) {
		return reject(CodeInvalidID, "%s must be 1-%d printable characters", name, max)
	}
	return nil
}

func printable(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return true // printable ASCII: what unicode.IsPrint says for these bytes
	}
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func jsonKind(raw []byte) string {
	switch c := raw[0]; {
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == 't' || c == 'f':
		return "boolean"
	}
	return "value"
}

// clip keeps echoed input short in reasons.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
