package settle

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/config/examples"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// benchWorker is a partition worker on a real index and ledger in temp dirs,
// without NATS: apply and persist are the whole per-record path of settle.
func benchWorker(tb testing.TB) *worker {
	tb.Helper()
	src, err := examples.FS.ReadFile("rules.hcl")
	if err != nil {
		tb.Fatal(err)
	}
	book, err := rules.Parse(src, "rules.hcl")
	if err != nil {
		tb.Fatal(err)
	}
	log := hclog.NewNullLogger()
	idx, err := OpenIndex(tb.TempDir(), log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { idx.Close() })
	skey, _, err := store.GenerateKey("tally.bench/ledger")
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	led, err := store.Open(store.Options{Dir: tb.TempDir(), Origin: "tally.bench/ledger", Signer: signer})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { led.Close() })
	n := New(Config{Subjects: wire.NewSubjects(""), Partitions: []int{0}, SegmentMaxEntries: 2000, SegmentMaxAge: time.Second, FetchBatch: 256}, idx, led, book, log)
	w := &worker{n: n, p: 0, log: log}
	if w.held, err = loadOrphanSet(idx.db, 0); err != nil {
		tb.Fatal(err)
	}
	return w
}

// benchPayload is one canonical transaction like the ones `tally bench` sends.
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

// BenchmarkSettleSegment is the settle hot path per segment: decode, dedup
// lookup, split and entry building for every record (apply), then seal the
// segment file and commit the index in one Badger transaction (persist), both
// fsynced. Signing and the JetStream publish are per segment and not included.
func BenchmarkSettleSegment(b *testing.B) {
	for _, n := range []int{100, 2000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			w := benchWorker(b)
			hkey := string(keyMark(0, "edge", "bench-1"))
			var seq uint64
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				bt := newBatchOn(w.n.idx.db, w.held, w.cnt)
				for range n {
					seq++
					buf = benchPayload(buf[:0], int(seq))
					if err := w.apply(bt, "edge", "bench-1", wire.Record{Seq: seq, Payload: append([]byte(nil), buf...)}); err != nil {
						b.Fatal(err)
					}
				}
				bt.hwm[hkey] = seq
				if _, _, err := w.persist(bt); err != nil {
					b.Fatal(err)
				}
				bt.close()
			}
			if w.cnt.Entries != seq {
				b.Fatalf("settled %d of %d", w.cnt.Entries, seq)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(seq), "ns/tx")
		})
	}
}

// BenchmarkApply is apply alone (no seal, no index commit) on an index that
// already holds earlier transactions, so dedup lookups miss through real
// tables, not an empty memtable.
func BenchmarkApply(b *testing.B) {
	w := benchWorker(b)
	hkey := string(keyMark(0, "edge", "bench-1"))
	var seq uint64
	var buf []byte
	for range 20 { // 40k settled transactions in the index
		bt := newBatchOn(w.n.idx.db, w.held, w.cnt)
		for range 2000 {
			seq++
			buf = benchPayload(buf[:0], int(seq))
			if err := w.apply(bt, "edge", "bench-1", wire.Record{Seq: seq, Payload: append([]byte(nil), buf...)}); err != nil {
				b.Fatal(err)
			}
		}
		bt.hwm[hkey] = seq
		if _, _, err := w.persist(bt); err != nil {
			b.Fatal(err)
		}
		bt.close()
	}
	bt := newBatchOn(w.n.idx.db, w.held, w.cnt)
	defer bt.close()
	b.ReportAllocs()
	for b.Loop() {
		if len(bt.entries) >= 2000 { // keep the overlay the size of one segment
			bt.close()
			bt = newBatchOn(w.n.idx.db, w.held, w.cnt)
		}
		seq++
		buf = benchPayload(buf[:0], int(seq))
		if err := w.apply(bt, "edge", "bench-1", wire.Record{Seq: seq, Payload: buf}); err != nil {
			b.Fatal(err)
		}
	}
}

// persist is a commit without NATS: prepare, then advance as if the ledger
// stream had accepted it (sequence 0).
func (w *worker) persist(b *batch) (*store.Prepared, *stateRec, error) {
	pr, rec, err := w.prepare(b)
	if err != nil {
		return nil, nil, err
	}
	return pr, rec, w.advance(0, pr, rec)
}
