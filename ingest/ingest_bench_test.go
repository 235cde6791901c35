package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// BenchmarkForward is the forwarder's per-batch work against a real
// JetStream hub with sync_interval always (as tally runs it): read the next
// records of one provider from the WAL by cursor, pack them into one message
// (wire.AppendBatch, SHA-256 header), publish async and wait for the PubAck.
// Each op is one message of batch records.
func BenchmarkForward(b *testing.B) {
	for _, batch := range []int{100, 500} {
		b.Run(fmt.Sprintf("batch=%d/sync=always", batch), func(b *testing.B) {
			_, js := hub(b, func(o *server.Options) { o.SyncAlways = true; o.MaxPayload = 8 << 20 })
			cfg := testConfig(b.TempDir())
			cfg.ForwardBatch = batch
			cfg.BudgetBytes = 1 << 40
			n, err := New(cfg, testLogger(b))
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			fjs, err := forwarderJetStream(js, n.cfg)
			if err != nil {
				b.Fatal(err)
			}
			f := newForwarder(n, fjs)
			defer f.cancel()
			const provider = "p1"
			ps := n.provider(provider)
			var committed int
			fill := func() { // 20k more records, outside the timer
				b.StopTimer()
				for range 20 {
					reqs := make([]*request, 0, 1000)
					for range 1000 {
						committed++
						reqs = append(reqs, &request{provider: provider, items: []item{testItem(fmt.Sprint("f", committed))}})
					}
					n.wal.commit(reqs, time.Now())
				}
				b.StartTimer()
			}
			next := uint64(1)
			b.ReportAllocs()
			for b.Loop() {
				if next+uint64(batch) > ps.committed.Load()+1 {
					fill()
				}
				fl, err := f.publish(ps, next, batch)
				if err != nil {
					b.Fatal(err)
				}
				if !fl.wait(context.Background()) || fl.err != nil {
					b.Fatalf("publish %d-%d: %v", fl.first, fl.last, fl.err)
				}
				next = fl.last + 1
			}
			b.ReportMetric(float64(next-1)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkPrepare is the edge's per-request CPU before the committer:
// split a provider request (canonical dialect) and decode, canonicalise and
// hash each item. Each op is one request; ns/record is per transaction.
func BenchmarkPrepare(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("items=%d", size), func(b *testing.B) {
			n, err := New(testConfig(b.TempDir()), testLogger(b))
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			body := benchBody(size)
			subject := n.cfg.Subjects.In("p1")
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r := n.prepare(subject, body, "")
				if len(r.items) != size || r.items[0].rej != nil {
					b.Fatalf("%d items, first %+v", len(r.items), r.items[0].rej)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/record")
		})
	}
}

// benchBody is a request of size transactions of the shape tally bench sends
// (one object when size is 1, else an array).
func benchBody(size int) []byte {
	var buf []byte
	if size > 1 {
		buf = append(buf, '[')
	}
	for i := range size {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = fmt.Appendf(buf, `{"id":"bench-%08d","type":"bet","amount":"12.50","currency":"EUR","occurred_at":"2026-11-22T10:00:00.123Z","round":"R%d","game":"book-of-x","category":"slot","jurisdiction":"MT","player":"pl-%d"}`, i, i, i%977)
	}
	if size > 1 {
		buf = append(buf, ']')
	}
	return buf
}
