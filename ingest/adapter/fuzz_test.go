package adapter

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/tally-mesh/tally/txn"
)

// fuzzDialect checks what every dialect promises: Split and Decode never
// panic; a whole-request rejection has a code and a reason; Split never
// returns more than max items; every item gets a definite answer; anything
// accepted has a canonical form that txn.Decode accepts with the same hash.
func fuzzDialect(t *testing.T, name string, body []byte, ctype string) {
	a := mustGet(t, name)
	const max = 8
	items, _, rej := a.Split(body, ctype, max)
	if rej != nil {
		if rej.Code == "" || rej.Reason == "" || items != nil {
			t.Fatalf("bad rejection %+v with %d items", rej, len(items))
		}
		noLeak(t, body, rej)
		return
	}
	if len(items) == 0 || len(items) > max {
		t.Fatalf("Split returned %d items (max %d)", len(items), max)
	}
	for _, it := range items {
		tx, e := a.Decode(it, txn.Limits{})
		if e != nil {
			if e.Code == "" || e.Reason == "" {
				t.Fatalf("rejection without code or reason: %+v", e)
			}
			noLeak(t, body, e)
			continue
		}
		// Nothing accepted held a byte that is not UTF-8, and JSON dialects
		// accept only I-JSON (no lone surrogate, no name twice).
		if !utf8.Valid(it) {
			t.Fatalf("accepted %q, which is not UTF-8", it)
		}
		if name != "csv" && !jsontext.Value(it).IsValid() {
			t.Fatalf("accepted %q, which is not strict JSON", it)
		}
		again, e2 := txn.Decode(tx.Canonical(), txn.Limits{})
		if e2 != nil {
			t.Fatalf("canonical form of accepted %q rejected: %v\n%s", it, e2, tx.Canonical())
		}
		if again.Hash() != tx.Hash() {
			t.Fatalf("canonical form not stable:\n%s\n%s", tx.Canonical(), again.Canonical())
		}
		if tx.Amount.IsNegative() || !tx.Currency.Fits(tx.Amount) {
			t.Fatalf("accepted bad amount %s %s", tx.Amount, tx.Currency.Code)
		}
	}
}

// noLeak fails when a reason names Go or a parser (and the input did not).
func noLeak(t *testing.T, body []byte, e *txn.Error) {
	for _, l := range []string{"Go value", "Go struct", "txn.", "json:", "jsontext", "csv:", "rawTx", "minorTx", "unmarshal", "reflect"} {
		if strings.Contains(e.Reason, l) && !bytes.Contains(body, []byte(l)) {
			t.Fatalf("reason %q names %q", e.Reason, l)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add([]byte(canonGood), "")
	f.Add([]byte("["+canonGood+","+canonGood+"]"), "application/json")
	f.Add([]byte(canonGood+"\n"+canonGood+"\n"), "application/x-ndjson")
	f.Add([]byte(`[1,"x",null]`), "")
	f.Fuzz(func(t *testing.T, body []byte, ctype string) { fuzzDialect(t, "canonical", body, ctype) })
}

func FuzzMinorUnits(f *testing.F) {
	f.Add([]byte(`{"tx_id":"a-1","kind":"BET","amount_minor":1050,"currency_code":"EUR","ts_ms":1793527200000,"round_id":"R1"}`), "")
	f.Add([]byte(`[{"tx_id":"r","kind":"CANCEL","amount_minor":"5","currency_code":"KWD","ts_ms":1,"ref_tx_id":"p","seq_no":7,"extra":{"k":"v"}}]`), "")
	f.Add([]byte(`{"tx_id":"a","kind":"WIN","amount_minor":1e3,"currency_code":"JPY","ts_ms":-1}`), "application/x-ndjson")
	f.Fuzz(func(t *testing.T, body []byte, ctype string) { fuzzDialect(t, "minor_units", body, ctype) })
}

func FuzzCSV(f *testing.F) {
	f.Add([]byte("id,type,amount,currency,occurred_at,round,game\na-1,bet,10.50,EUR,2026-11-01T10:00:00Z,R1,book-of-x\n"), "text/csv")
	f.Add([]byte("id,type,amount,currency,occurred_at,parent,seq,meta.c\r\nr,refund,1,JPY,2026-11-01T10:00:00+09:00,p,3,x\r\n"), "")
	f.Add([]byte("id,type,amount,currency,occurred_at\n\"a\"\"b\",bet,1,EUR,x\nshort\n"), "")
	f.Fuzz(func(t *testing.T, body []byte, ctype string) { fuzzDialect(t, "csv", body, ctype) })
}
