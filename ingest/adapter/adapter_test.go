package adapter

import (
	"strings"
	"testing"

	"github.com/tally-mesh/tally/txn"
)

const canonGood = `{"id":"a-1","type":"bet","amount":"10.50","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z","round":"R1","game":"book-of-x"}`

func mustGet(t testing.TB, name string) Adapter {
	t.Helper()
	a, ok := Lookup(name)
	if !ok {
		t.Fatalf("dialect %q not registered (have %v)", name, Names())
	}
	return a
}

func TestRegistry(t *testing.T) {
	if got := strings.Join(Names(), ","); got != "canonical,csv,minor_units" {
		t.Errorf("Names() = %s", got)
	}
	if _, ok := Lookup(Default); !ok {
		t.Errorf("default dialect %q not registered", Default)
	}
}

func TestSplitJSON(t *testing.T) {
	obj := `{"id":"a"}`
	tests := []struct {
		name  string
		ctype string
		in    string
		max   int
		n     int
		batch bool
		code  txn.Code
	}{
		{"single", "", obj, 3, 1, false, ""},
		{"single json type", "application/json; charset=utf-8", obj, 3, 1, false, ""},
		{"single with spaces", "", "  " + obj, 3, 1, false, ""},
		{"garbage is one item", "", "xyz", 3, 1, false, ""},
		{"empty body is one item", "", "", 3, 1, false, ""},
		{"batch", "", "[" + obj + "," + obj + "]", 3, 2, true, ""},
		{"batch at max", "", "[1,2,3]", 3, 3, true, ""},
		{"batch over max", "", "[1,2,3,4]", 3, 0, true, txn.CodeBatchTooLarge},
		{"empty batch", "", "[]", 3, 0, true, txn.CodeMalformed},
		{"unterminated", "", "[1,2", 3, 0, true, txn.CodeMalformed},
		{"trailing", "", "[1] [2]", 3, 0, true, txn.CodeMalformed},
		{"bad byte between elements", "", "[{},\xff{}]", 3, 0, true, txn.CodeInvalidUTF8},
		{"bad byte inside an element is the element's", "", "[{\"id\":\"\xff\"},{}]", 3, 2, true, ""},
		{"ndjson", "application/x-ndjson", obj + "\n\n" + obj + "\r\n" + obj, 3, 3, true, ""},
		{"ndjson no final newline", "application/x-ndjson", obj, 3, 1, true, ""},
		{"ndjson over max", "application/x-ndjson", "1\n2\n3\n4\n", 3, 0, true, txn.CodeBatchTooLarge},
		{"ndjson blank", "application/x-ndjson", "\n \n", 3, 0, true, txn.CodeMalformed},
		{"other media", "text/plain", obj, 3, 0, false, txn.CodeUnsupportedMedia},
	}
	for _, tc := range tests {
		items, batch, rej := SplitJSON([]byte(tc.in), tc.ctype, tc.max)
		var code txn.Code
		if rej != nil {
			code = rej.Code
		}
		if len(items) != tc.n || batch != tc.batch || code != tc.code {
			t.Errorf("%s: SplitJSON(%q, %q) = %d items, batch %v, %v; want %d, %v, %q", tc.name, tc.in, tc.ctype, len(items), batch, rej, tc.n, tc.batch, tc.code)
		}
	}
}

// TestDialectsAgree: the same transaction in every dialect decodes to the
// same canonical form, hence the same hash (the dedup key's payload check).
func TestDialectsAgree(t *testing.T) {
	want, e := txn.Decode([]byte(canonGood), txn.Limits{})
	if e != nil {
		t.Fatal(e)
	}
	for _, tc := range []struct{ dialect, in string }{
		{"canonical", canonGood},
		{"minor_units", `{"tx_id":"a-1","kind":"BET","amount_minor":1050,"currency_code":"EUR","ts_ms":1793527200000,"round_id":"R1","game_id":"book-of-x"}`},
		{"minor_units", `{"tx_id":"a-1","kind":"bet","amount_minor":"1050","currency_code":"EUR","ts_ms":1793527200000,"round_id":"R1","game_id":"book-of-x"}`},
		{"csv", "id,type,amount,currency,occurred_at,round,game\na-1,bet,10.50,EUR,2026-11-01T10:00:00Z,R1,book-of-x\n"},
		{"csv", "game,occurred_at,currency,amount,type,id,round,player\r\nbook-of-x,2026-11-01T11:00:00+01:00,EUR,10.5,bet,a-1,R1,\r\n"},
	} {
		a := mustGet(t, tc.dialect)
		items, _, rej := a.Split([]byte(tc.in), "", 10)
		if rej != nil || len(items) != 1 {
			t.Errorf("%s: Split(%q) = %d items, %v", tc.dialect, tc.in, len(items), rej)
			continue
		}
		got, e := a.Decode(items[0], txn.Limits{})
		if e != nil {
			t.Errorf("%s: Decode(%q) = %v", tc.dialect, items[0], e)
			continue
		}
		if got.Hash() != want.Hash() {
			t.Errorf("%s: Decode(%q) =\n%s\nwant\n%s", tc.dialect, tc.in, got.Canonical(), want.Canonical())
		}
	}
}

func TestMinorUnits(t *testing.T) {
	a := mustGet(t, "minor_units")
	base := func(amount, extra string) string {
		return `{"tx_id":"m-1","kind":"WIN","amount_minor":` + amount + `,"currency_code":"JPY","ts_ms":0` + extra + `}`
	}
	tests := []struct {
		name   string
		in     string
		amount string // canonical amount when accepted
		code   txn.Code
	}{
		{"JPY has no decimals", base("1050", ""), "1050", ""},
		{"zero", base("0", ""), "0", ""},
		{"KWD three decimals", `{"tx_id":"k","kind":"BET","amount_minor":1234,"currency_code":"KWD","ts_ms":1}`, "1.234", ""},
		{"parent and seq", `{"tx_id":"r","kind":"CANCEL","amount_minor":5,"currency_code":"EUR","ts_ms":1,"ref_tx_id":"p","seq_no":7}`, "0.05", ""},
		{"float refused", base("10.5", ""), "", txn.CodeInvalidAmount},
		{"exponent refused", base("1e3", ""), "", txn.CodeInvalidAmount},
		{"negative", base("-5", ""), "", txn.CodeNegativeAmount},
		{"leading zero", base(`"05"`, ""), "", txn.CodeInvalidAmount},
		{"leading zero raw is not JSON", base("05", ""), "", txn.CodeMalformed},
		{"string of digits", base(`"77"`, ""), "77", ""},
		{"string not digits", base(`"7.7"`, ""), "", txn.CodeInvalidAmount},
		{"huge", base("1"+strings.Repeat("0", 29), ""), "", txn.CodeAmountRange},
		{"unknown field", base("1", `,"amount":"1"`), "", txn.CodeUnknownField},
		{"missing ts", `{"tx_id":"m","kind":"BET","amount_minor":1,"currency_code":"EUR"}`, "", txn.CodeMissingField},
		{"ts not integer", base("1", "")[:len(base("1", ""))-len(`"ts_ms":0}`)] + `"ts_ms":1.5}`, "", txn.CodeInvalidTime},
		{"ts negative", `{"tx_id":"m","kind":"BET","amount_minor":1,"currency_code":"EUR","ts_ms":-1}`, "", txn.CodeInvalidTime},
		{"ts past 9999", `{"tx_id":"m","kind":"BET","amount_minor":1,"currency_code":"EUR","ts_ms":9999999999999999}`, "", txn.CodeInvalidTime},
		{"ts as string", `{"tx_id":"m","kind":"BET","amount_minor":1,"currency_code":"EUR","ts_ms":"1"}`, "", txn.CodeInvalidTime},
		{"bad kind", `{"tx_id":"m","kind":"SPIN","amount_minor":1,"currency_code":"EUR","ts_ms":1}`, "", txn.CodeInvalidType},
		{"bad currency", `{"tx_id":"m","kind":"BET","amount_minor":1,"currency_code":"XXX","ts_ms":1}`, "", txn.CodeUnknownCurrency},
		{"rollback needs parent", `{"tx_id":"m","kind":"ROLLBACK","amount_minor":1,"currency_code":"EUR","ts_ms":1}`, "", txn.CodeMissingParent},
		{"not json", `{"tx_id":`, "", txn.CodeMalformed},
		{"trailing", base("1", "") + "{}", "", txn.CodeMalformed},
	}
	for _, tc := range tests {
		tx, e := a.Decode([]byte(tc.in), txn.Limits{})
		var code txn.Code
		if e != nil {
			code = e.Code
		}
		if code != tc.code {
			t.Errorf("%s: Decode(%s) = %v, want code %q", tc.name, tc.in, e, tc.code)
			continue
		}
		if e == nil && tx.Currency.Format(tx.Amount) != tc.amount {
			t.Errorf("%s: amount = %s, want %s", tc.name, tx.Currency.Format(tx.Amount), tc.amount)
		}
	}
	tx, _ := a.Decode([]byte(`{"tx_id":"t","kind":"BET","amount_minor":1,"currency_code":"EUR","ts_ms":1793527200123}`), txn.Limits{})
	if got := tx.OccurredAt.Format("2006-01-02T15:04:05.000Z07:00"); got != "2026-11-01T10:00:00.123Z" {
		t.Errorf("ts_ms 1793527200123 = %s, want 2026-11-01T10:00:00.123Z", got)
	}
}

func TestCSV(t *testing.T) {
	a := mustGet(t, "csv")
	hdr := "id,type,amount,currency,occurred_at,parent,seq,meta.campaign\n"
	tests := []struct {
		name  string
		ctype string
		in    string
		codes []txn.Code // per row; nil row code = accepted
		whole txn.Code   // whole-request rejection
	}{
		{"two rows", "text/csv", hdr + "c1,bet,1.00,EUR,2026-11-01T10:00:00Z,,,nov\nc2,rollback,1.00,EUR,2026-11-01T10:00:00Z,c1,2,\n", []txn.Code{"", ""}, ""},
		{"bom and crlf", "", "\ufeff" + strings.ReplaceAll(hdr, "\n", "\r\n") + "c1,bet,1.00,EUR,2026-11-01T10:00:00Z,,,\r\n", []txn.Code{""}, ""},
		{"row errors are per row", "", hdr + "c1,bet,1.001,EUR,2026-11-01T10:00:00Z,,,\nc2,bet,1.00,EUR,2026-11-01T10:00:00Z,,,\nc3,bet,1\nc4,bet,,EUR,2026-11-01T10:00:00Z,,,\nc5,bet,1,EUR,2026-11-01T10:00:00Z,,x,\n",
			[]txn.Code{txn.CodeTooManyDecimals, "", txn.CodeMalformed, txn.CodeMissingField, txn.CodeInvalidField}, ""},
		{"quoted cells", "", "id,type,amount,currency,occurred_at,game\n\"c,1\",bet,\"2.50\",EUR,2026-11-01T10:00:00Z,\"say \"\"hi\"\"\"\n", []txn.Code{""}, ""},
		{"blank lines skipped", "", hdr + "\nc1,bet,1.00,EUR,2026-11-01T10:00:00Z,,,\n\n", []txn.Code{""}, ""},
		{"unknown column", "", "id,type,amount,currency,occurred_at,colour\nc1,bet,1,EUR,2026-11-01T10:00:00Z,red\n", nil, txn.CodeUnknownField},
		{"missing column", "", "id,type,amount,currency\nc1,bet,1,EUR\n", nil, txn.CodeMissingField},
		{"duplicate column", "", "id,id,type,amount,currency,occurred_at\n", nil, txn.CodeDuplicateField},
		{"header only", "", hdr, nil, txn.CodeMalformed},
		{"empty", "", "", nil, txn.CodeMalformed},
		{"bare quote", "", hdr + "c\"1,bet\n", nil, txn.CodeMalformed},
		{"json to csv dialect", "application/json", canonGood, nil, txn.CodeUnsupportedMedia},
		{"over max", "", hdr + strings.Repeat("c,bet,1,EUR,2026-11-01T10:00:00Z,,,\n", 6), nil, txn.CodeBatchTooLarge},
	}
	for _, tc := range tests {
		items, batch, rej := a.Split([]byte(tc.in), tc.ctype, 5)
		if tc.whole != "" {
			if rej == nil || rej.Code != tc.whole {
				t.Errorf("%s: Split = %d items, %v; want %q", tc.name, len(items), rej, tc.whole)
			}
			continue
		}
		if rej != nil || !batch || len(items) != len(tc.codes) {
			t.Errorf("%s: Split = %d items, batch %v, %v; want %d rows", tc.name, len(items), batch, rej, len(tc.codes))
			continue
		}
		for i, it := range items {
			_, e := a.Decode(it, txn.Limits{})
			var code txn.Code
			if e != nil {
				code = e.Code
			}
			if code != tc.codes[i] {
				t.Errorf("%s: row %d %q = %v, want %q", tc.name, i, it, e, tc.codes[i])
			}
		}
	}
}
