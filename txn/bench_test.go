package txn

import (
	"fmt"
	"testing"
)

// BenchmarkDecode measures decode + validation of one canonical transaction,
// the first step every provider record takes at the edge.
func BenchmarkDecode(b *testing.B) {
	cases := map[string]string{
		"minimal": `{"id":"t-1","type":"bet","amount":"12.50","currency":"EUR","occurred_at":"2026-11-22T10:00:00Z"}`,
		"typical": `{"id":"studio-1-123456","type":"bet","amount":"12.50","currency":"EUR","occurred_at":"2026-11-22T10:00:00.123Z","round":"R41152","game":"book-of-x","category":"slot","jurisdiction":"MT","brand":"main","player":"pl-1f3a","affiliate":"aff-2"}`,
		"meta":    `{"id":"t-1","type":"win","amount":"1250","currency":"JPY","occurred_at":"2026-11-22T10:00:00Z","meta":{"session":"s-1","device":"ios","campaign":"winter"}}`,
		// non-ASCII: the general (strict JSON) path, not the fast one
		"unicode": `{"id":"t-1","type":"bet","amount":"12.50","currency":"EUR","occurred_at":"2026-11-22T10:00:00Z","game":"müller-spiel","meta":{"city":"Zürich"}}`,
	}
	lim := DefaultLimits()
	for _, name := range []string{"minimal", "typical", "meta", "unicode"} {
		body := []byte(cases[name])
		b.Run(fmt.Sprintf("shape=%s/bytes=%d", name, len(body)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := Decode(body, lim); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHash measures the canonical form and its SHA-256, computed once per
// record for dedup and conflict detection.
func BenchmarkHash(b *testing.B) {
	tx, err := Decode([]byte(`{"id":"studio-1-123456","type":"bet","amount":"12.50","currency":"EUR","occurred_at":"2026-11-22T10:00:00.123Z","game":"book-of-x","category":"slot"}`), DefaultLimits())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = tx.Hash()
	}
}
