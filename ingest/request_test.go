package ingest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tally-mesh/tally/txn"
)

var jsonUnmarshal = json.Unmarshal

func TestSplitRequest(t *testing.T) {
	obj := `{"id":"a"}`
	tests := []struct {
		name  string
		in    string
		max   int
		n     int
		batch bool
		code  txn.Code
	}{
		{"single", obj, 3, 1, false, ""},
		{"single with spaces", "  " + obj, 3, 1, false, ""},
		{"garbage is one item", "xyz", 3, 1, false, ""},
		{"empty body is one item", "", 3, 1, false, ""},
		{"batch", "[" + obj + "," + obj + "]", 3, 2, true, ""},
		{"batch spaces", " \n[ " + obj + " , 1 ,\"s\" ] \n", 3, 3, true, ""},
		{"batch at max", "[1,2,3]", 3, 3, true, ""},
		{"batch over max", "[1,2,3,4]", 3, 0, true, txn.CodeBatchTooLarge},
		{"empty batch", "[]", 3, 0, true, txn.CodeMalformed},
		{"unterminated", "[1,2", 3, 0, true, txn.CodeMalformed},
		{"trailing", "[1] [2]", 3, 0, true, txn.CodeMalformed},
		{"bad element", "[1,{]", 3, 0, true, txn.CodeMalformed},
	}
	for _, tc := range tests {
		items, batch, rej := splitRequest([]byte(tc.in), tc.max)
		var code txn.Code
		if rej != nil {
			code = rej.Code
		}
		if len(items) != tc.n || batch != tc.batch || code != tc.code {
			t.Errorf("%s: splitRequest(%q) = %d items, batch %v, %v; want %d, %v, %q", tc.name, tc.in, len(items), batch, rej, tc.n, tc.batch, tc.code)
		}
	}
}

// FuzzDecodeRequest checks the request splitter: it never panics, never
// returns more than the batch limit, and a batch's items are exactly the
// array's elements (compacted, they rebuild the compacted body).
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"id":"a","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`))
	f.Add([]byte(`[{"id":"a"},{"id":"b"}]`))
	f.Add([]byte(` [1, "x", null, [2]] `))
	f.Add([]byte(`[`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[1,2,3,4,5]`))
	const max = 4
	f.Fuzz(func(t *testing.T, body []byte) {
		items, batch, rej := splitRequest(body, max)
		if rej != nil {
			if !batch || items != nil || rej.Code == "" || rej.Reason == "" {
				t.Fatalf("bad rejection %v batch %v items %d", rej, batch, len(items))
			}
			return
		}
		if !batch {
			if len(items) != 1 || !bytes.Equal(items[0], body) {
				t.Fatalf("single request not passed whole")
			}
			return
		}
		if len(items) == 0 || len(items) > max {
			t.Fatalf("batch of %d items (max %d)", len(items), max)
		}
		var want, got bytes.Buffer
		if err := json.Compact(&want, body); err != nil {
			t.Fatalf("accepted batch is not valid JSON: %v", err)
		}
		got.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				got.WriteByte(',')
			}
			if err := json.Compact(&got, it); err != nil {
				t.Fatalf("item %d is not valid JSON: %v", i, err)
			}
		}
		got.WriteByte(']')
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("items do not rebuild the batch:\n%s\n%s", got.Bytes(), want.Bytes())
		}
	})
}
