package settle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/shopspring/decimal"
)

// testRS is a rule-set table for codec tests: 1 → h(1), 2 → h(2).
func testRS(n uint64) ([]byte, error) {
	if n == 0 || n > 2 {
		return nil, fmt.Errorf("rule set %d is not in the index", n)
	}
	return testHash(byte(n)), nil
}

func testHash(seed byte) []byte {
	h := make([]byte, 32)
	for i := range h {
		h[i] = seed + byte(i)
	}
	return h
}

func TestDedupCodecRoundTrip(t *testing.T) {
	h := testHash(0)
	rs := testHash(1)
	for _, tc := range []struct {
		name  string
		rec   dedupRec
		minor bool // version 2 writes its amounts in minor units
	}{
		{"held reversal", dedupRec{Hash: h, Held: true, Partition: 3, Currency: "EUR"}, true},
		{"settled", dedupRec{Hash: h, Partition: 1, Index: 1 << 40, Currency: "EUR", Net: "-12.5", RuleSet: rs,
			Shares: [][2]string{{"studio", "-1.5"}, {"operator", "-11"}}}, true},
		{"partly reversed", dedupRec{Hash: h, Partition: 0, Index: 7, Currency: "JPY", Net: "100", Reversed: "40", RuleSet: rs,
			Shares: [][2]string{{"a", "60"}, {"b", "40"}}, Left: [][2]string{{"a", "36"}, {"b", "24"}}}, true},
		{"left present but empty", dedupRec{Hash: h, Currency: "EUR", Net: "0", Left: [][2]string{}}, true},
		{"exception marker", dedupRec{Hash: h, Partition: 2, Currency: "KWD", Net: "0"}, true},
		{"three decimals", dedupRec{Hash: h, Partition: 2, Currency: "KWD", Net: "53.797", RuleSet: rs,
			Shares: [][2]string{{"a", "0.001"}, {"b", "53.796"}}}, true},
		{"unknown currency, many decimals", dedupRec{Hash: h, Currency: "XYZ", Net: "-0.000000000000000001", RuleSet: rs,
			Shares: [][2]string{{"a", "-0.000000000000000001"}}}, true},
		{"amount past int64 in minor units", dedupRec{Hash: h, Currency: "EUR", Net: "10000000000000000000.5", RuleSet: rs,
			Shares: [][2]string{{"a", "10000000000000000000.5"}}}, false},
		{"not canonical", dedupRec{Hash: h, Currency: "EUR", Net: "12.50", Shares: [][2]string{{"a", "12.50"}}}, false},
		{"empty share amount", dedupRec{Hash: h, Currency: "EUR", Net: "1", Shares: [][2]string{{"a", ""}}}, false},
		{"minus zero", dedupRec{Hash: h, Currency: "EUR", Net: "-0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := uint64(0)
			if tc.rec.RuleSet != nil {
				ref = 1
			}
			for _, enc := range []struct {
				name string
				b    []byte
			}{{"v1", appendDedup(nil, &tc.rec)}, {"v2", appendDedupV2(nil, &tc.rec, ref)}} {
				var got dedupRec
				if err := decodeDedup(enc.b, &got, testRS); err != nil {
					t.Fatalf("%s: decodeDedup(%x) = %v", enc.name, enc.b, err)
				}
				if !reflect.DeepEqual(got, tc.rec) {
					t.Errorf("%s: decodeDedup(encode(%+v)) = %+v", enc.name, tc.rec, got)
				}
			}
			v2 := appendDedupV2(nil, &tc.rec, ref)
			if got := v2[1]&dedupMinor != 0; got != tc.minor {
				t.Errorf("version 2 in minor units: %v, want %v (%x)", got, tc.minor, v2)
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
			if err := decodeDedup(j, &fromJSON, nil); err != nil {
				t.Fatalf("decodeDedup(%s) = %v", j, err)
			}
			if !reflect.DeepEqual(appendDedupV2(nil, &fromJSON, ref), v2) {
				t.Errorf("JSON %s decodes to %+v", j, fromJSON)
			}
		})
	}
}

// TestDedupV2Size: apart from the transaction's hash (32 incompressible
// bytes in both), the record the index writes for a typical settled bet is
// less than half the size of version 1: the point of version 2.
func TestDedupV2Size(t *testing.T) {
	r := dedupRec{Hash: testHash(0), Partition: 5, Index: 1_234_567, Currency: "EUR", Net: "-401.25", RuleSet: testHash(1),
		Shares: [][2]string{{"studio", "-60.19"}, {"operator", "-341.06"}}}
	v1, v2 := appendDedup(nil, &r), appendDedupV2(nil, &r, 1)
	t.Logf("version 1: %d bytes, version 2: %d bytes", len(v1), len(v2))
	if 2*(len(v2)-32) >= len(v1)-32 {
		t.Errorf("version 2 is %d bytes, version 1 %d", len(v2), len(v1))
	}
}

// TestMinorUnitsMatchDecimal: for random decimals as shopspring writes them,
// minor units and back give the same string, at every exponent that fits.
func TestMinorUnitsMatchDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		var coef int64
		switch i % 3 {
		case 0:
			coef = rng.Int64N(2000) - 1000
		case 1:
			coef = rng.Int64() - math.MaxInt64/2
		default:
			coef = rng.Int64N(1<<40) - 1<<39
		}
		d := decimal.New(coef, -int32(rng.IntN(20)))
		s := d.String()
		sc, ok := canonicalScale(s)
		if !ok {
			t.Fatalf("canonicalScale(%q) not ok", s)
		}
		if want := max(-d.Exponent(), 0); int32(sc) > want {
			t.Fatalf("canonicalScale(%q) = %d, decimal exponent %d", s, sc, d.Exponent())
		}
		for exp := sc; exp <= dedupMaxExp; exp++ {
			v, ok := minorUnits(s, exp)
			fits := d.Shift(int32(exp)).BigInt().IsInt64() && d.Shift(int32(exp)).BigInt().Int64() != math.MinInt64
			if ok != fits {
				t.Fatalf("minorUnits(%q, %d) ok = %v, fits int64 %v", s, exp, ok, fits)
			}
			if !ok {
				break
			}
			if got := formatMinor(v, exp); got != s {
				t.Fatalf("formatMinor(minorUnits(%q, %d) = %d) = %q", s, exp, v, got)
			}
			if !decimal.New(v, -int32(exp)).Equal(d) {
				t.Fatalf("minorUnits(%q, %d) = %d", s, exp, v)
			}
		}
	}
	for _, s := range []string{"", "-", "+1", "01", "1.", "1.0", ".5", "-0", "1e3", "1.5.5", "١"} {
		if _, ok := canonicalScale(s); ok {
			t.Errorf("canonicalScale(%q) ok", s)
		}
	}
}

func TestDedupCodecRejects(t *testing.T) {
	good := appendDedup(nil, &dedupRec{Hash: make([]byte, 32), Currency: "EUR", Net: "1", Shares: [][2]string{{"a", "1"}}})
	h := make([]byte, 32)
	// v2 builds a version-2 record by hand: flags, the fields up to the
	// rule-set reference, then rest.
	v2 := func(flags byte, ref byte, rest ...byte) []byte {
		b := []byte{dedupTagV2, flags, 0, 0, 32}
		b = append(b, h...)
		b = append(b, 3, 'E', 'U', 'R', ref)
		return append(b, rest...)
	}
	goodV2 := v2(dedupMinor|dedupHasNet, 1, 1, 0xfa, 0x01, 0) // exp 1, net 125 (zig-zag 250), no shares: 12.5
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown tag", append([]byte{0xD3}, good[1:]...)},
		{"unknown flag", append([]byte{dedupTag, 0x80}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"non-minimal varint", append([]byte{dedupTag, 0, 0, 0, 0, 0, 0x80, 0x00}, good[7:]...)},
		{"hash too long", append(append([]byte{dedupTag, 0, 0, 0, 0, 0, 0}, 65), make([]byte, 65)...)},
		{"not JSON", []byte("{oops")},
		{"v2 unknown flag", v2(0x80, 0, 0, 0, 0)},
		{"v2 net flag without minor units", v2(dedupHasNet, 0, 0, 0, 0)},
		{"v2 unknown rule set", v2(0, 3, 0, 0, 0)},
		{"v2 exponent too large", v2(dedupMinor|dedupHasNet, 0, 19, 2, 0)},
		{"v2 exponent not the least", v2(dedupMinor|dedupHasNet, 0, 1, 20, 0)},     // 10 at exp 1 is 1 at exp 0
		{"v2 exponent with no amount", v2(dedupMinor, 0, 2, 0)},                    // no amounts: exp must be 0
		{"v2 non-minimal amount", v2(dedupMinor|dedupHasNet, 0, 0, 0x82, 0x00, 0)}, // 1 in two bytes
		{"v2 amount MinInt64", v2(dedupMinor|dedupHasNet, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0)},
		{"v2 strings that fit minor units", v2(0, 0, 1, '1', 0, 0)},
		{"v2 partition past uint32", append([]byte{dedupTagV2, 0, 0x80, 0x80, 0x80, 0x80, 0x10}, goodV2[3:]...)},
		{"v2 trailing byte", append(append([]byte(nil), goodV2...), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r dedupRec
			if err := decodeDedup(tc.in, &r, testRS); err == nil {
				t.Errorf("decodeDedup(%x) = %+v, want an error", tc.in, r)
			}
		})
	}
	// The hand-built good record reads (so the rejections above are for
	// the reason their names say), and a version-2 record is refused
	// where only the ledger's version 1 is valid.
	var r dedupRec
	if err := decodeDedup(goodV2, &r, testRS); err != nil || r.Net != "12.5" || !bytes.Equal(r.RuleSet, testHash(1)) {
		t.Errorf("decodeDedup(%x) = %+v, %v; want net 12.5, rule set 1", goodV2, r, err)
	}
	if err := decodeDedup(goodV2, &r, nil); err == nil {
		t.Errorf("decodeDedup(%x) without a rule-set table = %+v, want an error", goodV2, r)
	}
}

// FuzzDecodeDedup: the decoder never panics, whatever it accepts in a binary
// layout re-encodes to the same bytes (one encoding per record), and amounts
// it reads from minor units are what shopspring's String writes.
func FuzzDecodeDedup(f *testing.F) {
	r := dedupRec{Hash: make([]byte, 32), Partition: 1, Index: 9, Currency: "EUR", Net: "1", Shares: [][2]string{{"a", "1"}}, Left: [][2]string{}}
	f.Add(appendDedup(nil, &r))
	f.Add(appendDedupV2(nil, &r, 0))
	r2 := dedupRec{Hash: make([]byte, 32), Partition: 1, Index: 9, Currency: "EUR", Net: "-10.25", Reversed: "0.05", RuleSet: testHash(2),
		Shares: [][2]string{{"a", "-9"}, {"b", "-1.25"}}, Left: [][2]string{{"a", "-8.95"}, {"b", "-1.25"}}}
	f.Add(appendDedupV2(nil, &r2, 2))
	r2.Net = "10.250"
	f.Add(appendDedupV2(nil, &r2, 2))
	f.Add([]byte(`{"h":"AAAA","p":1,"i":2,"c":"EUR","net":"1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r dedupRec
		if err := decodeDedup(b, &r, testRS); err != nil || (len(b) > 0 && b[0] == '{') {
			return
		}
		var again []byte
		if b[0] == dedupTagV2 {
			ref := uint64(0)
			for n := uint64(1); n <= 2; n++ {
				if h, _ := testRS(n); bytes.Equal(h, r.RuleSet) {
					ref = n
				}
			}
			again = appendDedupV2(nil, &r, ref)
			if b[1]&dedupMinor != 0 {
				for _, s := range append(append([][2]string{{"", r.Net}, {"", r.Reversed}}, r.Shares...), r.Left...) {
					if s[1] == "" {
						continue
					}
					if d, err := decimal.NewFromString(s[1]); err != nil || d.String() != s[1] {
						t.Fatalf("decodeDedup(%x): amount %q is not as decimal writes it", b, s[1])
					}
				}
			}
		} else {
			again = appendDedup(nil, &r)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decodeDedup(%x) = %+v, re-encodes to %x", b, r, again)
		}
	})
}

// TestIndexReadsEarlierRecords: an index written by earlier builds (dedup
// records in version 1 and in JSON) keeps working: both read through the
// index as they were written.
func TestIndexReadsEarlierRecords(t *testing.T) {
	dir := t.TempDir()
	v1 := dedupRec{Hash: testHash(0), Partition: 0, Index: 4, Currency: "EUR", Net: "-12.50", RuleSet: testHash(1),
		Shares: [][2]string{{"studio", "-1.50"}, {"operator", "-11.00"}}}
	js := dedupRec{Hash: testHash(3), Partition: 0, Index: 5, Currency: "EUR", Net: "7", Reversed: "2", RuleSet: testHash(2),
		Shares: [][2]string{{"a", "7"}}, Left: [][2]string{{"a", "5"}}}
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(&js)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(keyDedup("p", "one"), appendDedup(nil, &v1)); err != nil {
			return err
		}
		return txn.Set(keyDedup("p", "two"), jb)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	idx, err := OpenIndex(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	for id, want := range map[string]dedupRec{"one": v1, "two": js} {
		b := newBatchOn(idx.db, nil, Counters{})
		got, err := b.getDedup(idx, keyDedup("p", id))
		b.close()
		if err != nil || got == nil || !reflect.DeepEqual(*got, want) {
			t.Errorf("record %s = %+v, %v; want %+v", id, got, err, want)
		}
		_, i, _, found, err := idx.Lookup("p", id)
		if err != nil || !found || i != want.Index {
			t.Errorf("Lookup(p, %s) = index %d, found %v, %v", id, i, found, err)
		}
	}
}
