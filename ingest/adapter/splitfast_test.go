package adapter

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// sameSplit checks that splitElements (fast path first) gives exactly what
// the encoding/json path gives: the same items, byte for byte, or the same
// rejection; and that the fast path never takes what the strict one refuses.
func sameSplit(t *testing.T, body []byte, max int) {
	t.Helper()
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return
	}
	want, wantRej := splitStrict(trimmed, max)
	fast, ok := splitFast(trimmed, max)
	if ok && wantRej != nil {
		t.Fatalf("fast path took %q, strict path rejects it: %+v", body, wantRej)
	}
	got, gotRej := splitElements(trimmed, max)
	if (gotRej == nil) != (wantRej == nil) || gotRej != nil && *gotRej != *wantRej {
		t.Fatalf("%q: rejection %+v, want %+v", body, gotRej, wantRej)
	}
	if ok {
		got = fast
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d items, want %d", body, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%q: item %d = %q, want %q", body, i, got[i], want[i])
		}
	}
}

var splitCases = []string{
	`[` + canonGood + `]`,
	` [ ` + canonGood + ` , ` + canonGood + "\n]\r\n",
	`[1,-0,0.5,-1.5e+10,2E-3,true,false,null,"",{},[],{"a":[1,{"b":null}]}]`,
	`["\"\\\/\b\f\n\r\t\u00e9\uD800", "\xff\xfe", "é"]`,
	`[]`, `[ ]`, `[,]`, `[1,]`, `[1 2]`, `[1}`, `[{]`, `[01]`, `[1.]`, `[.5]`, `[1e]`, `[-]`, `[+1]`,
	`[tru]`, `[truex]`, `[nul]`, `[1] x`, `[1]]`, `[1][2]`, `["a]`, `["\x01"]`, `["\q"]`, `["\u12G4"]`,
	`[{"a" 1}]`, `[{"a":1,}]`, `[{1:2}]`, `[{"a":1 "b":2}]`, "[1]\x00", `[` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `]`,
	`[1,2,3,4,5,6,7,8]`, `[1,2,3,4,5,6,7,8,9]`, `[1,2,3,4,5,6,7,8,9,x]`, `["a,b",[1,2],{"c":","}]`,
}

func TestSplitFast(t *testing.T) {
	for _, c := range splitCases {
		sameSplit(t, []byte(c), 8)
	}
	// The common case takes the fast path.
	if _, ok := splitFast([]byte(`[`+canonGood+`,`+canonGood+`]`), 8); !ok {
		t.Fatal("a plain batch did not take the fast path")
	}
}

// FuzzSplitFast checks that the fast array splitter never changes the
// answer of the encoding/json one: same items byte for byte, same rejection.
func FuzzSplitFast(f *testing.F) {
	for _, c := range splitCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) { sameSplit(t, body, 8) })
}

func BenchmarkSplitJSON(b *testing.B) {
	for _, n := range []int{1, 100} {
		var sb strings.Builder
		sb.WriteByte('[')
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"id":"bench-%06d","type":"bet","amount":"10.50","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z","round":"r-%d","game":"book-of-x","player":"p-42"}`, i, i)
		}
		sb.WriteByte(']')
		body := []byte(sb.String())
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				items, _, rej := SplitJSON(body, "", 1000)
				if rej != nil || len(items) != n {
					b.Fatal(rej, len(items))
				}
			}
		})
	}
}
