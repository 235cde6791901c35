package fx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store"
)

// rateLine is the seam's fx_rate payload (canonical tx JSON; the provider
// is the system's, never part of the line).
type rateLine struct {
	ID         *string            `json:"id"`
	Type       *string            `json:"type"`
	Amount     *string            `json:"amount"`
	Currency   *string            `json:"currency"`
	OccurredAt *string            `json:"occurred_at"`
	Meta       map[string]*string `json:"meta"`
}

// ParseLine reads one rate in the fx_rate payload shape of the
// operator-entry seam, for tools that evaluate contracts offline (tally
// rules eval --rates):
//
//	{"id":"fx-ecb-EURUSD-1793491200","type":"fx_rate","amount":"0","currency":"EUR",
//	 "occurred_at":"2026-11-01T00:00:00Z","meta":{"source":"ecb","pair":"EUR/USD","rate":"1.08","posted_by":"treasury@op"}}
//
// Strictly: every field present once, no other field or meta key, amount
// the string "0", and everything ParseRate checks (pair starting with the
// currency, rate notation, id matching source, pair and as-of). The result
// is the entry the engine would record for it.
func ParseLine(b []byte) (store.Entry, error) {
	bad := func(format string, a ...any) (store.Entry, error) {
		return store.Entry{}, fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), ErrBadRate)
	}
	if err := noDuplicateKeys(b); err != nil {
		return bad("%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var l rateLine
	if err := dec.Decode(&l); err != nil {
		return bad("not an fx_rate object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("trailing data after the object")
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"id", l.ID}, {"type", l.Type}, {"amount", l.Amount}, {"currency", l.Currency}, {"occurred_at", l.OccurredAt}} {
		if f.v == nil {
			return bad("field %q is missing", f.name)
		}
	}
	if *l.Type != EntryType {
		return bad("type %q is not %s", *l.Type, EntryType)
	}
	if *l.Amount != "0" {
		return bad(`amount %q: an fx_rate moves no money, its amount is "0"`, *l.Amount)
	}
	at, err := time.Parse(time.RFC3339, *l.OccurredAt)
	if err != nil {
		return bad("occurred_at %q is not RFC 3339: %v", *l.OccurredAt, err)
	}
	meta := map[string]string{}
	for k, v := range l.Meta {
		switch k {
		case "source", "pair", "rate", "posted_by":
		default:
			return bad("meta key %q is not one of source, pair, rate, posted_by", k)
		}
		if v == nil {
			return bad("meta %q is null", k)
		}
		meta[k] = *v
	}
	base, quote := *l.Currency, ""
	if p := meta["pair"]; len(p) > len(base)+1 && p[:len(base)] == base && p[len(base)] == '/' {
		quote = p[len(base)+1:]
	}
	if _, known := money.Lookup(base); !known {
		return bad("currency %q is not a known ISO 4217 code", base)
	}
	e := Entry(meta["source"], base, quote, meta["rate"], at, meta["posted_by"])
	e.Tx.ID = *l.ID
	e.Tx.Meta = meta
	if _, err := ParseRate(e); err != nil {
		return store.Entry{}, err
	}
	return e, nil
}

// noDuplicateKeys refuses an object with a key twice (at any depth):
// encoding/json would silently keep the last one.
func noDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > 4 {
			return fmt.Errorf("nested too deep")
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := k.(string)
				if seen[key] {
					return fmt.Errorf("key %q appears twice", key)
				}
				seen[key] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return walk(0)
}
