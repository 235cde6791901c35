package engine

import (
	"strconv"
	"testing"
	"time"

	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
)

// nullState is a State that remembers nothing: every transaction is new and
// has no held reversals, so the benchmark measures the engine, not a map.
type nullState struct{}

func (nullState) Dedup(string, string) (*DedupRec, error) { return nil, nil }
func (nullState) PutDedup(string, string, *DedupRec)      {}
func (nullState) Held(string, string) ([]Held, error)     { return nil, nil }
func (nullState) Hold(string, string, string, OrphanRec)  {}
func (nullState) Release(Held)                            {}
func (nullState) Paid(string) (string, error)             { return "", nil }
func (nullState) PutPaid(string, string)                  {}
func (nullSink) Entry(store.Entry)                        {}
func (nullSink) Exception(Exception)                      {}

type nullSink struct{}

// benchPayload is a canonical transaction like the ones `tally bench` sends
// (settle.benchPayload): a bet or, every third, a win, in EUR.
func benchPayload(dst []byte, i int) []byte {
	typ := "bet"
	if i%3 == 2 {
		typ = "win"
	}
	dst = append(dst, `{"id":"b-`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `","type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","amount":"`...)
	dst = strconv.AppendInt(dst, int64(1+i%500), 10)
	dst = append(dst, `.25","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z","game":"book-of-x","jurisdiction":"MT","brand":"main"}`...)
	return dst
}

// BenchmarkEngineApply is one new transaction through Engine.Apply: decode,
// dedup miss, split, entry and its (provider, id) record; no storage.
func BenchmarkEngineApply(b *testing.B) {
	book, err := rules.Parse([]byte(engineRules), "engine.hcl")
	if err != nil {
		b.Fatal(err)
	}
	g := Engine{Book: book}
	var cnt Counters
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var buf []byte
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		buf = benchPayload(buf[:0], i)
		if err := g.Apply(nullState{}, nullSink{}, &cnt, Input{Provider: "studio-x", EdgeNode: "e", EdgeSeq: uint64(i), Payload: buf, Now: now}); err != nil {
			b.Fatal(err)
		}
	}
	if cnt.Entries != uint64(i) {
		b.Fatalf("settled %d of %d", cnt.Entries, i)
	}
}

// BenchmarkEntryRecord is the (provider, id) record of a three-share entry,
// as the engine writes it and the index rebuilds it from the ledger.
func BenchmarkEntryRecord(b *testing.B) {
	h := newHarness(b)
	h.send("s", txJSON("1", "win", "123.45", "EUR", "", "a"))
	if len(h.out.entries) != 1 {
		b.Fatalf("no entry: %v", h.out.exceptions)
	}
	e := h.out.entries[0]
	b.ReportAllocs()
	for b.Loop() {
		_ = EntryRecord(&e)
	}
}
