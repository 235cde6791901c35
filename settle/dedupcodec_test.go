package settle

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDedupCodecRoundTrip(t *testing.T) {
	h := make([]byte, 32)
	for i := range h {
		h[i] = byte(i)
	}
	for _, tc := range []struct {
		name string
		rec  dedupRec
	}{
		{"held reversal", dedupRec{Hash: h, Held: true, Partition: 3, Currency: "EUR"}},
		{"settled", dedupRec{Hash: h, Partition: 1, Index: 1 << 40, Currency: "EUR", Net: "-12.50", RuleSet: h,
			Shares: [][2]string{{"studio", "-1.50"}, {"operator", "-11.00"}}}},
		{"partly reversed", dedupRec{Hash: h, Partition: 0, Index: 7, Currency: "JPY", Net: "100", Reversed: "40", RuleSet: h,
			Shares: [][2]string{{"a", "60"}, {"b", "40"}}, Left: [][2]string{{"a", "36"}, {"b", "24"}}}},
		{"left present but empty", dedupRec{Hash: h, Currency: "EUR", Net: "0", Left: [][2]string{}}},
		{"exception marker", dedupRec{Hash: h, Partition: 2, Currency: "KWD", Net: "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := appendDedup(nil, &tc.rec)
			var got dedupRec
			if err := decodeDedup(b, &got); err != nil {
				t.Fatalf("decodeDedup(appendDedup(%+v)) = %v", tc.rec, err)
			}
			if !reflect.DeepEqual(got, tc.rec) {
				t.Errorf("decodeDedup(appendDedup(%+v)) = %+v", tc.rec, got)
			}
			if tc.rec.Left != nil && len(tc.rec.Left) == 0 {
				return // JSON's omitempty loses the empty-but-present Left; binary keeps it
			}
			// Values written as JSON by earlier builds read the same.
			j, err := json.Marshal(&tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			var fromJSON dedupRec
			if err := decodeDedup(j, &fromJSON); err != nil {
				t.Fatalf("decodeDedup(%s) = %v", j, err)
			}
			if !reflect.DeepEqual(appendDedup(nil, &fromJSON), b) {
				t.Errorf("JSON %s decodes to %+v, binary gives %+v", j, fromJSON, got)
			}
		})
	}
}

func TestDedupCodecRejects(t *testing.T) {
	good := appendDedup(nil, &dedupRec{Hash: make([]byte, 32), Currency: "EUR", Net: "1", Shares: [][2]string{{"a", "1"}}})
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown tag", append([]byte{0xD2}, good[1:]...)},
		{"unknown flag", append([]byte{dedupTag, 0x80}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"non-minimal varint", append([]byte{dedupTag, 0, 0, 0, 0, 0, 0x80, 0x00}, good[7:]...)},
		{"hash too long", append(append([]byte{dedupTag, 0, 0, 0, 0, 0, 0}, 65), make([]byte, 65)...)},
		{"not JSON", []byte("{oops")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r dedupRec
			if err := decodeDedup(tc.in, &r); err == nil {
				t.Errorf("decodeDedup(%x) = %+v, want an error", tc.in, r)
			}
		})
	}
}

// FuzzDecodeDedup: the decoder never panics, and whatever it accepts in the
// binary layout re-encodes to the same bytes (one encoding per record).
func FuzzDecodeDedup(f *testing.F) {
	f.Add(appendDedup(nil, &dedupRec{Hash: make([]byte, 32), Partition: 1, Index: 9, Currency: "EUR", Net: "1", Shares: [][2]string{{"a", "1"}}, Left: [][2]string{}}))
	f.Add([]byte(`{"h":"AAAA","p":1,"i":2,"c":"EUR","net":"1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r dedupRec
		if err := decodeDedup(b, &r); err != nil || (len(b) > 0 && b[0] == '{') {
			return
		}
		if again := appendDedup(nil, &r); string(again) != string(b) {
			t.Fatalf("decodeDedup(%x) = %+v, re-encodes to %x", b, r, again)
		}
	})
}
