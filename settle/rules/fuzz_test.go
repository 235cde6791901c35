package rules

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/tally-mesh/tally/txn"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts
// round-trips through Canonical/ParseCanonical and splits without panicking.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/example.hcl", "testdata/vectors/allocation.hcl", "testdata/vectors/waterfall-jpy.hcl"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(matchSrc))
	f.Add([]byte(head + opShare + "}"))
	f.Add([]byte(`ruleset "x" { effective = "2026-01-01T00:00:00Z" rounding = "down" allocation = "top_down" }`))
	f.Add([]byte(`ruleset "${provider}" {`))
	f.Add([]byte(strings.Replace(head+opShare+"}", `"100"`, `1e9`, 1)))
	f.Fuzz(func(t *testing.T, src []byte) {
		b, err := Parse(src, "fuzz.hcl")
		if err != nil {
			return
		}
		for _, v := range b.Versions() {
			back, err := ParseCanonical(v.Canonical())
			if err != nil {
				t.Fatalf("ParseCanonical(Canonical()) of accepted source: %v\n%s", err, v.Canonical())
			}
			if !bytes.Equal(back.Canonical(), v.Canonical()) {
				t.Fatalf("canonical round trip changed bytes")
			}
			for _, typ := range []txn.Type{txn.Bet, txn.Win} {
				x := tx(t, typ, "123.45", "EUR", "2030-01-01T00:00:00Z")
				x.Affiliate = "aff"
				_, _ = v.Split("p", x) // errors are fine; panics are not
			}
		}
	})
}

// FuzzParseCanonical checks that ParseCanonical never panics and that what it
// accepts re-encodes to the same bytes.
func FuzzParseCanonical(f *testing.F) {
	b, err := ParseFile("testdata/example.hcl")
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range b.Versions() {
		f.Add(v.Canonical())
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := ParseCanonical(in)
		if err != nil {
			return
		}
		if !bytes.Equal(v.Canonical(), in) {
			t.Fatalf("accepted non-canonical input")
		}
	})
}
