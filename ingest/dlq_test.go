package ingest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/txn"
)

// TestDeadLetterStore: rejected payloads are kept with code and reason,
// bounded by DLQMax (oldest trimmed), and read back from the stopped WAL.
func TestDeadLetterStore(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.DLQMax = 5
	n := startNode(t, cfg, nc, js)
	ask(t, nc, "p1", payload("ok", "1.00"))
	for i := range 8 {
		ask(t, nc, "p1", fmt.Appendf(nil, `{"id":"bad-%d","type":"bet","amount":"1.001","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, i))
	}
	ask(t, nc, "p2", payload("ok", "1.00"))
	ask(t, nc, "p2", payload("ok", "9.00")) // conflict
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDeadLetters(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if first, next := d.Range(); first != 4 || next != 9 {
		t.Errorf("Range() = %d, %d; want 4, 9 (9 rejected, 5 kept)", first, next)
	}
	var got []DeadLetter
	if err := d.Each(func(dl DeadLetter) (bool, error) { got = append(got, dl); return true, nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].N != 4 || got[4].N != 8 {
		t.Fatalf("Each = %d letters %+v", len(got), got)
	}
	last := got[4]
	if last.Provider != "p2" || last.Code != string(txn.CodeConflict) || string(last.Payload) != string(payload("ok", "9.00")) || last.At.IsZero() {
		t.Errorf("newest dead letter = %+v", last)
	}
	if got[0].Code != string(txn.CodeTooManyDecimals) || got[0].Reason == "" {
		t.Errorf("oldest kept = %+v", got[0])
	}
	if dl, err := d.Get(6); err != nil || dl.N != 6 {
		t.Errorf("Get(6) = %+v, %v", dl, err)
	}
	if _, err := d.Get(2); !errors.Is(err, ErrNoDeadLetter) {
		t.Errorf("Get(trimmed) = %v, want ErrNoDeadLetter", err)
	}
}
