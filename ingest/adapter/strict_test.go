package adapter

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tally-mesh/tally/txn"
)

const minorGood = `{"tx_id":"m-1","kind":"BET","amount_minor":1050,"currency_code":"EUR","ts_ms":1793527200000,"extra":{"k":"v"}}`

const csvHdr = "id,type,amount,currency,occurred_at,meta.k\n"

// TestStrictEveryDialect: invalid UTF-8, lone surrogates, duplicate fields
// and a BOM get their own codes in every dialect, before anything is
// canonicalised, and rejections echo the id when it parsed.
func TestStrictEveryDialect(t *testing.T) {
	mu := func(repl ...string) string { return strings.NewReplacer(repl...).Replace(minorGood) }
	row := func(cells string) string { return csvHdr + cells + "\n" }
	tests := []struct {
		name, dialect, in string
		want              txn.Code
		echo              string
	}{
		{"canonical bad byte in id", "canonical", strings.Replace(canonGood, `"a-1"`, "\"a-\xff\"", 1), txn.CodeInvalidUTF8, ""},
		{"canonical duplicate amount", "canonical", strings.Replace(canonGood, `"amount":"10.50"`, `"amount":"1.00","amount":"900.00"`, 1), txn.CodeDuplicateField, "a-1"},
		{"canonical BOM", "canonical", "\ufeff" + canonGood, txn.CodeBOM, "a-1"},
		{"minor bad byte in id", "minor_units", mu(`"m-1"`, "\"m-\xff\""), txn.CodeInvalidUTF8, ""},
		{"minor bad byte in extra", "minor_units", mu(`"v"`, "\"\xc3\""), txn.CodeInvalidUTF8, "m-1"},
		{"minor bad byte in a key", "minor_units", mu(`"kind"`, "\"ki\xffnd\""), txn.CodeInvalidUTF8, "m-1"},
		{"minor lone surrogate", "minor_units", mu(`"m-1"`, `"m-\ud800"`), txn.CodeInvalidUTF8, ""},
		{"minor lone surrogate in amount string", "minor_units", mu(`1050`, `"1\udc00"`), txn.CodeInvalidUTF8, "m-1"},
		{"minor duplicate amount", "minor_units", mu(`"amount_minor":1050`, `"amount_minor":100,"amount_minor":90000`), txn.CodeDuplicateField, "m-1"},
		{"minor duplicate extra key", "minor_units", mu(`{"k":"v"}`, `{"k":"v","\u006b":"w"}`), txn.CodeDuplicateField, "m-1"},
		{"minor BOM", "minor_units", "\ufeff" + minorGood, txn.CodeBOM, "m-1"},
		{"minor null body", "minor_units", "null", txn.CodeMalformed, ""},
		{"minor unicode kind", "minor_units", mu(`"BET"`, `"wın"`), txn.CodeInvalidType, "m-1"},
		{"minor nested extra", "minor_units", mu(`{"k":"v"}`, `{"k":{"x":"y"}}`), txn.CodeInvalidField, "m-1"},
		{"minor upper-case key", "minor_units", mu(`"kind"`, `"KIND"`), txn.CodeUnknownField, "m-1"},
		{"csv bad byte in id", "csv", row("c-\xff,bet,1.00,EUR,2026-11-01T10:00:00Z,"), txn.CodeInvalidUTF8, ""},
		{"csv bad byte in meta", "csv", row("c-1,bet,1.00,EUR,2026-11-01T10:00:00Z,\xfe"), txn.CodeInvalidUTF8, "c-1"},
		{"csv bad byte in amount", "csv", row("c-1,bet,1.0\xff,EUR,2026-11-01T10:00:00Z,"), txn.CodeInvalidUTF8, "c-1"},
		{"csv echo on later error", "csv", row("c-1,bet,1.001,EUR,2026-11-01T10:00:00Z,"), txn.CodeTooManyDecimals, "c-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := mustGet(t, tc.dialect)
			items, _, rej := a.Split([]byte(tc.in), "", 10)
			if rej != nil {
				t.Fatalf("Split(%q) = %v", tc.in, rej)
			}
			tx, e := a.Decode(items[0], txn.Limits{})
			if e == nil {
				t.Fatalf("Decode(%q) accepted %s, want %s", items[0], tx.Canonical(), tc.want)
			}
			if e.Code != tc.want || e.ID != tc.echo {
				t.Errorf("Decode(%q) = %s id %q (%s), want %s id %q", items[0], e.Code, e.ID, e.Reason, tc.want, tc.echo)
			}
		})
	}
	// Whole-file CSV rejections.
	for _, tc := range []struct {
		name, in string
		want     txn.Code
	}{
		{"csv bad byte in header", "id,type,amount,currency,occurred_at,meta.\xff\nc,bet,1,EUR,2026-11-01T10:00:00Z,x\n", txn.CodeInvalidUTF8},
		{"csv duplicate column", "id,type,amount,amount,currency,occurred_at\nc,bet,1,900,EUR,2026-11-01T10:00:00Z\n", txn.CodeDuplicateField},
		{"csv duplicate meta column", "id,type,amount,currency,occurred_at,meta.k,meta.k\nc,bet,1,EUR,2026-11-01T10:00:00Z,a,b\n", txn.CodeDuplicateField},
		{"csv BOM not at start", "\n\ufeffid,type,amount,currency,occurred_at\n", txn.CodeUnknownField},
	} {
		_, _, rej := mustGet(t, "csv").Split([]byte(tc.in), "", 10)
		if rej == nil || rej.Code != tc.want {
			t.Errorf("%s: Split = %v, want %s", tc.name, rej, tc.want)
		}
	}
}

// TestDistinctIDsEveryDialect: the bytes the report used (one id and its
// U+FFFD look-alikes) are never two accepted ids that share a key, in any
// dialect: each is rejected or kept as sent.
func TestDistinctIDsEveryDialect(t *testing.T) {
	ids := []string{"a\ufffd", "a\xff", "a\xfe", "a\xc3", "a\xed\xa0\x80", "a\xef\xbf"}
	for _, d := range []string{"canonical", "minor_units", "csv"} {
		a := mustGet(t, d)
		seen := map[string]string{}
		for _, id := range ids {
			var body string
			switch d {
			case "canonical":
				body = strings.Replace(canonGood, `"a-1"`, `"`+id+`"`, 1)
			case "minor_units":
				body = strings.Replace(minorGood, `"m-1"`, `"`+id+`"`, 1)
			case "csv":
				body = csvHdr + id + ",bet,1.00,EUR,2026-11-01T10:00:00Z,\n"
			}
			items, _, rej := a.Split([]byte(body), "", 10)
			if rej != nil {
				continue
			}
			tx, e := a.Decode(items[0], txn.Limits{})
			if e != nil {
				continue
			}
			if tx.ID != id {
				t.Errorf("%s: id %q accepted as %q", d, id, tx.ID)
			}
			if prev, dup := seen[tx.ID]; dup {
				t.Errorf("%s: ids %q and %q share key %q", d, prev, id, tx.ID)
			}
			seen[tx.ID] = id
		}
		if len(seen) != 1 {
			t.Errorf("%s: %d ids accepted, want exactly the valid one", d, len(seen))
		}
	}
}

// TestNoGoInDialectAnswers scans every answer to the dialects' fuzz corpora
// for Go names and parser prefixes.
func TestNoGoInDialectAnswers(t *testing.T) {
	leaks := []string{"Go value", "Go struct", "txn.", "json:", "jsontext", "csv:", "rawTx", "minorTx", "unmarshal", "reflect", "map["}
	n := 0
	for _, d := range []string{"canonical", "minor_units", "csv"} {
		dir := map[string]string{"canonical": "FuzzCanonical", "minor_units": "FuzzMinorUnits", "csv": "FuzzCSV"}[d]
		files, _ := filepath.Glob(filepath.Join("testdata/fuzz", dir, "*"))
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
			if len(lines) < 3 {
				continue
			}
			body, err1 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
			ctype, err2 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[2], "string("), ")"))
			if err1 != nil || err2 != nil {
				continue
			}
			n++
			a := mustGet(t, d)
			var reasons []string
			items, _, rej := a.Split([]byte(body), ctype, 8)
			if rej != nil {
				reasons = append(reasons, rej.Reason)
			}
			for _, it := range items {
				if _, e := a.Decode(it, txn.Limits{}); e != nil {
					reasons = append(reasons, e.Reason)
				}
			}
			for _, r := range reasons {
				for _, l := range leaks {
					if strings.Contains(r, l) && !strings.Contains(body, l) {
						t.Errorf("%s %s: reason %q names %q", d, filepath.Base(f), r, l)
					}
				}
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d corpus files read", n)
	}
}
