//go:build linux

package settle

import (
	"bufio"
	"expvar"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tally-mesh/tally/wire"
)

// BenchmarkIndexGrowth commits b.N segments of 2,000 transactions (apply,
// seal, index commit, all fsynced) into one index, so the index grows the
// way a soak grows it, and reports what each transaction costs as it does:
// index-B/tx is the index directory's allocated size over the transactions;
// for the first and the last tenth of the segments, written-B/tx is what the
// process wrote to disk (ledger included) and cpu-ns/tx the process CPU time
// (both Linux, /proc/self/io and getrusage: mechanism measures that hold on
// a busy machine, unlike wall time). Run it with a fixed count:
// -bench IndexGrowth -benchtime 1000x.
func BenchmarkIndexGrowth(b *testing.B) {
	idxDir := b.TempDir()
	w := benchWorkerIn(b, idxDir)
	hkey := string(keyMark(0, "edge", "bench-1"))
	const per = 2000
	var seq uint64
	var buf []byte
	var marks []procSample
	for b.Loop() {
		marks = append(marks, sampleProc())
		bt := newBatchOn(w.n.idx.db, w.held, w.cnt)
		for range per {
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
	marks = append(marks, sampleProc())
	if w.cnt.Entries != seq {
		b.Fatalf("settled %d of %d", w.cnt.Entries, seq)
	}
	b.ReportMetric(float64(dirBytes(idxDir))/float64(seq), "index-B/tx")
	tenth := max((len(marks)-1)/10, 1)
	half := (len(marks) - 1) / 2
	first, last := marks[0].to(marks[tenth], tenth*per), marks[len(marks)-1-tenth].to(marks[len(marks)-1], tenth*per)
	all, second := marks[0].to(marks[len(marks)-1], (len(marks)-1)*per), marks[half].to(marks[len(marks)-1], (len(marks)-1-half)*per)
	// Compaction comes in bursts: the halves and the whole run are steadier
	// figures than the tenths.
	b.ReportMetric(all.lsm, "lsm-B/tx")
	b.ReportMetric(second.lsm, "lsm-B/tx-2nd-half")
	b.ReportMetric(all.written, "written-B/tx")
	b.ReportMetric(second.written, "written-B/tx-2nd-half")
	b.ReportMetric(first.written, "written-B/tx-first10%")
	b.ReportMetric(last.written, "written-B/tx-last10%")
	b.ReportMetric(first.cpu, "cpu-ns/tx-first10%")
	b.ReportMetric(last.cpu, "cpu-ns/tx-last10%")
	b.ReportMetric(second.cpu, "cpu-ns/tx-2nd-half")
	b.ReportMetric(all.wchar, "wchar-B/tx")
	b.ReportMetric(all.vlog, "vlog-B/tx")
}

// procIO is one field of /proc/self/io (write_bytes: what this process
// caused to be written to storage).
func procIO(name string) (int64, bool) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+": "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// dirBytes is the allocated size of every file under dir (sparse files
// count what they use, not their length).
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// procSample is the process's disk writes and CPU time at one moment.
type procSample struct {
	written int64         // /proc/self/io write_bytes
	cpu     time.Duration // user + system
	lsm     int64         // Badger's own count (expvar) of bytes it wrote to L0 and by compaction
	vlog    int64         // Badger's count of bytes it wrote to the value log
	wchar   int64         // /proc/self/io wchar: bytes passed to write syscalls (the ledger; Badger writes through mmap)
}

func sampleProc() procSample {
	var s procSample
	s.written, _ = procIO("write_bytes")
	s.wchar, _ = procIO("wchar")
	if v, ok := expvar.Get("badger_write_bytes_l0").(*expvar.Int); ok {
		s.lsm += v.Value()
	}
	if v, ok := expvar.Get("badger_write_bytes_vlog").(*expvar.Int); ok {
		s.vlog = v.Value()
	}
	if m, ok := expvar.Get("badger_write_bytes_compaction").(*expvar.Map); ok {
		m.Do(func(kv expvar.KeyValue) {
			if v, ok := kv.Value.(*expvar.Int); ok {
				s.lsm += v.Value()
			}
		})
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// to is the per-transaction cost between s and e over n transactions.
func (s procSample) to(e procSample, n int) (r struct{ written, cpu, lsm, vlog, wchar float64 }) {
	r.wchar = float64(e.wchar-s.wchar) / float64(n)
	r.vlog = float64(e.vlog-s.vlog) / float64(n)
	r.written = float64(e.written-s.written) / float64(n)
	r.lsm = float64(e.lsm-s.lsm) / float64(n)
	r.cpu = float64((e.cpu - s.cpu).Nanoseconds()) / float64(n)
	return r
}
