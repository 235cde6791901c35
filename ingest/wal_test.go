package ingest

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/internal/badgermem"
	"github.com/tally-mesh/tally/wire"
)

// openWAL opens a bare WAL (no NATS) for direct tests and benchmarks.
func openWAL(tb testing.TB, cfg Config) *wal {
	tb.Helper()
	cfg = cfg.withDefaults()
	db, err := openDB(cfg.WALDir, hclog.NewNullLogger(), cfg.EncryptionKey, cfg.KeyRotation, cfg.WALMemory)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	w := &wal{db: db, log: hclog.NewNullLogger(), cfg: cfg, txnBytesMax: db.MaxBatchSize() / 2, txnEntriesMax: db.MaxBatchCount() / 2}
	if _, err := w.load(); err != nil {
		tb.Fatal(err)
	}
	return w
}

func testItem(id string) item {
	canon := fmt.Appendf(nil, `{"id":%q,"type":"bet","amount":"10.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z","game":"book-of-x","player":"9f2c41d7"}`, id)
	return item{raw: canon, id: id, canon: canon, hash: sha256.Sum256(canon)}
}

// TestCommitSplitsGroups: a group larger than GroupMax is cut into several
// Badger transactions, still gapless, with in-group duplicates spanning the cut.
func TestCommitSplitsGroups(t *testing.T) {
	w := openWAL(t, Config{NodeID: testNode, WALDir: t.TempDir(), GroupMax: 7})
	var reqs []*request
	for i := range 30 {
		reqs = append(reqs, &request{provider: "p1", items: []item{testItem(fmt.Sprint("t", i%25))}})
	}
	res := w.commit(reqs, time.Now())
	if res.accepted != 25 || res.duplicates != 5 {
		t.Fatalf("commit: %+v, want 25 accepted, 5 duplicates", res)
	}
	for i, r := range reqs {
		a := r.items[0].ans
		if want := uint64(i%25 + 1); a.EdgeSeq != want {
			t.Errorf("item %d: %+v, want seq %d", i, a, want)
		}
	}
	if w.last["p1"] != 25 {
		t.Errorf("last seq %d, want 25", w.last["p1"])
	}
}

// BenchmarkWALGroupCommit measures the accept path without NATS: decode is
// excluded, each op is one record, a group is one Badger txn with SyncWrites.
func BenchmarkWALGroupCommit(b *testing.B) {
	for _, group := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("group=%d", group), func(b *testing.B) {
			w := openWAL(b, Config{NodeID: testNode, WALDir: b.TempDir(), GroupMax: group, BudgetBytes: 1 << 40})
			reqs := make([]*request, 0, group)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; {
				reqs = reqs[:0]
				for j := 0; j < group && i < b.N; j++ {
					reqs = append(reqs, &request{provider: "p1", items: []item{testItem(fmt.Sprint("t", i))}})
					i++
				}
				w.commit(reqs, time.Now())
				if a := reqs[len(reqs)-1].items[0].ans; a.Status != wire.StatusAccepted {
					b.Fatalf("answer %+v", a)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// TestWALMemory: Config.WALMemory reaches Badger (zero fields take
// DefaultWALMemory's), and a memtable too small for a largest record is a
// config error.
func TestWALMemory(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.WALMemory = badgermem.Memory{MemTableBytes: 16 << 20, MemTables: 2}
	n, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	o := n.wal.db.Opts()
	if o.MemTableSize != 16<<20 || o.NumMemtables != 2 || o.BlockCacheSize != DefaultWALMemory.BlockCacheBytes || o.IndexCacheSize != DefaultWALMemory.IndexCacheBytes {
		t.Errorf("WAL opened with memtable %d × %d, block cache %d, index cache %d", o.MemTableSize, o.NumMemtables, o.BlockCacheSize, o.IndexCacheSize)
	}
	cfg = testConfig(t.TempDir())
	cfg.WALMemory.MemTableBytes = 8 << 20
	if n, err := New(cfg, testLogger(t)); err == nil {
		n.Close()
		t.Error("a WAL with 8 MiB memtables was accepted")
	}
}
