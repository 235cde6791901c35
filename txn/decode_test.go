package txn

import (
	"bytes"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

const good = `{"id":"p-1001","type":"bet","amount":"10.00","currency":"EUR","occurred_at":"2026-11-01T11:00:00+01:00","round":"R1","game":"book-of-x","category":"slot","meta":{"campaign":"nov"}}`

func TestDecodeGood(t *testing.T) {
	tx, e := Decode([]byte(good), Limits{})
	if e != nil {
		t.Fatalf("Decode(good) = %v", e)
	}
	if tx.ID != "p-1001" || tx.Type != Bet || tx.Amount.String() != "10" || tx.Currency.Code != "EUR" {
		t.Errorf("Decode(good) = %+v", tx)
	}
	if got := tx.OccurredAt.Format("2006-01-02T15:04:05Z07:00"); got != "2026-11-01T10:00:00Z" {
		t.Errorf("occurred_at = %s, want UTC 10:00", got)
	}
	want := `{"id":"p-1001","type":"bet","amount":"10.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z","round":"R1","game":"book-of-x","category":"slot","meta":{"campaign":"nov"}}`
	if got := string(tx.Canonical()); got != want {
		t.Errorf("Canonical() =\n%s\nwant\n%s", got, want)
	}
}

func TestCanonicalIsStable(t *testing.T) {
	// Same meaning, different spelling: key order, whitespace, "10.0" vs "10.00", offset.
	a, e1 := Decode([]byte(`{"type":"bet","id":"x","amount":"10.0","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`), Limits{})
	b, e2 := Decode([]byte(` { "id" : "x", "currency":"EUR", "amount":"10.00", "type":"bet", "occurred_at":"2026-11-01T12:00:00+02:00" } `), Limits{})
	if e1 != nil || e2 != nil {
		t.Fatal(e1, e2)
	}
	if a.Hash() != b.Hash() {
		t.Errorf("hashes differ:\n%s\n%s", a.Canonical(), b.Canonical())
	}
	c, _ := Decode([]byte(`{"type":"bet","id":"x","amount":"10.01","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`), Limits{})
	if a.Hash() == c.Hash() {
		t.Error("different amounts hash the same")
	}
	// Canonical output decodes to the same canonical output.
	d, e := Decode(a.Canonical(), Limits{})
	if e != nil || string(d.Canonical()) != string(a.Canonical()) {
		t.Errorf("canonical round trip: %v %s", e, d.Canonical())
	}
}

func TestDecodeRejects(t *testing.T) {
	base := func(repl ...string) string { return strings.NewReplacer(repl...).Replace(good) }
	tests := []struct {
		name string
		in   string
		lim  Limits
		want Code
	}{
		{"malformed", `{"id":`, Limits{}, CodeMalformed},
		{"not an object", `[1,2]`, Limits{}, CodeMalformed},
		{"trailing data", good + `{}`, Limits{}, CodeMalformed},
		{"json number amount", base(`"amount":"10.00"`, `"amount":10.00`), Limits{}, CodeAmountNotString},
		{"unknown currency", base(`"EUR"`, `"XYZ"`), Limits{}, CodeUnknownCurrency},
		{"too many decimals", base(`"10.00"`, `"10.001"`), Limits{}, CodeTooManyDecimals},
		{"jpy decimals", base(`"10.00","currency":"EUR"`, `"10.5","currency":"JPY"`), Limits{}, CodeTooManyDecimals},
		{"negative", base(`"10.00"`, `"-10.00"`), Limits{}, CodeNegativeAmount},
		{"exponent", base(`"10.00"`, `"1e3"`), Limits{}, CodeInvalidAmount},
		{"empty amount", base(`"10.00"`, `""`), Limits{}, CodeInvalidAmount},
		{"leading dot", base(`"10.00"`, `".5"`), Limits{}, CodeInvalidAmount},
		{"amount too big", base(`"10.00"`, `"10000000000000"`), Limits{}, CodeAmountRange},
		{"missing id", base(`"id":"p-1001",`, ``), Limits{}, CodeMissingField},
		{"missing type", base(`"type":"bet",`, ``), Limits{}, CodeMissingField},
		{"missing currency", base(`"currency":"EUR",`, ``), Limits{}, CodeMissingField},
		{"missing occurred_at", base(`"occurred_at":"2026-11-01T11:00:00+01:00",`, ``), Limits{}, CodeMissingField},
		{"missing amount", base(`"amount":"10.00",`, ``), Limits{}, CodeMissingField},
		{"null amount", base(`"10.00"`, `null`), Limits{}, CodeMissingField},
		{"null body", `null`, Limits{}, CodeMalformed},
		{"double minus", base(`"10.00"`, `"--1"`), Limits{}, CodeInvalidAmount},
		{"duplicate amount", base(`"amount":"10.00"`, `"amount":"1.00","amount":"900.00"`), Limits{}, CodeDuplicateField},
		{"invalid utf-8 id", base(`"p-1001"`, "\"p-\xff\""), Limits{}, CodeInvalidUTF8},
		{"bom", "\ufeff" + good, Limits{}, CodeBOM},
		{"empty id", base(`"p-1001"`, `""`), Limits{}, CodeInvalidID},
		{"long id", base(`"p-1001"`, `"`+strings.Repeat("x", 129)+`"`), Limits{}, CodeInvalidID},
		{"control char id", base(`"p-1001"`, `"a\u0001b"`), Limits{}, CodeInvalidID},
		{"bad type", base(`"bet"`, `"gift"`), Limits{}, CodeInvalidType},
		{"time without offset", base(`2026-11-01T11:00:00+01:00`, `2026-11-01T11:00:00`), Limits{}, CodeInvalidTime},
		{"rollback without parent", base(`"bet"`, `"rollback"`), Limits{}, CodeMissingParent},
		{"unknown field", base(`"round":"R1"`, `"rnd":"R1"`), Limits{}, CodeUnknownField},
		{"oversize", good, Limits{PayloadBytes: 50}, CodePayloadTooLarge},
		{"meta too many keys", base(`{"campaign":"nov"}`, `{"a":"1","b":"2"}`), Limits{MetaKeys: 1}, CodeMetaTooLarge},
		{"seq not a number", base(`"round":"R1"`, `"seq":"7"`), Limits{}, CodeInvalidField},
		{"long game", base(`"book-of-x"`, `"`+strings.Repeat("g", 200)+`"`), Limits{}, CodeInvalidField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, e := Decode([]byte(tc.in), tc.lim)
			if e == nil {
				t.Fatalf("Decode(%s) accepted, want %s", tc.in, tc.want)
			}
			if e.Code != tc.want {
				t.Errorf("Decode(%s) = %s (%s), want %s", tc.in, e.Code, e.Reason, tc.want)
			}
			if e.Reason == "" {
				t.Error("empty reason")
			}
		})
	}
}

func TestSigns(t *testing.T) {
	for _, tc := range []struct {
		typ  Type
		sign int
	}{{Bet, 1}, {Win, -1}, {Rollback, 0}, {Refund, 0}, {Fee, -1}, {JackpotContribution, 1}} {
		if got := tc.typ.Sign(); got != tc.sign {
			t.Errorf("%s.Sign() = %d, want %d", tc.typ, got, tc.sign)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"id":"r","type":"rollback","parent":"p","amount":"1","currency":"JPY","occurred_at":"2026-11-01T10:00:00Z"}`))
	f.Add([]byte(`{"amount":1e400}`))
	f.Add([]byte(`{"id":"x","amount":"99999999999999999999999999999999.9999"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, e := Decode(b, Limits{})
		if e != nil {
			if e.Code == "" || e.Reason == "" {
				t.Fatalf("rejection without code or reason: %+v", e)
			}
			checkNoLeak(t, b, e)
			return
		}
		// Anything accepted is I-JSON: UTF-8, no lone surrogate, no name twice.
		if !jsontext.Value(b).IsValid() || bytes.HasPrefix(b, []byte(bom)) {
			t.Fatalf("accepted %q, which is not strict JSON", b)
		}
		// Anything accepted must render canonically and decode to the same thing.
		again, e2 := Decode(tx.Canonical(), Limits{})
		if e2 != nil {
			t.Fatalf("canonical form of accepted input rejected: %v\n%s", e2, tx.Canonical())
		}
		if again.Hash() != tx.Hash() {
			t.Fatalf("canonical form not stable:\n%s\n%s", tx.Canonical(), again.Canonical())
		}
		if tx.Amount.IsNegative() || !tx.Currency.Fits(tx.Amount) {
			t.Fatalf("accepted bad amount %s %s", tx.Amount, tx.Currency.Code)
		}
	})
}
