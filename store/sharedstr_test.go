package store

import (
	"strings"
	"testing"
	"unsafe"
)

// within reports whether s's bytes lie inside the buffer of b.
func within(s string, b string) bool {
	if len(s) == 0 || len(b) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(b)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(b))
}

// TestUnmarshalEntryStringsShareOneCopy: a small entry's strings are
// substrings of one copy of its bytes (one allocation), never of the
// caller's buffer (which may be a whole segment and may be reused); an entry
// over sharedStringMax copies each string, so a string kept from it pins
// only itself. Both decode to the same entry and re-encode byte for byte.
func TestUnmarshalEntryStringsShareOneCopy(t *testing.T) {
	small := sampleEntry(t)
	large := sampleEntry(t)
	large.Tx.Meta["pad"] = strings.Repeat("x", sharedStringMax)
	for _, c := range []struct {
		name   string
		e      Entry
		shared bool
	}{{"small", small, true}, {"large", large, false}} {
		b, err := c.e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		buf := string(b) // stands for the caller's buffer
		got, err := UnmarshalEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		if !equalEntry(got, c.e) {
			t.Fatalf("%s: decoded %+v, want %+v", c.name, got, c.e)
		}
		again, err := got.MarshalBinary()
		if err != nil || string(again) != buf {
			t.Fatalf("%s: re-encoding differs (%v)", c.name, err)
		}
		strs := []string{got.EdgeNode, got.Tx.ID, got.Rule, got.Shares[1].Party, got.Tx.Meta["campaign"]}
		for _, s := range strs {
			if within(s, unsafe.String(&b[0], len(b))) {
				t.Fatalf("%s: %q points into the caller's buffer", c.name, s)
			}
		}
		// One copy of b: every string sits at its own offset in b from the
		// first one. Separate copies cannot all land at those offsets.
		base, baseOff := unsafe.StringData(strs[0]), strings.Index(buf, strs[0])
		sharedAll := true
		for _, s := range strs[1:] {
			want := strings.Index(buf, s) - baseOff
			if int(uintptr(unsafe.Pointer(unsafe.StringData(s)))-uintptr(unsafe.Pointer(base))) != want {
				sharedAll = false
			}
		}
		if sharedAll != c.shared {
			t.Fatalf("%s: strings share one copy = %v, want %v", c.name, sharedAll, c.shared)
		}
	}
}
