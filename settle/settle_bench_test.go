package settle

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/config/examples"
	"github.com/tally-mesh/tally/internal/badgermem"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// benchWorker is a partition worker on a real index and ledger in temp dirs,
// without NATS: apply and persist are the whole per-record path of settle.
func benchWorker(tb testing.TB) *worker { return benchWorkerIn(tb, tb.TempDir()) }

// benchWorkerIn is benchWorker with the index in idxDir.
func benchWorkerIn(tb testing.TB, idxDir string) *worker {
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
	idx, err := OpenIndexWith(idxDir, log, IndexOptions{tune: benchIndexTune(tb)})
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

// benchIndexTune reads TALLY_BENCH_INDEX, index options to compare in a
// benchmark (comma-separated): memtable64 (64 MiB memtables), l0=N (L0
// tables before compaction, stall at 2N), vlog (values over 64 B in the
// value log), zstd (ZSTD instead of Snappy), mult=N (level size multiplier).
func benchIndexTune(tb testing.TB) func(badger.Options) badger.Options {
	spec := os.Getenv("TALLY_BENCH_INDEX")
	if spec == "" {
		return nil
	}
	var fs []func(badger.Options) badger.Options
	for _, f := range strings.Split(spec, ",") {
		name, arg, _ := strings.Cut(f, "=")
		n, _ := strconv.Atoi(arg)
		switch {
		case name == "memtable64":
			fs = append(fs, func(o badger.Options) badger.Options { return o.WithMemTableSize(64 << 20) })
		case name == "l0" && n > 0:
			fs = append(fs, func(o badger.Options) badger.Options {
				return o.WithNumLevelZeroTables(n).WithNumLevelZeroTablesStall(2 * n)
			})
		case name == "vlog":
			fs = append(fs, func(o badger.Options) badger.Options {
				return o.WithValueThreshold(64).WithValueLogFileSize(256 << 20)
			})
		case name == "zstd":
			fs = append(fs, func(o badger.Options) badger.Options { return o.WithCompression(options.ZSTD) })
		case name == "mult" && n > 1:
			fs = append(fs, func(o badger.Options) badger.Options { return o.WithLevelSizeMultiplier(n) })
		default:
			tb.Fatalf("TALLY_BENCH_INDEX: unknown %q", f)
		}
	}
	tb.Logf("index options: %s", spec)
	return func(o badger.Options) badger.Options {
		for _, f := range fs {
			o = f(o)
		}
		return o
	}
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

// BenchmarkCommitSteps splits the local half of a commit of a 2000-entry
// segment into its durable steps, each with its own fsync barriers:
// ledger_ns (Ledger.Commit: hash cache fsync, segment temp file fsync,
// rename, directory fsync), index_ns (applyLedger: one Badger transaction
// with SyncWrites) and sign_ns (Ledger.Sign: checkpoint temp file fsync,
// rename, directory fsync), per segment. Apply and prepare run with the
// timer stopped.
func BenchmarkCommitSteps(b *testing.B) {
	w := benchWorker(b)
	hkey := string(keyMark(0, "edge", "bench-1"))
	var seq uint64
	var buf []byte
	var led, idx, sig time.Duration
	segs := 0
	for b.Loop() {
		b.StopTimer()
		bt := newBatchOn(w.n.idx.db, w.held, w.cnt)
		for range 2000 {
			seq++
			buf = benchPayload(buf[:0], int(seq))
			if err := w.apply(bt, "edge", "bench-1", wire.Record{Seq: seq, Payload: append([]byte(nil), buf...)}); err != nil {
				b.Fatal(err)
			}
		}
		bt.hwm[hkey] = seq
		pr, rec, err := w.prepare(bt)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		if err := w.n.led.Commit(pr); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := w.n.idx.applyLedger(0, 0, pr.Header.Number, pr.Entries, rec); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := w.n.led.Sign(0); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		led, idx, sig = led+t1.Sub(t0), idx+t2.Sub(t1), sig+t3.Sub(t2)
		segs++
		b.StopTimer()
		if err := w.moved(0, rec); err != nil {
			b.Fatal(err)
		}
		bt.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(led.Nanoseconds())/float64(segs), "ledger_ns/seg")
	b.ReportMetric(float64(idx.Nanoseconds())/float64(segs), "index_ns/seg")
	b.ReportMetric(float64(sig.Nanoseconds())/float64(segs), "sign_ns/seg")
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

// BenchmarkSettleStream is a partition worker's whole path on a real
// JetStream (in process, sync_always as a hub runs: every PubAck after an
// fsync) and real Badger and ledger files: a backlog of forwarded batches in
// TALLY_TX (4 providers, 100 records a message) is fetched, applied, sealed,
// published to TALLY_LEDGER, written and acked until every record is
// settled, one batch at a time (pipeline=off) or with the next batch filled
// while the previous one commits (pipeline=on). Each iteration publishes the
// backlog with the timer stopped, then times a node from Start until the
// last entry is committed (Start's catch-up and consumer creation are in
// both). ns/tx is the figure; the machine the issue measures on has 2 cores.
func BenchmarkSettleStream(b *testing.B) {
	const providers, msgs, per = 4, 50, 100 // 20,000 records an iteration
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("pipeline=%v", on), func(b *testing.B) {
			s := natstest.Run(b, func(o *server.Options) { o.SyncAlways = true })
			nc := natstest.Connect(b, s)
			js, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			subj := wire.NewSubjects("")
			if err := wire.EnsureStreams(ctx, js, subj, wire.StreamOptions{Partitions: 1, MaxMsgBytes: 8 << 20}); err != nil {
				b.Fatal(err)
			}
			proto := benchWorker(b)
			skey, _, err := store.GenerateKey("tally.bench/ledger")
			if err != nil {
				b.Fatal(err)
			}
			signer, err := note.NewSigner(skey)
			if err != nil {
				b.Fatal(err)
			}
			idxDir, ledDir := b.TempDir(), b.TempDir()
			seq := map[string]uint64{}
			var buf []byte
			total := uint64(0)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for range msgs {
					for p := range providers {
						prov := fmt.Sprintf("bench-%d", p)
						recs := make([]wire.Record, per)
						for i := range recs {
							seq[prov]++
							buf = benchPayload(buf[:0], int(total)+i+p*per)
							recs[i] = wire.Record{Seq: seq[prov], Payload: append([]byte(nil), buf...)}
						}
						total += per
						m := nats.NewMsg(subj.Tx("edge-1", prov))
						m.Data = wire.AppendBatch(nil, recs)
						m.Header.Set(wire.HdrNode, "edge-1")
						m.Header.Set(wire.HdrProvider, prov)
						m.Header.Set(wire.HdrMsgID, fmt.Sprintf("%s.%d", prov, seq[prov]))
						if _, err := js.PublishMsg(ctx, m); err != nil {
							b.Fatal(err)
						}
					}
				}
				idx, err := OpenIndex(idxDir, hclog.NewNullLogger())
				if err != nil {
					b.Fatal(err)
				}
				led, err := store.Open(store.Options{Dir: ledDir, Origin: "tally.bench/ledger", Signer: signer})
				if err != nil {
					b.Fatal(err)
				}
				n := New(Config{Subjects: subj, Partitions: []int{0}, SegmentMaxEntries: 2000, SegmentMaxAge: 200 * time.Millisecond,
					FetchBatch: 256, OrphanTimeout: time.Hour, Pipeline: on}, idx, led, proto.n.book, hclog.NewNullLogger())
				b.StartTimer()
				if err := n.Start(ctx, nc, js); err != nil {
					b.Fatal(err)
				}
				deadline := time.Now().Add(5 * time.Minute)
				for n.Stats().Entries < total {
					if time.Now().After(deadline) || n.Err() != nil {
						b.Fatalf("%d of %d settled (%v)", n.Stats().Entries, total, n.Err())
					}
					time.Sleep(time.Millisecond)
				}
				b.StopTimer()
				if err := n.Close(); err != nil {
					b.Fatal(err)
				}
				led.Close()
				idx.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/tx")
		})
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

// TestIndexMemory: the memory budget given reaches Badger, and one outside
// the limits fails the open.
func TestIndexMemory(t *testing.T) {
	x, err := OpenIndexWith(t.TempDir(), hclog.NewNullLogger(), IndexOptions{Memory: badgermem.Memory{MemTableBytes: 8 << 20, MemTables: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	o := x.db.Opts()
	if o.MemTableSize != 8<<20 || o.NumMemtables != 2 || o.BlockCacheSize != DefaultIndexMemory.BlockCacheBytes || o.IndexCacheSize != DefaultIndexMemory.IndexCacheBytes {
		t.Errorf("index opened with memtable %d × %d, block cache %d, index cache %d", o.MemTableSize, o.NumMemtables, o.BlockCacheSize, o.IndexCacheSize)
	}
	if _, err := OpenIndexWith(t.TempDir(), hclog.NewNullLogger(), IndexOptions{Memory: badgermem.Memory{MemTables: 1}}); err == nil {
		t.Error("an index with one memtable opened")
	}
}
