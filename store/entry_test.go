package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

func equalEntry(a, b Entry) bool {
	if a.Partition != b.Partition || a.Index != b.Index || a.EdgeNode != b.EdgeNode || a.EdgeSeq != b.EdgeSeq ||
		a.Provider != b.Provider || a.RuleSet != b.RuleSet || a.Rule != b.Rule || !a.Net.Equal(b.Net) ||
		!a.SettledAt.Equal(b.SettledAt) || len(a.Shares) != len(b.Shares) {
		return false
	}
	for i := range a.Shares {
		if a.Shares[i].Party != b.Shares[i].Party || !a.Shares[i].Amount.Equal(b.Shares[i].Amount) {
			return false
		}
	}
	x, y := a.Tx, b.Tx
	if !x.Amount.Equal(y.Amount) || !x.OccurredAt.Equal(y.OccurredAt) || len(x.Meta) != len(y.Meta) {
		return false
	}
	for k, v := range x.Meta {
		if y.Meta[k] != v {
			return false
		}
	}
	return x.ID == y.ID && x.Type == y.Type && x.Currency == y.Currency && x.Round == y.Round && x.Parent == y.Parent &&
		x.Seq == y.Seq && x.Game == y.Game && x.Category == y.Category && x.Jurisdiction == y.Jurisdiction &&
		x.Brand == y.Brand && x.Affiliate == y.Affiliate && x.Player == y.Player
}

func TestEntryRoundTrip(t *testing.T) {
	g := newGen(t)
	cases := append([]Entry{sampleEntry(t)}, g.entries(t, 9, 50)...)
	minimal := Entry{Tx: txn.Tx{ID: "x", Type: txn.Win, Amount: decimal.Zero, Currency: mustCur(t, "JPY"), OccurredAt: time.Unix(0, 1)}, Net: decimal.Zero, SettledAt: time.Unix(-5, 0)}
	cases = append(cases, minimal)
	for i, e := range cases {
		b, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("case %d: MarshalBinary: %v", i, err)
		}
		got, err := UnmarshalEntry(b)
		if err != nil {
			t.Fatalf("case %d: UnmarshalEntry: %v", i, err)
		}
		if !equalEntry(got, e) {
			t.Fatalf("case %d: UnmarshalEntry(MarshalBinary(e)) = %+v, want %+v", i, got, e)
		}
		b2, err := got.MarshalBinary()
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("case %d: re-encoding differs (%v):\n%x\n%x", i, err, b, b2)
		}
		if got.LeafHash() != e.LeafHash() {
			t.Fatalf("case %d: leaf hash changed across a round trip", i)
		}
	}
}

// The meta map's iteration order and decimal representation must not leak
// into the encoding.
func TestEntryEncodingIsCanonical(t *testing.T) {
	e := sampleEntry(t)
	want, _ := e.MarshalBinary()
	for range 20 {
		e.Tx.Meta = map[string]string{"ab": "x", "campaign": "nov"}
		e.Net = decimal.RequireFromString("10.000000") // same value, other exponent
		e.Tx.OccurredAt = e.Tx.OccurredAt.In(time.FixedZone("X", 3600))
		got, err := e.MarshalBinary()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("MarshalBinary = %x, %v; want %x", got, err, want)
		}
	}
}

func TestEntryMarshalErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(e *Entry)
		errHas string
	}{
		{"unknown currency", func(e *Entry) { e.Tx.Currency = money.Currency{Code: "XXX", Exponent: 2} }, "unknown currency"},
		{"wrong exponent", func(e *Entry) { e.Tx.Currency.Exponent = 3 }, "exponent"},
		{"too many decimals", func(e *Entry) { e.Shares[0].Amount = decimal.RequireFromString("7.001") }, "decimals"},
		{"beyond int64", func(e *Entry) { e.Net = decimal.RequireFromString("1e20") }, "out of range"},
		{"negative amount", func(e *Entry) { e.Tx.Amount = decimal.RequireFromString("-1") }, "negative"},
		{"zero settled_at", func(e *Entry) { e.SettledAt = time.Time{} }, "settled_at"},
		{"zero occurred_at", func(e *Entry) { e.Tx.OccurredAt = time.Time{} }, "occurred_at"},
		{"time beyond int64 ns", func(e *Entry) { e.SettledAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }, "settled_at"},
		{"long string", func(e *Entry) { e.Provider = strings.Repeat("a", MaxStringLen+1) }, "provider"},
		{"invalid utf-8", func(e *Entry) { e.Tx.ID = "\xff" }, "UTF-8"},
		{"invalid meta key", func(e *Entry) { e.Tx.Meta["\xff"] = "" }, "meta key"},
		{"unknown type", func(e *Entry) { e.Tx.Type = "gift" }, "type"},
		{"too many shares", func(e *Entry) { e.Shares = make([]money.Share, MaxShares+1) }, "shares"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := sampleEntry(t)
			tc.mutate(&e)
			_, err := e.MarshalBinary()
			if !errors.Is(err, ErrInvalidEntry) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("MarshalBinary() error = %v, want ErrInvalidEntry containing %q", err, tc.errHas)
			}
		})
	}
}

func TestUnmarshalEntryRejects(t *testing.T) {
	e := sampleEntry(t)
	e.EdgeNode = "" // its length byte is at offset 13: 1 + 4 + 8
	good, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalEntry(good); err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) []byte {
		if bytes.Count(good, []byte(old)) != 1 {
			t.Fatalf("%q is not unique in the encoding", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	nonMinimal := append(append(append([]byte{}, good[:13]...), 0x80, 0x00), good[14:]...)
	tests := []struct {
		name   string
		b      []byte
		errHas string
	}{
		{"empty", nil, "version"},
		{"unknown version", append([]byte{2}, good[1:]...), "version"},
		{"trailing byte", append(append([]byte{}, good...), 0), "trailing"},
		{"non-minimal varint", nonMinimal, "offset 13: edge node length: non-minimal varint"}, // field, offset and message as before the lazy name
		{"unsorted meta", replace("\x02ab\x01x\x08campaign\x03nov", "\x08campaign\x03nov\x02ab\x01x"), "meta key"},
		{"duplicate meta", replace("\x02ab\x01x\x08campaign\x03nov", "\x02ab\x01x\x02ab\x01y"), "meta key"},
		{"wrong exponent", replace("\x03EUR\x02", "\x03EUR\x03"), "exponent"},
		{"unknown currency", replace("\x03EUR\x02", "\x03XXX\x02"), "unknown currency"},
		{"unknown type", replace("\x03bet", "\x03bot"), "type"},
		{"invalid utf-8", replace("p-1001", "p-\xff001"), "UTF-8"},
		{"oversize length", replace("\x08platform", "\xff\x7fplatform"), "length: 16383 exceeds the limit of 1024"},
		{"too large", make([]byte, MaxEntrySize+1), "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := UnmarshalEntry(tc.b)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("UnmarshalEntry error = %v, want ErrMalformed containing %q", err, tc.errHas)
			}
		})
	}
	// Every proper prefix is truncated, never silently accepted.
	for n := range len(good) {
		if _, err := UnmarshalEntry(good[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("UnmarshalEntry(first %d of %d bytes) error = %v, want ErrMalformed", n, len(good), err)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(e *Entry)
		want   error
	}{
		{"ok", func(e *Entry) {}, nil},
		{"shares short by a cent", func(e *Entry) { e.Shares[2].Amount = decimal.RequireFromString("0.49") }, ErrUnbalanced},
		{"net is not the amount", func(e *Entry) {
			e.Net = decimal.RequireFromString("9.00")
			e.Shares[0].Amount = decimal.RequireFromString("6.00")
		}, ErrInvalidEntry},
		{"bet with negative net", func(e *Entry) {
			e.Net = e.Net.Neg()
			for i := range e.Shares {
				e.Shares[i].Amount = e.Shares[i].Amount.Neg()
			}
		}, ErrInvalidEntry},
		{"refund may be negative", func(e *Entry) {
			e.Tx.Type, e.Tx.Parent, e.Rule, e.Net = txn.Refund, "p-1000", "", e.Net.Neg()
			for i := range e.Shares {
				e.Shares[i].Amount = e.Shares[i].Amount.Neg()
			}
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := sampleEntry(t)
			tc.mutate(&e)
			err := e.Validate()
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
			// Seal skips Validate when the encoding's minor units show the entry
			// balanced: that check must never pass what Validate refuses.
			if _, balanced, err := e.appendBinary(nil); err != nil || balanced != (tc.want == nil) {
				t.Errorf("appendBinary: balanced %v, %v; Validate wants %v", balanced, err, tc.want)
			}
		})
	}
}

func FuzzUnmarshalEntry(f *testing.F) {
	e := sampleEntry(f)
	b, _ := e.MarshalBinary()
	f.Add(b)
	g := newGen(f)
	for _, e := range g.entries(f, 1, 3) {
		b, _ := e.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := UnmarshalEntry(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("UnmarshalEntry error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip differs:\n in  %x\n out %x", b, again)
		}
		_ = e.Validate() // must not panic
	})
}
