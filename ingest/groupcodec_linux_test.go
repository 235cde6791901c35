//go:build linux

package ingest

import (
	"crypto/sha256"
	"strconv"
	"testing"
	"time"

	"github.com/tally-mesh/tally/wire"
)

// BenchmarkWALCompression commits b.N groups of 1,000 records (one
// provider, SyncWrites, nothing trimmed) with ingest.wal_compression s2 and
// none, for payloads shaped like tally bench's and for varied ones (two
// random hex fields each). Per record: stored-B/tx is the WAL's logical size
// (m/bytes: group and dedup entries as stored), wal-B/tx the WAL directory's
// allocated size, written-B/tx what the process wrote to disk (Linux
// /proc/self/io) and cpu-ns/tx its CPU time (getrusage). Run it with a fixed
// count: -bench WALCompression -benchtime 100x. The
// payloads are built before the clock starts.
func BenchmarkWALCompression(b *testing.B) {
	for _, varied := range []bool{false, true} {
		for _, comp := range []string{wire.CompressionS2, wire.CompressionNone} {
			name := map[bool]string{false: "payload=bench", true: "payload=varied"}[varied]
			b.Run(name+"/compression="+comp, func(b *testing.B) {
				dir := b.TempDir()
				w := openWAL(b, Config{NodeID: testNode, WALDir: dir, GroupMax: 1000, BudgetBytes: 1 << 40, WALCompression: comp})
				const per = 1000
				groups := make([][]*request, b.N) // built before the clock and the CPU sample start
				n := 0
				for g := range groups {
					for _, c := range benchLike(per, varied, uint64(g)) {
						n++
						id := "b0-" + strconv.Itoa(g) + "-" + strconv.Itoa(len(groups[g]))
						groups[g] = append(groups[g], &request{provider: "p1", items: []item{{raw: c, id: id, canon: c, hash: sha256.Sum256(c)}}})
					}
				}
				b.ResetTimer()
				start := sampleProc()
				for _, reqs := range groups {
					w.commit(reqs, time.Now())
					if a := reqs[len(reqs)-1].items[0].ans; a.Status != wire.StatusAccepted {
						b.Fatalf("answer %+v", a)
					}
				}
				b.StopTimer()
				end := sampleProc()
				cost := start.to(end, n)
				b.ReportMetric(float64(w.used())/float64(n), "stored-B/tx")
				b.ReportMetric(float64(dirBytes(dir))/float64(n), "wal-B/tx")
				b.ReportMetric(cost.written, "written-B/tx")
				b.ReportMetric(cost.cpu, "cpu-ns/tx")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "wall-ns/tx")
			})
		}
	}
}

// BenchmarkGroupCodec is the codec alone on one group of 1,000 bench-shaped
// records: compress (what the committer adds per group) and decode + split
// into a reused reader (what the forwarder adds per group read).
func BenchmarkGroupCodec(b *testing.B) {
	plain := plainGroup(1, time.Now().UnixNano(), benchLike(1000, false, 1))
	v := compressGroup(plain)
	key := groupKey("p1", 1000)
	b.Run("compress", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		b.ReportAllocs()
		for b.Loop() {
			compressGroup(plain)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/record")
	})
	for _, tc := range []struct {
		name string
		v    []byte
	}{{"split/compressed", v}, {"split/plain", plain}} {
		b.Run(tc.name, func(b *testing.B) {
			r := getGroupReader()
			defer r.release()
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.split(key, tc.v); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/record")
		})
	}
}
