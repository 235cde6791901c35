package adapter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

// minorUnits is the dialect of aggregators that send integer amounts in the
// currency's minor unit, their own field names, upper-case kinds and
// epoch-millisecond times:
//
//	{"tx_id":"a-1","kind":"BET","amount_minor":1050,"currency_code":"EUR",
//	 "ts_ms":1793527200000,"round_id":"R1","game_id":"book-of-x"}
//
// is the canonical {"id":"a-1","type":"bet","amount":"10.50","currency":"EUR",
// "occurred_at":"2026-11-01T10:00:00Z","round":"R1","game":"book-of-x"}.
// amount_minor is a JSON integer (or a string of digits, for providers whose
// JSON library cannot carry 64-bit integers); the currency's ISO 4217
// exponent places the point, never a guess. Unknown fields are refused.
type minorUnits struct{}

func init() { register(minorUnits{}) }

func (minorUnits) Name() string { return "minor_units" }

func (minorUnits) Split(body []byte, contentType string, max int) ([][]byte, bool, *txn.Error) {
	return SplitJSON(body, contentType, max)
}

// minorTx is the dialect's shape; numbers stay raw so floats and exponents can be refused.
type minorTx struct {
	TxID         *string
	Kind         *string
	AmountMinor  json.RawMessage
	CurrencyCode *string
	TsMs         json.RawMessage
	RoundID      string
	RefTxID      string
	SeqNo        json.RawMessage
	GameID       string
	GameCategory string
	Jurisdiction string
	Brand        string
	AffiliateID  string
	PlayerRef    string
	Extra        map[string]string
}

// fill reads the members of a strict JSON object (txn.Object) into m. A
// JSON null is an absent field.
func (m *minorTx) fill(ms []txn.Member) *txn.Error {
	for _, mb := range ms {
		switch mb.Name {
		case "amount_minor":
			m.AmountMinor = json.RawMessage(mb.Value)
			continue
		case "ts_ms":
			m.TsMs = json.RawMessage(mb.Value)
			continue
		case "seq_no":
			m.SeqNo = json.RawMessage(mb.Value)
			continue
		case "extra":
			if mb.Value.Kind() == 'n' {
				continue
			}
			es, e := txn.ObjectMembers("extra", mb.Value)
			if e != nil {
				return e
			}
			m.Extra = make(map[string]string, len(es))
			for _, kv := range es {
				v, ok, e := txn.String("extra."+clip(kv.Name), kv.Value)
				if e != nil {
					return e
				}
				if !ok {
					return reject(txn.CodeInvalidField, "extra.%s must be a JSON string, not null", clip(kv.Name))
				}
				m.Extra[kv.Name] = v
			}
			continue
		}
		var dst *string
		var req **string
		switch mb.Name {
		case "tx_id":
			req = &m.TxID
		case "kind":
			req = &m.Kind
		case "currency_code":
			req = &m.CurrencyCode
		case "round_id":
			dst = &m.RoundID
		case "ref_tx_id":
			dst = &m.RefTxID
		case "game_id":
			dst = &m.GameID
		case "game_category":
			dst = &m.GameCategory
		case "jurisdiction":
			dst = &m.Jurisdiction
		case "brand":
			dst = &m.Brand
		case "affiliate_id":
			dst = &m.AffiliateID
		case "player_ref":
			dst = &m.PlayerRef
		default:
			return reject(txn.CodeUnknownField, "unknown field %q", clip(mb.Name))
		}
		v, ok, e := txn.String(mb.Name, mb.Value)
		if e != nil {
			return e
		}
		switch {
		case req != nil && ok:
			*req = &v
		case req != nil:
			*req = nil
		case ok:
			*dst = v
		}
	}
	return nil
}

// minorKinds maps the dialect's kinds to canonical types.
var minorKinds = map[string]txn.Type{
	"BET": txn.Bet, "WIN": txn.Win, "ROLLBACK": txn.Rollback, "CANCEL": txn.Rollback, "REFUND": txn.Refund,
	"PURCHASE": txn.Purchase, "ADJUSTMENT": txn.Adjustment, "FEE": txn.Fee, "BONUS_COST": txn.BonusCost,
	"JACKPOT_CONTRIBUTION": txn.JackpotContribution, "JACKPOT_WIN": txn.JackpotWin, "TAX": txn.Tax,
	"DEPOSIT": txn.Deposit,
}

func (d minorUnits) Decode(p []byte, lim txn.Limits) (txn.Tx, *txn.Error) {
	tx, e := d.decode(p, lim)
	if e != nil && e.ID == "" {
		if id, ok := txn.PeekString(bytes.TrimPrefix(bytes.TrimLeft(p, " \t\r\n"), []byte("\ufeff")), "tx_id"); ok {
			e.WithID(id, lim)
		}
	}
	return tx, e
}

func (minorUnits) decode(p []byte, lim txn.Limits) (txn.Tx, *txn.Error) {
	lim = withPayloadDefault(lim)
	if len(p) > lim.PayloadBytes {
		return txn.Tx{}, reject(txn.CodePayloadTooLarge, "payload is %d bytes, limit is %d", len(p), lim.PayloadBytes)
	}
	members, e := txn.Object(p) // strict: UTF-8, no duplicate fields, no BOM
	if e != nil {
		return txn.Tx{}, e
	}
	var m minorTx
	if e := m.fill(members); e != nil {
		return txn.Tx{}, e
	}
	for _, f := range []struct {
		name    string
		missing bool
	}{{"tx_id", m.TxID == nil}, {"kind", m.Kind == nil}, {"amount_minor", isNull(m.AmountMinor)}, {"currency_code", m.CurrencyCode == nil}, {"ts_ms", isNull(m.TsMs)}} {
		if f.missing {
			return txn.Tx{}, reject(txn.CodeMissingField, "%s is required", f.name)
		}
	}
	typ, ok := minorKinds[asciiUpper(*m.Kind)]
	if !ok {
		return txn.Tx{}, reject(txn.CodeInvalidType, "kind %q is not one of BET, WIN, ROLLBACK, CANCEL, REFUND, PURCHASE, ADJUSTMENT, FEE, BONUS_COST, JACKPOT_CONTRIBUTION, JACKPOT_WIN", clip(*m.Kind))
	}
	cur, ok := money.Lookup(*m.CurrencyCode)
	if !ok {
		return txn.Tx{}, reject(txn.CodeUnknownCurrency, "currency_code %q is not a known ISO 4217 code", clip(*m.CurrencyCode))
	}
	minor, e := integer("amount_minor", m.AmountMinor, true)
	if e != nil {
		if e.Code == txn.CodeInvalidField {
			e.Code = txn.CodeInvalidAmount
		}
		return txn.Tx{}, e
	}
	amt, err := decimal.NewFromString(minor)
	if err != nil { // integer() returned digits only: cannot happen
		return txn.Tx{}, reject(txn.CodeInvalidAmount, "amount_minor %q is not an integer", clip(minor))
	}
	ms, e := integer("ts_ms", m.TsMs, false)
	if e != nil {
		e.Code = txn.CodeInvalidTime
		return txn.Tx{}, e
	}
	at, e := epochMs(ms)
	if e != nil {
		return txn.Tx{}, e
	}
	c := canonicalMap{
		"id": *m.TxID, "type": string(typ), "amount": cur.Format(amt.Shift(-cur.Exponent)), "currency": cur.Code,
		"occurred_at": at,
	}
	c.opt("round", m.RoundID).opt("parent", m.RefTxID).opt("game", m.GameID).opt("category", m.GameCategory).
		opt("jurisdiction", m.Jurisdiction).opt("brand", m.Brand).opt("affiliate", m.AffiliateID).opt("player", m.PlayerRef)
	if !isNull(m.SeqNo) {
		s, e := integer("seq_no", m.SeqNo, false)
		if e != nil {
			return txn.Tx{}, e
		}
		c["seq"] = json.RawMessage(s)
	}
	if len(m.Extra) > 0 {
		c["meta"] = m.Extra
	}
	return c.decode(lim)
}

// asciiUpper upper-cases ASCII letters only: Unicode case mapping would
// make "wın" (dotless i) a WIN.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// integer returns the digits of a non-negative JSON integer (or, when
// strOK, a JSON string of digits). Fractions, exponents, signs and
// leading zeros are refused: an amount has exactly one spelling.
func integer(name string, raw json.RawMessage, strOK bool) (string, *txn.Error) {
	s := string(bytes.TrimSpace(raw))
	if strOK && strings.HasPrefix(s, `"`) {
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "", reject(txn.CodeInvalidField, "%s is not a valid JSON string", name)
		}
		s = v
	} else if strings.HasPrefix(s, `"`) {
		return "", reject(txn.CodeInvalidField, "%s must be a JSON integer, not a string", name)
	}
	if strings.HasPrefix(s, "-") {
		code := txn.CodeInvalidField
		if name == "amount_minor" {
			code = txn.CodeNegativeAmount
		}
		return "", reject(code, "%s %s is negative", name, clip(s))
	}
	if s == "" || len(s) > 30 {
		return "", reject(txn.CodeInvalidField, "%s must be a non-negative integer of at most 30 digits", name)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", reject(txn.CodeInvalidField, "%s %s must be a non-negative integer (no fraction, exponent or sign)", name, clip(s))
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return "", reject(txn.CodeInvalidField, "%s %s has a leading zero", name, clip(s))
	}
	return s, nil
}

// epochMs renders milliseconds since 1970 as RFC 3339 in UTC.
func epochMs(digits string) (string, *txn.Error) {
	// Year 9999 ends at 253402300799999 ms: 15 digits.
	if len(digits) > 15 {
		return "", reject(txn.CodeInvalidTime, "ts_ms %s is after the year 9999", clip(digits))
	}
	var ms int64
	for i := 0; i < len(digits); i++ {
		ms = ms*10 + int64(digits[i]-'0')
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano), nil
}

func isNull(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) == 0 || string(s) == "null"
}

// canonicalMap is a canonical transaction being assembled by a dialect.
type canonicalMap map[string]any

func (c canonicalMap) opt(k, v string) canonicalMap {
	if v != "" {
		c[k] = v
	}
	return c
}

// decode renders c as canonical JSON and validates it with txn.Decode, so a
// dialect can never accept what the canonical form refuses. The rendered
// form may be longer than the dialect's payload: the payload limit was
// checked on the payload, so it is lifted here.
func (c canonicalMap) decode(lim txn.Limits) (txn.Tx, *txn.Error) {
	b, err := json.Marshal(c)
	if err != nil {
		return txn.Tx{}, reject(txn.CodeInvalidField, "a field holds text that is not valid UTF-8")
	}
	lim.PayloadBytes = max(lim.PayloadBytes, len(b))
	return txn.Decode(b, lim)
}

func withPayloadDefault(l txn.Limits) txn.Limits {
	if l.PayloadBytes <= 0 {
		l.PayloadBytes = txn.DefaultLimits().PayloadBytes
	}
	return l
}

func reject(code txn.Code, format string, args ...any) *txn.Error {
	return &txn.Error{Code: code, Reason: fmt.Sprintf(format, args...)}
}
