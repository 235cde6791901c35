package txn

import (
	"bytes"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
)

// sameDecode fails unless Decode (fast path when it applies) and decodeJSON
// (encoding/json only) give the same transaction or the same rejection.
func sameDecode(t *testing.T, b []byte) {
	t.Helper()
	lim := DefaultLimits()
	if len(b) > lim.PayloadBytes {
		return
	}
	sameDecodeLimits(t, b, lim)
	lim.Operator = true // the settle engine's reading: operator types admitted
	sameDecodeLimits(t, b, lim)
}

func sameDecodeLimits(t *testing.T, b []byte, lim Limits) {
	t.Helper()
	fast, fe := Decode(b, lim)
	slow, se := decodeJSON(b, lim)
	switch {
	case (fe == nil) != (se == nil):
		t.Fatalf("Decode(%q) = %v, encoding/json path = %v", b, fe, se)
	case fe != nil:
		if fe.Code != se.Code || fe.Reason != se.Reason {
			t.Fatalf("Decode(%q) rejects %s %q, encoding/json path %s %q", b, fe.Code, fe.Reason, se.Code, se.Reason)
		}
	default:
		if !bytes.Equal(fast.canonicalReflect(), slow.canonicalReflect()) || !fast.Amount.Equal(slow.Amount) || !fast.OccurredAt.Equal(slow.OccurredAt) {
			t.Fatalf("Decode(%q) = %s, encoding/json path %s", b, fast.canonicalReflect(), slow.canonicalReflect())
		}
	}
}

func TestFastDecodeMatchesJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		fast bool // whether scanFast takes it
	}{
		{"canonical", good, true},
		{"every field", `{"id":"p-1","type":"rollback","amount":"1.5","currency":"EUR","occurred_at":"2026-11-01T10:00:00.5+01:00","round":"R","parent":"p-0","seq":42,"game":"g","category":"c","jurisdiction":"MT","brand":"b","affiliate":"a","player":"pl","meta":{"b":"2","a":"1"}}`, true},
		{"whitespace", " \n{ \"id\" : \"x\" ,\t\"type\":\"bet\",\"amount\":\"1\",\"currency\":\"JPY\",\"occurred_at\":\"2026-11-01T10:00:00Z\" }\r\n", true},
		{"empty meta", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","meta":{}}`, true},
		{"seq zero", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","seq":0}`, true},
		{"missing amount", `{"id":"x","type":"bet","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z"}`, true},
		{"bad currency", `{"id":"x","type":"bet","amount":"1","currency":"ZZZ","occurred_at":"2026-11-01T10:00:00Z"}`, true},
		{"escaped id", `{"id":"a\u0041","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z"}`, false},
		{"non-ascii", `{"id":"é","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z"}`, true},
		{"non-ascii meta", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","meta":{"städt":"Zürich 😀"}}`, true},
		{"invalid utf-8 id", "{\"id\":\"\xff\",\"type\":\"bet\",\"amount\":\"1\",\"currency\":\"JPY\",\"occurred_at\":\"2026-11-01T10:00:00Z\"}", false},
		{"invalid utf-8 meta value", "{\"id\":\"x\",\"type\":\"bet\",\"amount\":\"1\",\"currency\":\"JPY\",\"occurred_at\":\"2026-11-01T10:00:00Z\",\"meta\":{\"k\":\"\xc3\"}}", false},
		{"surrogate bytes", "{\"id\":\"\xed\xa0\x80\",\"type\":\"bet\",\"amount\":\"1\",\"currency\":\"JPY\",\"occurred_at\":\"2026-11-01T10:00:00Z\"}", false},
		{"DEL in id", "{\"id\":\"a\x7f\",\"type\":\"bet\",\"amount\":\"1\",\"currency\":\"JPY\",\"occurred_at\":\"2026-11-01T10:00:00Z\"}", false},
		{"non-ascii key", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","rößnd":"1"}`, false},
		{"upper-case key", `{"ID":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z"}`, false},
		{"repeated key", `{"id":"x","id":"y","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z"}`, false},
		{"repeated meta key", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","meta":{"a":"1","a":"2"}}`, false},
		{"unknown key", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","x":"1"}`, false},
		{"number amount", `{"id":"x","type":"bet","amount":1,"currency":"JPY","occurred_at":"2026-11-01T10:00:00Z"}`, false},
		{"null round", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","round":null}`, false},
		{"negative seq", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","seq":-1}`, false},
		{"fraction seq", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","seq":1.5}`, false},
		{"leading zero seq", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","seq":01}`, false},
		{"huge seq", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","seq":18446744073709551616}`, false},
		{"trailing data", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z"}x`, false},
		{"two objects", `{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z"}{}`, false},
		{"array", `[1]`, false},
		{"empty object", `{}`, false},
		{"unterminated", `{"id":"x"`, false},
		{"tab in string", "{\"id\":\"a\tb\",\"type\":\"bet\",\"amount\":\"1\",\"currency\":\"JPY\",\"occurred_at\":\"2026-11-01T10:00:00Z\"}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r rawTx
			if got := scanFast([]byte(tc.in), &r); got != tc.fast {
				t.Errorf("scanFast(%s) = %v, want %v", tc.in, got, tc.fast)
			}
			sameDecode(t, []byte(tc.in))
		})
	}
}

func TestCanonicalMatchesJSON(t *testing.T) {
	eur, _ := money.Lookup("EUR")
	base := Tx{ID: "p-1", Type: Bet, Amount: decimal.RequireFromString("10.5"), Currency: eur,
		OccurredAt: time.Date(2026, 11, 1, 10, 0, 0, 120000000, time.UTC)}
	for _, tc := range []struct {
		name string
		edit func(*Tx)
	}{
		{"minimal", func(*Tx) {}},
		{"every field", func(x *Tx) {
			x.Round, x.Parent, x.Seq, x.Game, x.Category, x.Jurisdiction, x.Brand, x.Affiliate, x.Player = "R", "p-0", 7, "g", "c", "MT", "b", "a", "pl"
			x.Meta = map[string]string{"z": "1", "a": "2", "m": ""}
		}},
		{"html characters", func(x *Tx) { x.Game = "<b>&</b>"; x.Meta = map[string]string{"<": ">"} }},
		{"quotes and controls", func(x *Tx) { x.ID = "a\"b\\c\n\t\x01"; x.Brand = "\x7f" }},
		{"unicode", func(x *Tx) { x.Player = "ünï\u2028\u2029😀"; x.Round = "\xff\xfe" }},
		{"offset time", func(x *Tx) { x.OccurredAt = time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := base
			tc.edit(&x)
			if got, want := x.Canonical(), x.canonicalReflect(); !bytes.Equal(got, want) {
				t.Errorf("Canonical() = %s, want %s", got, want)
			}
		})
	}
}

// FuzzFastDecode checks that the fast path never changes Decode's answer.
func FuzzFastDecode(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"id":"p-1","type":"rollback","amount":"1.5","currency":"EUR","occurred_at":"2026-11-01T10:00:00.5+01:00","parent":"p-0","seq":42,"meta":{"b":"2","a":"1"}}`))
	f.Add([]byte(`{"id":"x","type":"bet","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","seq":01}`))
	f.Add([]byte(`{"id":"x","type":"bet","amount":"1.","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z","meta":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) { sameDecode(t, b) })
}

// FuzzFastCanonical checks appendCanonical against json.Marshal of wireTx.
func FuzzFastCanonical(f *testing.F) {
	f.Add("p-1", "g", "R", "k", "v", uint64(0), int64(1050), int64(0))
	f.Add("<&>", "\u2028", "\xff", "", "\"", uint64(7), int64(-3), int64(1<<40))
	f.Fuzz(func(t *testing.T, id, game, round, mk, mv string, seq uint64, minor, nanos int64) {
		eur, _ := money.Lookup("EUR")
		x := Tx{ID: id, Type: Win, Amount: eur.FromMinor(minor), Currency: eur, OccurredAt: time.Unix(0, nanos).UTC(),
			Game: game, Round: round, Seq: seq, Meta: map[string]string{mk: mv}}
		if got, want := x.Canonical(), x.canonicalReflect(); !bytes.Equal(got, want) {
			t.Fatalf("Canonical() = %s, want %s", got, want)
		}
	})
}

// FuzzAppendAmount checks the allocation-free amount formatting against
// Currency.Format (StringFixed) for any coefficient, exponent and places.
func FuzzAppendAmount(f *testing.F) {
	f.Add(int64(1250), int32(-2), uint8(2))
	f.Add(int64(0), int32(7), uint8(3))
	f.Add(int64(5), int32(-4), uint8(2))
	f.Add(int64(-1), int32(0), uint8(0))
	f.Add(int64(999999999999999999), int32(1), uint8(0))
	f.Fuzz(func(t *testing.T, coef int64, exp int32, places uint8) {
		if exp > 40 || exp < -40 {
			return // StringFixed of 10^±2^31 is slow, not interesting
		}
		d := decimal.New(coef, exp)
		want := appendJSONString(nil, d.StringFixed(int32(places%20)))
		if got := appendAmount(nil, d, int32(places%20)); !bytes.Equal(got, want) {
			t.Fatalf("appendAmount(%s, %d) = %s, want %s", d, places%20, got, want)
		}
	})
}
