//go:build linux

package ingest

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/wire"
)

// BenchmarkWALGrowth commits b.N groups of 1,000 records (one provider,
// SyncWrites) into one WAL that nothing trims (retention is longer than the
// run, as in a soak), and reports what each record costs as the WAL grows:
// wal-B/tx is the WAL directory's allocated size over the records; for the
// first and the last tenth of the groups, written-B/tx is what the process
// wrote to disk and cpu-ns/tx its CPU time (Linux /proc/self/io and
// getrusage: mechanism measures that hold on a busy machine, unlike wall
// time). Run it with a fixed count: -bench WALGrowth -benchtime 1000x.
//
// It also reports what stalls a commit: commit-p99-ms and commit-max-ms (wall
// time of one group's commit, noisy on a shared machine) and l0-stall-ms,
// the time Badger's memtable flush waited for L0 to shrink (its own
// "L0 was stalled" log), during which commits queue behind full memtables.
func BenchmarkWALGrowth(b *testing.B) {
	dir := b.TempDir()
	stalls := &stallLog{}
	cfg := Config{NodeID: testNode, WALDir: dir, GroupMax: 1000, BudgetBytes: 1 << 40}.withDefaults()
	db, err := openDB(dir, hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: stalls}), nil, 0, cfg.WALMemory)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	w := &wal{db: db, log: hclog.NewNullLogger(), cfg: cfg, txnBytesMax: db.MaxBatchSize() / 2, txnEntriesMax: db.MaxBatchCount() / 2}
	if _, err := w.load(); err != nil {
		b.Fatal(err)
	}
	const per = 1000
	reqs := make([]*request, 0, per)
	var marks []procSample
	var commits []time.Duration
	n := 0
	for b.Loop() {
		marks = append(marks, sampleProc())
		reqs = reqs[:0]
		for range per {
			n++
			reqs = append(reqs, &request{provider: "p1", items: []item{testItem(fmt.Sprintf("%08x-%d", uint32(n)*2654435761, n))}})
		}
		t0 := time.Now()
		w.commit(reqs, time.Now())
		commits = append(commits, time.Since(t0))
		if a := reqs[len(reqs)-1].items[0].ans; a.Status != wire.StatusAccepted {
			b.Fatalf("answer %+v", a)
		}
	}
	marks = append(marks, sampleProc())
	slices.Sort(commits)
	b.ReportMetric(float64(commits[len(commits)*99/100].Microseconds())/1000, "commit-p99-ms")
	b.ReportMetric(float64(commits[len(commits)-1].Microseconds())/1000, "commit-max-ms")
	b.ReportMetric(float64(stalls.total().Milliseconds()), "l0-stall-ms")
	b.ReportMetric(float64(dirBytes(dir))/float64(n), "wal-B/tx")
	tenth := max((len(marks)-1)/10, 1)
	first, last := marks[0].to(marks[tenth], tenth*per), marks[len(marks)-1-tenth].to(marks[len(marks)-1], tenth*per)
	b.ReportMetric(first.written, "written-B/tx-first10%")
	b.ReportMetric(last.written, "written-B/tx-last10%")
	b.ReportMetric(first.cpu, "cpu-ns/tx-first10%")
	b.ReportMetric(last.cpu, "cpu-ns/tx-last10%")
}

// stallLog sums the durations of Badger's "L0 was stalled for <d>" lines.
type stallLog struct {
	mu  sync.Mutex
	sum time.Duration
}

func (s *stallLog) Write(p []byte) (int, error) {
	if _, rest, ok := strings.Cut(string(p), "L0 was stalled for "); ok {
		if d, err := time.ParseDuration(strings.TrimSpace(rest)); err == nil {
			s.mu.Lock()
			s.sum += d
			s.mu.Unlock()
		}
	}
	return len(p), nil
}

func (s *stallLog) total() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sum
}

// procSample is the process's disk writes and CPU time at one moment.
type procSample struct {
	written int64         // /proc/self/io write_bytes
	cpu     time.Duration // user + system
}

func sampleProc() procSample {
	var s procSample
	if f, err := os.Open("/proc/self/io"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
				s.written, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		f.Close()
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// to is the per-record cost between s and e over n records.
func (s procSample) to(e procSample, n int) (r struct{ written, cpu float64 }) {
	r.written = float64(e.written-s.written) / float64(n)
	r.cpu = float64((e.cpu - s.cpu).Nanoseconds()) / float64(n)
	return r
}

// dirBytes is the allocated size of every file under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}
