package store

import (
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

type rec struct {
	A string `json:"a"`
	N int    `json:"n"`
}

func (r *rec) canonical() []byte { b, _ := json.Marshal(r); return b }

// TestOpenCanonical: a signed canonical record opens; a record another
// encoder could read differently (other key order, unknown field, trailing
// data), another key, or a changed byte does not.
func TestOpenCanonical(t *testing.T) {
	skey, vkey, err := GenerateKey("test/records")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	r := &rec{A: "x", N: 7}
	msg, err := SignCanonical(r.canonical(), signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenCanonical(msg, verifier, "record", (*rec).canonical)
	if err != nil || *got != *r {
		t.Fatalf("open: %+v %v", got, err)
	}
	for name, text := range map[string]string{
		"other key order": `{"n":7,"a":"x"}`,
		"unknown field":   `{"a":"x","n":7,"z":1}`,
		"trailing data":   `{"a":"x","n":7} {}`,
	} {
		m, err := note.Sign(&note.Note{Text: text + "\n"}, signer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := OpenCanonical(m, verifier, "record", (*rec).canonical); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
	changed := []byte(strings.Replace(string(msg), `"x"`, `"y"`, 1))
	if _, err := OpenCanonical(changed, verifier, "record", (*rec).canonical); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("changed byte: %v", err)
	}
	_, otherV, _ := GenerateKey("test/records")
	ov, _ := note.NewVerifier(otherV)
	if _, err := OpenCanonical(msg, ov, "record", (*rec).canonical); err == nil {
		t.Error("opened with another key")
	}
}
