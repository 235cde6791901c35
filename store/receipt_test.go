package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestReceipt(t *testing.T) {
	tl := buildLedger(t)
	l := openLedger(t, tl.dir, tl.key)
	p, size := uint32(0), uint64(14)
	path, err := l.InclusionProof(p, 5, size)
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := l.Entry(p, 5)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := e.MarshalBinary()
	msg := l.Checkpoint(p)
	rc := Receipt{Index: 5, Proof: path, Checkpoint: msg}.Marshal()
	res, err := VerifyReceipt(rc, tl.key.vkey, raw)
	if err != nil || res.Index != 5 || res.Checkpoint.Size != size || res.Checkpoint.Origin != testOrigin+"/p0" {
		t.Fatalf("VerifyReceipt = %+v, %v", res, err)
	}
	if res.Signer != testOrigin+"/p0" {
		t.Fatalf("receipt signer %q, want the origin", res.Signer)
	}
	pkey, _ := PartitionVerifierKey(tl.key.vkey, p)
	if res, err := VerifyReceipt(rc, pkey, raw); err != nil || res.Signer != testOrigin+"/p0" {
		t.Fatalf("VerifyReceipt with the partition key = %+v, %v", res, err)
	}
	p3key, _ := PartitionVerifierKey(tl.key.vkey, 3)
	if _, err := VerifyReceipt(rc, p3key, raw); !errors.Is(err, ErrReceipt) {
		t.Fatalf("VerifyReceipt with partition 3's key = %v, want ErrReceipt", err)
	}
	back, err := ParseReceipt(rc)
	if err != nil || !bytes.Equal(back.Marshal(), rc) {
		t.Fatalf("ParseReceipt does not round-trip: %v", err)
	}
	withExtra := Receipt{Extra: []byte("x"), Index: 5, Proof: path, Checkpoint: msg}.Marshal()
	if _, err := VerifyReceipt(withExtra, tl.key.vkey, raw); err != nil {
		t.Fatalf("receipt with an extra line: %v", err)
	}
	other := newKey(t, testOrigin)
	badEntry := bytes.Clone(raw)
	badEntry[len(badEntry)-1] ^= 1
	tests := []struct {
		name    string
		receipt []byte
		key     string
		entry   []byte
		is      error
	}{
		{"changed entry", rc, tl.key.vkey, badEntry, ErrReceipt},
		{"other key", rc, other.vkey, raw, ErrReceipt},
		{"wrong index", Receipt{Index: 6, Proof: path, Checkpoint: msg}.Marshal(), tl.key.vkey, raw, ErrReceipt},
		{"proof hash changed", bytes.Replace(rc, []byte("\n"+strings.Split(string(rc), "\n")[2]), []byte("\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), 1), tl.key.vkey, raw, ErrReceipt},
		{"proof hash dropped", Receipt{Index: 5, Proof: path[1:], Checkpoint: msg}.Marshal(), tl.key.vkey, raw, ErrReceipt},
		{"checkpoint edited", bytes.Replace(rc, []byte("\n14\n"), []byte("\n15\n"), 1), tl.key.vkey, raw, ErrReceipt},
		{"no header", rc[len(ReceiptHeader)+1:], tl.key.vkey, raw, ErrMalformed},
		{"index with leading zero", bytes.Replace(rc, []byte("index 5"), []byte("index 05"), 1), tl.key.vkey, raw, ErrMalformed},
		{"no checkpoint", Receipt{Index: 5, Proof: path}.Marshal(), tl.key.vkey, raw, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyReceipt(tc.receipt, tc.key, tc.entry); !errors.Is(err, tc.is) {
				t.Fatalf("VerifyReceipt = %v, want %v", err, tc.is)
			}
		})
	}
}

func FuzzParseReceipt(f *testing.F) {
	f.Add([]byte(ReceiptHeader + "\nindex 0\n\nx\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— x AAAA\n"))
	f.Add([]byte(ReceiptHeader + "\nextra eA==\nindex 12\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\nc\n"))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 18446744073709551615\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReceipt(b)
		if err != nil {
			return
		}
		// A receipt that parses renders back to itself: one text per receipt.
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatalf("ParseReceipt(%q) re-marshals to %q", b, r.Marshal())
		}
	})
}
