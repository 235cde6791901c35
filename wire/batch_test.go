package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	recs := []Record{{Seq: 41, Payload: []byte(`{"id":"a"}`)}, {Seq: 42, Payload: nil}, {Seq: 43, Payload: bytes.Repeat([]byte("x"), 300)}}
	b := AppendBatch(nil, recs)
	got, err := DecodeBatch(b, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("DecodeBatch = %d records, want 3", len(got))
	}
	for i := range recs {
		if got[i].Seq != recs[i].Seq || !bytes.Equal(got[i].Payload, recs[i].Payload) {
			t.Errorf("record %d = %+v, want %+v", i, got[i], recs[i])
		}
	}
}

func TestBatchRejects(t *testing.T) {
	ok := AppendBatch(nil, []Record{{Seq: 1, Payload: []byte("a")}, {Seq: 2, Payload: []byte("b")}})
	for name, b := range map[string][]byte{
		"empty":          nil,
		"bad version":    append([]byte{9}, ok[1:]...),
		"truncated":      ok[:len(ok)-1],
		"trailing":       append(append([]byte{}, ok...), 0),
		"gap":            AppendBatch(nil, []Record{{Seq: 1}, {Seq: 3}}),
		"zero records":   AppendBatch(nil, nil),
		"over max count": AppendBatch(nil, []Record{{Seq: 1}, {Seq: 2}, {Seq: 3}}),
	} {
		if _, err := DecodeBatch(b, 2); !errors.Is(err, ErrBadBatch) {
			t.Errorf("%s: DecodeBatch = %v, want ErrBadBatch", name, err)
		}
	}
}

func TestSubjects(t *testing.T) {
	s := NewSubjects("")
	if got := s.In("p1"); got != "tally.in.p1" {
		t.Errorf("In = %s", got)
	}
	if p, ok := s.ProviderFromIn("tally.in.p1"); !ok || p != "p1" {
		t.Errorf("ProviderFromIn = %q %v", p, ok)
	}
	if _, ok := s.ProviderFromIn("tally.in."); ok {
		t.Error("empty provider accepted")
	}
	if got := s.TxDest(4); got != "tally.tx.{{partition(4,2)}}.{{wildcard(1)}}.{{wildcard(2)}}" {
		t.Errorf("TxDest = %s", got)
	}
	if s.TxStream() != "TALLY_TX" || s.LedgerStream() != "TALLY_LEDGER" {
		t.Errorf("stream names %s %s", s.TxStream(), s.LedgerStream())
	}
	for tok, want := range map[string]bool{"studio-1": true, "a.b": false, "": false, "x*": false, "edge_2": true} {
		if ValidToken(tok) != want {
			t.Errorf("ValidToken(%q) = %v", tok, !want)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatch(nil, []Record{{Seq: 1, Payload: []byte("a")}, {Seq: 2, Payload: []byte("bc")}}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeBatch(b, 1000)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to the same bytes.
		if again := AppendBatch(nil, recs); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
