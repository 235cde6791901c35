package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Statements, payout runs and reconciliations are kept as signed notes
// (golang.org/x/mod/sumdb/note, the ledger's key) whose text is a record's
// canonical JSON and a newline. SignCanonical and OpenCanonical are the one
// way such a note is made and read back.

// SignCanonical signs canonical (a record's canonical JSON) as a note.
func SignCanonical(canonical []byte, signer note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: string(canonical) + "\n"}, signer)
}

// OpenCanonical checks msg's signature against v and decodes its text into a
// T strictly: unknown fields are refused, and the text must be exactly
// canonical(t) (one payload, one meaning: a record that another encoder
// could read differently is not accepted). what names the record in errors.
func OpenCanonical[T any](msg []byte, v note.Verifier, what string, canonical func(*T) []byte) (*T, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	text, ok := strings.CutSuffix(n.Text, "\n")
	if !ok {
		return nil, errors.New("note text does not end in a newline")
	}
	t := new(T)
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(t); err != nil {
		return nil, fmt.Errorf("not a %s: %w", what, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("not a %s: data after the record", what)
	}
	if !bytes.Equal(canonical(t), []byte(text)) {
		return nil, fmt.Errorf("not a canonical %s", what)
	}
	return t, nil
}
