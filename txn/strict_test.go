package txn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// payloadWithID is a valid transaction whose id literal is exactly lit
// (between the quotes, as sent).
func payloadWithID(lit string) []byte {
	return []byte(`{"id":"` + lit + `","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`)
}

// TestStrictInput covers issue 16 items 4 and 5 and the clearer answers:
// each input, its code, and whether the rejection echoes the id.
func TestStrictInput(t *testing.T) {
	base := func(repl ...string) string { return strings.NewReplacer(repl...).Replace(good) }
	tests := []struct {
		name   string
		in     string
		want   Code
		echo   string // id the rejection must carry ("" = none)
		reason string // substring the reason must hold
	}{
		// invalid UTF-8, in every place
		{"bad byte in id", string(payloadWithID("a\xff")), CodeInvalidUTF8, "", "offset 8"},
		{"truncated sequence in id", string(payloadWithID("a\xc3")), CodeInvalidUTF8, "", "0xc3"},
		{"overlong slash in id", string(payloadWithID("a\xc0\xaf")), CodeInvalidUTF8, "", ""},
		{"utf-16 surrogate bytes in id", string(payloadWithID("a\xed\xa0\x80")), CodeInvalidUTF8, "", ""},
		{"bad byte in meta value", base(`"nov"`, "\"n\xffv\""), CodeInvalidUTF8, "p-1001", ""},
		{"bad byte in meta key", base(`"campaign"`, "\"c\xfe\""), CodeInvalidUTF8, "p-1001", ""},
		{"bad byte in a key", base(`"round"`, "\"r\x80und\""), CodeInvalidUTF8, "p-1001", ""},
		{"bad byte outside strings", base(`,"round"`, ",\xff\"round\""), CodeInvalidUTF8, "", ""}, // the object does not parse: no id
		{"bad byte in amount", base(`"10.00"`, "\"10.0\xff\""), CodeInvalidUTF8, "p-1001", ""},
		{"lone high surrogate", string(payloadWithID(`a\ud800`)), CodeInvalidUTF8, "", "surrogate"},
		{"lone low surrogate", string(payloadWithID(`a\udc00`)), CodeInvalidUTF8, "", "surrogate"},
		{"reversed pair", string(payloadWithID(`\udc00\ud800`)), CodeInvalidUTF8, "", "surrogate"},
		{"lone surrogate in meta", base(`"nov"`, `"\ud800"`), CodeInvalidUTF8, "p-1001", "meta.campaign"},
		// escapes, NUL, controls, spaces: never repaired
		{"escaped NUL id", string(payloadWithID(`a\u0000`)), CodeInvalidID, "", ""},
		{"raw control char id", string(payloadWithID("a\x01")), CodeMalformed, "", ""},
		{"BOM inside id", string(payloadWithID("a\ufeff")), CodeInvalidID, "", ""},
		{"no-break space id", string(payloadWithID("a\u00a0")), CodeInvalidID, "", ""},
		// duplicate fields, at every level
		{"duplicate amount", base(`"amount":"10.00"`, `"amount":"1.00","amount":"900.00"`), CodeDuplicateField, "p-1001", "amount"},
		{"duplicate id", base(`"id":"p-1001"`, `"id":"p-1001","id":"p-1002"`), CodeDuplicateField, "", "id"},
		{"duplicate via escape", base(`"round":"R1"`, `"round":"R1","\u0072ound":"R2"`), CodeDuplicateField, "p-1001", "round"},
		{"duplicate meta key", base(`{"campaign":"nov"}`, `{"k":"1","k":"2"}`), CodeDuplicateField, "p-1001", "meta.k"},
		{"duplicate meta key by escape", base(`{"campaign":"nov"}`, `{"k":"1","\u006b":"2"}`), CodeDuplicateField, "p-1001", "meta.k"},
		{"duplicate deeper", base(`{"campaign":"nov"}`, `{"k":{"x":1,"x":2}}`), CodeDuplicateField, "p-1001", "meta.k.x"},
		// clearer answers
		{"double minus", base(`"10.00"`, `"--1"`), CodeInvalidAmount, "p-1001", ""},
		{"minus only", base(`"10.00"`, `"-"`), CodeInvalidAmount, "p-1001", ""},
		{"minus exponent", base(`"10.00"`, `"-1e3"`), CodeInvalidAmount, "p-1001", ""},
		{"long decimals", base(`"10.00"`, `"1.`+strings.Repeat("0", 400)+`"`), CodeTooManyDecimals, "p-1001", "at most 40 characters"},
		{"long integer", base(`"10.00"`, `"1`+strings.Repeat("0", 400)+`"`), CodeAmountRange, "p-1001", "at most 40 characters"},
		{"null body", `null`, CodeMalformed, "", "null"},
		{"array body", `[]`, CodeMalformed, "", "array"},
		{"string body", `"x"`, CodeMalformed, "", "string"},
		{"empty body", ``, CodeMalformed, "", "empty"},
		{"nested meta names the key", base(`{"campaign":"nov"}`, `{"k":{"x":"y"}}`), CodeInvalidField, "p-1001", "meta.k"},
		{"meta number names the key", base(`{"campaign":"nov"}`, `{"k":1}`), CodeInvalidField, "p-1001", "meta.k"},
		{"BOM", "\ufeff" + good, CodeBOM, "p-1001", "byte-order mark"},
		{"BOM after space", " \ufeff" + good, CodeBOM, "p-1001", "byte-order mark"},
		{"string for object", base(`{"campaign":"nov"}`, `"x"`), CodeInvalidField, "p-1001", "meta"},
		{"number id", base(`"p-1001"`, `7`), CodeInvalidField, "", "id"},
		{"upper-case key", base(`"round"`, `"ROUND"`), CodeUnknownField, "p-1001", "ROUND"},
		{"id echoed on later error", base(`"EUR"`, `"XYZ"`), CodeUnknownCurrency, "p-1001", ""},
		{"invalid id not echoed", base(`"p-1001"`, `""`), CodeInvalidID, "", ""},
		{"trailing data", good + ` x`, CodeMalformed, "p-1001", "trailing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, e := Decode([]byte(tc.in), Limits{})
			if e == nil {
				t.Fatalf("Decode(%q) accepted, want %s", tc.in, tc.want)
			}
			if e.Code != tc.want || e.ID != tc.echo || !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("Decode(%q) = %s id %q (%s), want %s id %q reason with %q", clip(tc.in), e.Code, e.ID, e.Reason, tc.want, tc.echo, tc.reason)
			}
			sameDecode(t, []byte(tc.in))
		})
	}
}

// TestEscapedIDIsTheDecodedID: an id is its decoded string. "a" and
// "\u0061" are the same id with the same canonical form (a duplicate, not a
// conflict), and so is a surrogate pair and the character it encodes.
func TestEscapedIDIsTheDecodedID(t *testing.T) {
	for _, pair := range [][2]string{{"a", `\u0061`}, {"a/b", `a\/b`}, {"😀", `\ud83d\ude00`}, {"é", `\u00e9`}} {
		x, e1 := Decode(payloadWithID(pair[0]), Limits{})
		y, e2 := Decode(payloadWithID(pair[1]), Limits{})
		if e1 != nil || e2 != nil {
			t.Fatalf("%q / %q: %v %v", pair[0], pair[1], e1, e2)
		}
		if x.ID != y.ID || x.Hash() != y.Hash() {
			t.Errorf("%q and %q decode to %q and %q", pair[0], pair[1], x.ID, y.ID)
		}
	}
	// No normalisation: composed and decomposed é are two ids.
	x, _ := Decode(payloadWithID("\u00e9"), Limits{})
	y, _ := Decode(payloadWithID("e\u0301"), Limits{})
	if x.ID == y.ID {
		t.Errorf("NFC and NFD ids collapsed into %q", x.ID)
	}
	// No trimming: " a" and "a" are two ids.
	x, _ = Decode(payloadWithID(" a "), Limits{})
	if x.ID != " a " {
		t.Errorf("id \" a \" decoded to %q", x.ID)
	}
}

// dedupID is what the ingest WAL's dedup key holds after the provider: the
// decoded id (ingest/keys.go: d/<provider>/<id>).
func dedupID(b []byte) (string, bool) {
	tx, e := Decode(b, Limits{})
	if e != nil {
		return "", false
	}
	return tx.ID, true
}

// randomID is a random byte string biased towards the hard cases: invalid
// UTF-8, surrogate bytes, escapes, NUL, controls, non-ASCII, spaces.
func randomID(r *rand.Rand) string {
	atoms := []string{"a", "b", "Z", "0", "-", " ", "é", "e\u0301", "😀", "\xff", "\xc3", "\xed\xa0\x80", "\xef\xbf\xbd",
		`\u0061`, `\ud800`, `\udc00`, `\ud83d\ude00`, `\u0000`, "\x00", "\x01", "\t", `\"`, `\\`, `\/`, "\u00a0", "\ufeff", "\u2028"}
	n := 1 + r.IntN(6)
	var b strings.Builder
	for range n {
		if r.IntN(8) == 0 {
			b.WriteByte(byte(r.IntN(256)))
		} else {
			b.WriteString(atoms[r.IntN(len(atoms))])
		}
	}
	return b.String()
}

// strictUnquote is the reference meaning of a JSON string literal's
// content: RFC 8259 escapes decoded, raw bytes kept, and false for anything
// that is not exactly one valid, non-repaired Unicode string.
func strictUnquote(lit string) (string, bool) {
	if !utf8.ValidString(lit) {
		return "", false
	}
	var out strings.Builder
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		switch {
		case c == '"' || c < 0x20:
			return "", false
		case c != '\\':
			out.WriteByte(c)
			continue
		}
		if i+1 >= len(lit) {
			return "", false
		}
		i++
		switch lit[i] {
		case '"', '\\', '/':
			out.WriteByte(lit[i])
		case 'b':
			out.WriteByte('\b')
		case 'f':
			out.WriteByte('\f')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		case 'u':
			hex := func(at int) (rune, bool) {
				if at+4 > len(lit) {
					return 0, false
				}
				v, err := strconv.ParseUint(lit[at:at+4], 16, 32)
				return rune(v), err == nil
			}
			r1, ok := hex(i + 1)
			if !ok {
				return "", false
			}
			i += 4
			if r1 >= 0xdc00 && r1 <= 0xdfff {
				return "", false
			}
			if r1 >= 0xd800 && r1 <= 0xdbff {
				if i+2 >= len(lit) || lit[i+1] != '\\' || lit[i+2] != 'u' {
					return "", false
				}
				r2, ok := hex(i + 3)
				if !ok || r2 < 0xdc00 || r2 > 0xdfff {
					return "", false
				}
				i += 6
				r1 = 0x10000 + (r1-0xd800)<<10 + (r2 - 0xdc00)
			}
			out.WriteRune(r1)
		default:
			return "", false
		}
	}
	return out.String(), true
}

// checkDistinct is the property for a set of id literals: every accepted
// literal is the id its strict reference meaning says (byte for byte, never
// repaired), and two literals share a dedup key only if they mean the same
// string. Literals the reference rejects must be rejected.
func checkDistinct(t *testing.T, lits []string) {
	t.Helper()
	keys := map[string]string{} // dedup id -> first literal
	for _, lit := range lits {
		id, ok := dedupID(payloadWithID(lit))
		want, valid := strictUnquote(lit)
		if !valid {
			if ok {
				t.Fatalf("id literal %q (not one valid string) was accepted as %q", lit, id)
			}
			continue
		}
		if !ok {
			continue // a valid string may still be refused (control char, too long)
		}
		if id != want {
			t.Fatalf("id literal %q decoded to %q, want %q", lit, id, want)
		}
		if prev, seen := keys[id]; seen {
			if p, _ := strictUnquote(prev); p != want {
				t.Fatalf("literals %q and %q collapse into id %q", prev, lit, id)
			}
		}
		keys[id] = lit
	}
}

// TestDistinctIDsDistinctKeys is the property "distinct ids in, distinct
// keys out" over random byte strings, including invalid UTF-8.
func TestDistinctIDsDistinctKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 4))
	lits := make([]string, 0, 20000)
	for range cap(lits) {
		lits = append(lits, randomID(r))
	}
	checkDistinct(t, lits)
	// The inputs of the report: one first id and its U+FFFD look-alikes.
	checkDistinct(t, []string{"a\ufffd", "a\xff", "a\xfe", "a\xc3", `a\ud800`, `a\udfff`, `a\ufffd`})
}

// FuzzDistinctIDs: two id literals are either rejected or kept apart unless
// they mean the same string.
func FuzzDistinctIDs(f *testing.F) {
	f.Add("a\xff", "a\xfe")
	f.Add(`a\ud800`, "a\ufffd")
	f.Add(`\u0061`, "a")
	f.Add("e\u0301", "\u00e9")
	f.Fuzz(func(t *testing.T, a, b string) { checkDistinct(t, []string{a, b}) })
}

// leaks are words that belong to Go, not to an answer.
var leaks = []string{"Go value", "Go struct", "txn.", "json:", "jsontext", "rawTx", "unmarshal", "reflect", "map[", "*", "struct {"}

func checkNoLeak(t *testing.T, in []byte, e *Error) {
	t.Helper()
	if e == nil {
		return
	}
	for _, l := range leaks {
		if strings.Contains(e.Reason, l) && !bytes.Contains(in, []byte(l)) {
			t.Errorf("Decode(%q) reason %q names %q", clip(string(in)), e.Reason, l)
		}
	}
}

// TestNoGoInAnswers runs Decode over the fuzz corpus and the strict cases
// and fails when a reason names a Go type or a parser's prefix.
func TestNoGoInAnswers(t *testing.T) {
	inputs := [][]byte{[]byte(`{"id":{"a":1}}`), []byte(`{"id":"x","seq":{}}`), []byte(`{"meta":[1]}`), []byte(`{"id":"x","meta":{"k":{}}}`),
		[]byte(`{"id":"x","type":1,"amount":"1","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`), []byte(`[1]`), []byte(`{"a"`)}
	for _, dir := range []string{"testdata/fuzz/FuzzDecode", "testdata/fuzz/FuzzFastDecode",
		"../ingest/adapter/testdata/fuzz/FuzzCanonical", "../ingest/adapter/testdata/fuzz/FuzzMinorUnits"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if in, ok := corpusBytes(b); ok {
				inputs = append(inputs, in)
			}
		}
	}
	if len(inputs) < 20 {
		t.Fatalf("only %d inputs: corpus missing?", len(inputs))
	}
	for _, in := range inputs {
		_, e := Decode(in, Limits{})
		checkNoLeak(t, in, e)
	}
}

// corpusBytes reads the first ([]byte) argument of a fuzz corpus file.
func corpusBytes(b []byte) ([]byte, bool) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		return nil, false
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

// TestRejectionJSON: a rejection's id survives JSON encoding unchanged
// (only valid ids are echoed, so encoding/json never repairs one).
func TestRejectionJSON(t *testing.T) {
	_, e := Decode([]byte(`{"id":"é-1","id2":1}`), Limits{})
	if e == nil || e.ID != "é-1" {
		t.Fatalf("got %+v", e)
	}
	b, _ := json.Marshal(e.ID)
	var back string
	if json.Unmarshal(b, &back) != nil || back != e.ID {
		t.Errorf("id %q does not round-trip: %s", e.ID, b)
	}
	_ = fmt.Sprint(e)
}
