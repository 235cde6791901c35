package settle

import (
	"fmt"
	"os"
	"testing"

	"github.com/tally-mesh/tally/store"
)

// pipelined is the node option of the commit pipeline with tiny segments,
// so that nearly every batch fills while the one before it still commits and
// reads that one's changes through its overlay.
func pipelined(on bool) func(*Config) {
	return func(c *Config) {
		c.Pipeline = on
		c.SegmentMaxEntries = 2
		c.FetchBatch = 1
	}
}

// settledRun is what a workload settled to, independent of how it was cut
// into segments.
type settledRun struct {
	cnt      Counters // Segments zeroed
	balances string
	entries  []string // provider/id index net, in ledger order
}

func readRun(t *testing.T, e *streamEnv, d nodeDirs, cnt Counters) settledRun {
	t.Helper()
	idx, led := e.open(d)
	bal, err := idx.Balances()
	if err != nil {
		t.Fatal(err)
	}
	led.Close()
	idx.Close()
	cnt.Segments = 0
	r := settledRun{cnt: cnt, balances: fmt.Sprint(bal)}
	err = store.ForEachEntry(d.led, func(en store.Entry) error {
		r.entries = append(r.entries, fmt.Sprintf("%s/%s %d %s", en.Provider, en.Tx.ID, en.Index, en.Net))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPipelineMatchesSerial: the same backlog (five rounds of the workload:
// duplicates, conflicts, held and released reversals, a reversal applying to
// an earlier batch's record) settled one batch at a time and with the commit
// pipeline gives the same counters, balances and ledger entries in the same
// order; the pipelined node's live index equals, byte for byte, the index
// rebuilt from TALLY_LEDGER alone; both ledgers verify. A batch that did not
// see the one committing before it (a dedup record, a mark, a held reversal)
// would settle a duplicate twice or release a reversal wrongly, and differ.
func TestPipelineMatchesSerial(t *testing.T) {
	const rounds = 5
	var runs [2]settledRun
	for i, on := range []bool{false, true} {
		e := newStreamEnv(t)
		t.Cleanup(func() {
			if t.Failed() {
				e.logs.mu.Lock()
				t.Logf("logs: %s", e.logs.b.String())
				e.logs.mu.Unlock()
			}
		})
		for r := 1; r <= rounds; r++ {
			e.workload(r)
		}
		d := nodeDirs{t.TempDir(), t.TempDir()}
		n, stop := e.node(d, pipelined(on))
		waitEntries(t, n, 6*rounds)
		st := n.Stats()
		stop()
		if st.Duplicates != rounds || st.Conflicts != rounds || st.OrphansReleased != rounds || st.OrphansHeld != rounds {
			t.Errorf("pipeline %v: counters %+v", on, st.Counters)
		}
		if st.Segments < 10 {
			t.Errorf("pipeline %v: %d segments: the batches did not follow each other", on, st.Segments)
		}
		runs[i] = readRun(t, e, d, st.Counters)
		verifyLedger(t, d.led, e.vkey)
		if !on {
			continue
		}
		live := dumpIndex(t, d.idx)
		for _, dir := range []string{d.idx, d.led} {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}
		_, stop2 := e.node(d, pipelined(on))
		stop2()
		diffIndex(t, live, dumpIndex(t, d.idx))
	}
	s, p := runs[0], runs[1]
	if s.cnt != p.cnt {
		t.Errorf("counters: serial %+v, pipelined %+v", s.cnt, p.cnt)
	}
	if s.balances != p.balances {
		t.Errorf("balances: serial %s, pipelined %s", s.balances, p.balances)
	}
	if fmt.Sprint(s.entries) != fmt.Sprint(p.entries) {
		t.Errorf("entries:\nserial    %v\npipelined %v", s.entries, p.entries)
	}
	if len(p.entries) != 6*rounds {
		t.Errorf("%d entries in the pipelined ledger, want %d", len(p.entries), 6*rounds)
	}
}

// TestPipelineFenceDiscardsNext: with the pipeline on, a second writer
// appends to partition 0 behind the node's back while a backlog flows. The
// node's commit in flight is fenced; the batch filled on top of it is
// given back (Nak) instead of being prepared on a chain head that never
// landed; the node catches up from TALLY_LEDGER and settles everything,
// every transaction exactly once, and the ledger verifies.
func TestPipelineFenceDiscardsNext(t *testing.T) {
	e := newStreamEnv(t)
	d := nodeDirs{t.TempDir(), t.TempDir()}
	n, stop := e.node(d, pipelined(true))
	defer stop()
	e.send("p1", tx("a0", "bet", "1.00", ""))
	waitEntries(t, n, 1)

	// The second writer publishes one commit to partition 0.
	e.secondWriterCommit(t)

	const more = 30
	for i := range more {
		e.send("p1", tx(fmt.Sprintf("a%d", i+1), "bet", "1.00", ""))
	}
	waitEntries(t, n, 1+1+more)
	if err := n.Err(); err != nil {
		t.Errorf("node failed: %v", err)
	}
	if c := e.logs.count("catching up from it and going on"); c < 1 {
		t.Errorf("no fence-and-catch-up log line")
	}
	stop()
	seen := map[string]int{}
	if err := store.ForEachEntry(d.led, func(en store.Entry) error { seen[en.Tx.ID]++; return nil }); err != nil {
		t.Fatal(err)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s in the ledger %d times", id, k)
		}
	}
	if len(seen) != 2+more {
		t.Errorf("%d ids in the ledger, want %d", len(seen), 2+more)
	}
	verifyLedger(t, d.led, e.vkey)
}
