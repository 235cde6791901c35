package txn

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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
}

// DefaultLimits are the limits used when a config leaves them unset.
func DefaultLimits() Limits {
	return Limits{
		PayloadBytes: 16 << 10,
		IDLen:        128,
		FieldLen:     128,
		MetaKeys:     16,
		MetaBytes:    1024,
		AmountMax:    decimal.New(1, 12),
	}
}

// defaultAmountMax is DefaultLimits().AmountMax, built once: withDefaults
// runs for every transaction.
var defaultAmountMax = DefaultLimits().AmountMax

func (l Limits) withDefaults() Limits {
	if l.PayloadBytes > 0 && l.IDLen > 0 && l.FieldLen > 0 && l.MetaKeys > 0 && l.MetaBytes > 0 && l.AmountMax.IsPositive() {
		return l
	}
	d := DefaultLimits()
	d.AmountMax = defaultAmountMax
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
	ID           *string           `json:"id"`
	Type         *string           `json:"type"`
	Amount       json.RawMessage   `json:"amount"`
	Currency     *string           `json:"currency"`
	OccurredAt   *string           `json:"occurred_at"`
	Round        string            `json:"round"`
	Parent       string            `json:"parent"`
	Seq          uint64            `json:"seq"`
	Game         string            `json:"game"`
	Category     string            `json:"category"`
	Jurisdiction string            `json:"jurisdiction"`
	Brand        string            `json:"brand"`
	Affiliate    string            `json:"affiliate"`
	Player       string            `json:"player"`
	Meta         map[string]string `json:"meta"`
}

// Decode parses and validates one canonical JSON transaction. It never panics;
// every input yields either a Tx or an *Error with a stable code.
func Decode(b []byte, lim Limits) (Tx, *Error) {
	lim = lim.withDefaults()
	if len(b) > lim.PayloadBytes {
		return Tx{}, reject(CodePayloadTooLarge, "payload is %d bytes, limit is %d", len(b), lim.PayloadBytes)
	}
	var r rawTx
	var f rawFields
	if scanFast(b, &r, &f) {
		return r.validate(lim)
	}
	return decodeJSON(b, lim)
}

// decodeJSON is Decode through encoding/json: every input scanFast does not
// take, with the definite rejection for each kind of bad input.
func decodeJSON(b []byte, lim Limits) (Tx, *Error) {
	var r rawTx
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return Tx{}, reject(CodeUnknownField, "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Tx{}, reject(CodeInvalidField, "field %q must be a %s, got %s", te.Field, te.Type, te.Value)
		}
		return Tx{}, reject(CodeMalformed, "not a JSON object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Tx{}, reject(CodeMalformed, "trailing data after the JSON object")
	}
	return r.validate(lim)
}

func (r *rawTx) validate(lim Limits) (Tx, *Error) {
	for _, f := range []struct {
		name string
		v    bool
	}{{"id", r.ID == nil}, {"type", r.Type == nil}, {"amount", len(r.Amount) == 0 || string(r.Amount) == "null"}, {"currency", r.Currency == nil}, {"occurred_at", r.OccurredAt == nil}} {
		if f.v {
			return Tx{}, reject(CodeMissingField, "%s is required", f.name)
		}
	}
	if e := checkID("id", *r.ID, lim.IDLen); e != nil {
		return Tx{}, e
	}
	t := Tx{ID: *r.ID, Type: Type(*r.Type), Seq: r.Seq}
	if !t.Type.Valid() {
		return Tx{}, reject(CodeInvalidType, "type %q is not one of bet, win, rollback, refund, purchase, adjustment, fee, bonus_cost, jackpot_contribution, jackpot_win", clip(*r.Type))
	}
	cur, ok := money.Lookup(*r.Currency)
	if !ok {
		return Tx{}, reject(CodeUnknownCurrency, "currency %q is not a known ISO 4217 code", clip(*r.Currency))
	}
	t.Currency = cur
	if r.Amount[0] != '"' {
		return Tx{}, reject(CodeAmountNotString, "amount must be a decimal string such as \"10.00\", not a JSON %s", jsonKind(r.Amount))
	}
	var s string
	if inner := r.Amount[1:]; len(inner) > 0 && inner[len(inner)-1] == '"' && simpleASCII(inner[:len(inner)-1]) {
		s = string(inner[:len(inner)-1]) // no escapes: the literal is its content
	} else {
		var u string
		if err := json.Unmarshal(r.Amount, &u); err != nil {
			return Tx{}, reject(CodeInvalidAmount, "amount is not a valid JSON string")
		}
		s = u
	}
	amt, e := parseAmount(s, cur, lim)
	if e != nil {
		return Tx{}, e
	}
	t.Amount = amt
	ts, err := time.Parse(time.RFC3339Nano, *r.OccurredAt)
	if err != nil {
		return Tx{}, reject(CodeInvalidTime, "occurred_at %q is not RFC 3339 with an offset (e.g. 2026-11-01T10:00:00Z)", clip(*r.OccurredAt))
	}
	if y := ts.UTC().Year(); y < 1970 || y > 9999 {
		return Tx{}, reject(CodeInvalidTime, "occurred_at %q is outside the years 1970-9999", clip(*r.OccurredAt))
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
			if k == "" || !printable(k) || !utf8.ValidString(v) {
				return Tx{}, reject(CodeInvalidField, "meta keys must be non-empty printable text and values valid UTF-8")
			}
		}
		if n > lim.MetaBytes {
			return Tx{}, reject(CodeMetaTooLarge, "meta holds %d bytes, limit is %d", n, lim.MetaBytes)
		}
		t.Meta = r.Meta
	}
	return t, nil
}

// parseAmount accepts only plain decimals: digits, one optional point, no sign
// other than a rejected minus, no exponent, no spaces.
func parseAmount(s string, cur money.Currency, lim Limits) (decimal.Decimal, *Error) {
	if strings.HasPrefix(s, "-") {
		return decimal.Decimal{}, reject(CodeNegativeAmount, "amount %q is negative: amounts are >= 0 and the type gives the sign", clip(s))
	}
	if !plainDecimal(s) {
		return decimal.Decimal{}, reject(CodeInvalidAmount, "amount %q is not a plain decimal such as \"10.00\"", clip(s))
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, reject(CodeInvalidAmount, "amount %q is not a decimal", clip(s))
	}
	if !cur.Fits(d) {
		return decimal.Decimal{}, reject(CodeTooManyDecimals, "amount %s has more than %d decimals allowed for %s", clip(s), cur.Exponent, cur.Code)
	}
	if d.GreaterThan(lim.AmountMax) {
		return decimal.Decimal{}, reject(CodeAmountRange, "amount %s exceeds the limit %s", clip(s), lim.AmountMax)
	}
	return d, nil
}

func plainDecimal(s string) bool {
	if s == "" || len(s) > 40 {
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

func jsonKind(raw json.RawMessage) string {
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
