package settle

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// streamEnv is a real nats-server with the tally streams, a rules book and
// a ledger key; node() opens an index and ledger in dir and starts a settle
// node for partition 0 on them.
type streamEnv struct {
	t      *testing.T
	ctx    context.Context
	nc     *nats.Conn
	js     jetstream.JetStream
	subj   wire.Subjects
	signer note.Signer
	vkey   string
	proto  *worker // for its rules book
	seq    map[string]uint64
	logs   *syncBuf
}

func newStreamEnv(t *testing.T) *streamEnv {
	s := natstest.Run(t)
	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	subj := wire.NewSubjects("")
	if err := wire.EnsureStreams(ctx, js, subj, wire.StreamOptions{Partitions: 1, MaxMsgBytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := store.GenerateKey("tally.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &streamEnv{t: t, ctx: ctx, nc: nc, js: js, subj: subj, signer: signer, vkey: vkey, proto: benchWorker(t), seq: map[string]uint64{}, logs: &syncBuf{}}
}

type nodeDirs struct{ idx, led string }

func (e *streamEnv) open(d nodeDirs) (*Index, *store.Ledger) {
	log := hclog.New(&hclog.LoggerOptions{Output: e.logs, Level: hclog.Info})
	idx, err := OpenIndex(d.idx, log)
	if err != nil {
		e.t.Fatal(err)
	}
	led, err := store.Open(store.Options{Dir: d.led, Origin: "tally.test/ledger", Signer: e.signer})
	if err != nil {
		e.t.Fatal(err)
	}
	return idx, led
}

// node starts a settle node for partition 0; stop closes it and its stores.
func (e *streamEnv) node(d nodeDirs, opts ...func(*Config)) (n *Node, stop func()) {
	idx, led := e.open(d)
	log := hclog.New(&hclog.LoggerOptions{Output: e.logs, Level: hclog.Info})
	cfg := Config{Subjects: e.subj, Partitions: []int{0}, SegmentMaxEntries: 50, SegmentMaxAge: 20 * time.Millisecond,
		FetchBatch: 16, OrphanTimeout: time.Hour, Pipeline: true} // settle.pipeline's default
	for _, o := range opts {
		o(&cfg)
	}
	n = New(cfg, idx, led, e.proto.n.book, log)
	if err := n.Start(e.ctx, e.nc, e.js); err != nil {
		e.t.Fatal(err)
	}
	return n, func() {
		if err := n.Close(); err != nil {
			e.t.Errorf("close: %v", err)
		}
		led.Close()
		idx.Close()
	}
}

// send publishes one forwarded batch of payloads for (edge-1, provider).
func (e *streamEnv) send(provider string, payloads ...string) {
	e.t.Helper()
	var recs []wire.Record
	for _, p := range payloads {
		e.seq[provider]++
		recs = append(recs, wire.Record{Seq: e.seq[provider], Payload: []byte(p)})
	}
	m := nats.NewMsg(e.subj.Tx("edge-1", provider))
	m.Data = wire.AppendBatch(nil, recs)
	m.Header.Set(wire.HdrNode, "edge-1")
	m.Header.Set(wire.HdrProvider, provider)
	m.Header.Set(wire.HdrMsgID, fmt.Sprintf("%s.%d", provider, e.seq[provider]))
	if _, err := e.js.PublishMsg(e.ctx, m); err != nil {
		e.t.Fatal(err)
	}
}

func tx(id, typ, amount string, parent string) string {
	p := ""
	if parent != "" {
		p = `,"parent":"` + parent + `"`
	}
	return `{"id":"` + id + `","type":"` + typ + `"` + p + `,"amount":"` + amount + `","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z","game":"book-of-x","jurisdiction":"MT","brand":"main"}`
}

// workload sends bets, a duplicate, a conflict, a rollback that waits for
// its bet, one that never gets a parent, and records a reversal applies to:
// every kind of index change, and records that move marks without an entry.
func (e *streamEnv) workload(round int) {
	r := func(s string) string { return fmt.Sprintf("r%d-%s", round, s) }
	e.send("p1", tx(r("b1"), "bet", "10.00", ""), tx(r("b2"), "bet", "7.50", ""))
	e.send("p1", tx(r("rb3"), "rollback", "1.00", r("b3")))   // held: b3 comes later
	e.send("p1", tx(r("b1"), "bet", "10.00", ""))             // duplicate
	e.send("p1", tx(r("b2"), "bet", "9.99", ""))              // conflict
	e.send("p1", tx(r("rbX"), "rollback", "1.00", r("nope"))) // held for good
	e.send("p2", tx(r("w1"), "win", "3.25", ""))
	e.send("p1", tx(r("b3"), "bet", "4.00", ""), tx(r("rf1"), "refund", "2.00", r("b1")))
}

func waitEntries(t *testing.T, n *Node, want uint64) {
	natstest.Eventually(t, 15*time.Second, func() error {
		if got := n.Stats().Entries; got != want {
			return fmt.Errorf("%d entries, want %d", got, want)
		}
		if n.Stats().Lag != 0 {
			return fmt.Errorf("lag %d", n.Stats().Lag)
		}
		return nil
	})
}

// dumpIndex is every key and value of the index but the consumer start
// (c/, a property of this node's JetStream consumer, not of the ledger).
func dumpIndex(t *testing.T, dir string) map[string]string {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]string{}
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := string(it.Item().KeyCopy(nil))
			if strings.HasPrefix(k, pfxConsumer) {
				continue
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[k] = string(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffIndex(t *testing.T, a, b map[string]string) {
	t.Helper()
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		if a[k] != b[k] && bad < 10 {
			bad++
			t.Errorf("index key %q: live %q, rebuilt %q", k, a[k], b[k])
		}
	}
}

func verifyLedger(t *testing.T, dir, vkey string) store.Report {
	t.Helper()
	rep, err := store.Verify(dir, vkey, nil)
	if err != nil {
		t.Fatalf("verify %s: %v", dir, err)
	}
	return rep
}

// TestRebuildFromEmptyDir: a node settles (entries, duplicates, conflicts,
// held and released reversals), stops; its index and ledger directories
// are wiped; started again it rebuilds the partition from TALLY_LEDGER
// alone and ends with the same files, roots and index, byte for byte
// (every dedup record, mark, orphan, balance, exception and counter), and
// goes on settling: a resend is a duplicate, a held reversal is released
// by its late parent.
func TestRebuildFromEmptyDir(t *testing.T) {
	e := newStreamEnv(t)
	d := nodeDirs{t.TempDir(), t.TempDir()}
	n, stop := e.node(d)
	e.workload(1)
	waitEntries(t, n, 6)
	e.workload(2)
	waitEntries(t, n, 12)
	st := n.Stats()
	stop()
	if st.OrphansHeld != 2 || st.Duplicates != 2 || st.Conflicts != 2 || st.OrphansReleased != 2 {
		t.Fatalf("workload counters %+v", st.Counters)
	}
	idx, led := e.open(d)
	head := led.Head(0)
	bal, err := idx.Balances()
	if err != nil {
		t.Fatal(err)
	}
	led.Close()
	idx.Close()
	live := dumpIndex(t, d.idx)
	seg1, err := os.ReadFile(filepath.Join(d.led, "p000", "0000000000000001.seg"))
	if err != nil {
		t.Fatal(err)
	}
	verifyLedger(t, d.led, e.vkey)

	for _, dir := range []string{d.idx, d.led} {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	n2, stop2 := e.node(d)
	if got := n2.Stats(); got.Counters != st.Counters {
		t.Errorf("rebuilt counters %+v, live %+v", got.Counters, st.Counters)
	}
	stop2()
	idx, led = e.open(d)
	if h := led.Head(0); h.Root != head.Root || h.Size != head.Size || h.Segments != head.Segments || h.LastHash != head.LastHash {
		t.Errorf("rebuilt head %+v, live %+v", h, head)
	}
	bal2, err := idx.Balances()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(bal2) != fmt.Sprint(bal) {
		t.Errorf("rebuilt balances %v, live %v", bal2, bal)
	}
	led.Close()
	idx.Close()
	diffIndex(t, live, dumpIndex(t, d.idx))
	if b, err := os.ReadFile(filepath.Join(d.led, "p000", "0000000000000001.seg")); err != nil || !bytes.Equal(b, seg1) {
		t.Errorf("rebuilt segment 1 differs (%v)", err)
	}
	verifyLedger(t, d.led, e.vkey)

	// The rebuilt node settles on: round 1 again is all duplicates (no new
	// entry), and a late parent releases the reversal held since round 1.
	n3, stop3 := e.node(d)
	e.send("p1", tx("r1-b1", "bet", "10.00", ""))
	e.send("p1", tx("r1-nope", "bet", "5.00", ""))
	waitEntries(t, n3, 14)
	if s := n3.Stats(); s.Duplicates != st.Duplicates+1 || s.OrphansReleased != st.OrphansReleased+1 {
		t.Errorf("after the rebuild: %+v", s.Counters)
	}
	stop3()
	verifyLedger(t, d.led, e.vkey)
}

// TestCatchUpAfterPublishBeforeApply: a commit published to TALLY_LEDGER
// whose local apply never happened (the process died between PubAck and
// the segment file) is applied at the next start by catch-up, exactly once.
func TestCatchUpAfterPublishBeforeApply(t *testing.T) {
	e := newStreamEnv(t)
	d := nodeDirs{t.TempDir(), t.TempDir()}
	n, stop := e.node(d)
	e.workload(1)
	waitEntries(t, n, 6)
	stop()

	// One more commit, published but not applied: what a crash right after
	// the PubAck leaves.
	idx, led := e.open(d)
	w := &worker{n: New(Config{Subjects: e.subj}, idx, led, e.proto.n.book, hclog.NewNullLogger()), p: 0, log: hclog.NewNullLogger()}
	w.n.js = e.js
	if err := w.catchUp(e.ctx); err != nil {
		t.Fatal(err)
	}
	b := newBatchOn(idx.db, nil, w.cnt)
	if err := w.apply(b, "edge-1", "p3", wire.Record{Seq: 1, Payload: []byte(tx("x1", "bet", "1.00", ""))}); err != nil {
		t.Fatal(err)
	}
	b.hwm[string(keyMark(0, "edge-1", "p3"))] = 1
	pr, rec, err := w.prepare(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.publish(e.ctx, pr, rec); err != nil {
		t.Fatal(err)
	}
	b.close()
	before := led.Head(0)
	led.Close()
	idx.Close()

	n2, stop2 := e.node(d)
	if got := n2.Stats().Entries; got != 7 {
		t.Errorf("after catch-up %d entries, want 7", got)
	}
	e.seq["p3"] = 1
	e.send("p3", tx("x1", "bet", "1.00", ""), tx("x2", "bet", "2.00", "")) // x1 is a redelivery now
	waitEntries(t, n2, 8)
	stop2()
	idx, led = e.open(d)
	if h := led.Head(0); h.Segments != before.Segments+2 {
		t.Errorf("segments %d, want %d", h.Segments, before.Segments+2)
	}
	led.Close()
	idx.Close()
	seen := map[string]int{}
	if err := store.ForEachEntry(d.led, func(en store.Entry) error { seen[en.Tx.ID]++; return nil }); err != nil {
		t.Fatal(err)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s in the ledger %d times", id, k)
		}
	}
	if seen["x1"] != 1 || seen["x2"] != 1 {
		t.Errorf("x1 %d, x2 %d times", seen["x1"], seen["x2"])
	}
	verifyLedger(t, d.led, e.vkey)
}

// TestFencedStepsDown: another writer appends to the partition behind the
// node's back; the node's next commit is fenced, it writes nothing of it
// (no segment file, no checkpoint, no index change), steps down for the
// partition and says so, and the process goes on (Err stays nil). This is
// the behaviour under leases (StepDownOnFence); static ownership catches
// up instead (TestFencedStaticCatchesUp).
func TestFencedStepsDown(t *testing.T) {
	e := newStreamEnv(t)
	d := nodeDirs{t.TempDir(), t.TempDir()}
	n, stop := e.node(d, func(c *Config) { c.StepDownOnFence = true })
	defer stop()
	e.send("p1", tx("a1", "bet", "1.00", ""))
	waitEntries(t, n, 1)
	// The other writer: any message on the partition's subject moves its
	// last sequence.
	if _, err := e.js.Publish(e.ctx, e.subj.Ledger(0), []byte("other writer")); err != nil {
		t.Fatal(err)
	}
	e.send("p1", tx("a2", "bet", "2.00", ""))
	natstest.Eventually(t, 15*time.Second, func() error {
		if f := n.Fenced(); len(f) != 1 || f[0] != 0 {
			return fmt.Errorf("fenced %v", f)
		}
		return nil
	})
	if err := n.Err(); err != nil {
		t.Errorf("node failed: %v", err)
	}
	if c := e.logs.count("PARTITION FENCED"); c != 1 {
		t.Errorf("%d step-down log lines, want 1", c)
	}
	if s := n.Stats(); s.Entries != 1 || s.Segments != 1 {
		t.Errorf("after the fence: %+v", s.Counters)
	}
	if _, err := os.Stat(filepath.Join(d.led, "p000", "0000000000000002.seg")); !os.IsNotExist(err) {
		t.Errorf("a fenced commit left segment 2 on disk (%v)", err)
	}
	if h := n.led.Head(0); h.Segments != 1 || h.Signed != 1 {
		t.Errorf("head after the fence %+v", h)
	}
}

// TestFencedStaticCatchesUp: with static ownership a fence is repaired
// without a restart. A second writer (a worker over its own index, caught up
// from the stream) appends a commit to partition 0 behind the running
// node's back — what the node's own publish whose PubAck was lost beyond
// the duplicate window looks like. The node's next commit is fenced, writes
// nothing, catches up from TALLY_LEDGER (taking the other commit), and goes
// on: its own batch is redelivered and settled, every transaction once,
// verify passes, and the node never failed or stepped down.
func TestFencedStaticCatchesUp(t *testing.T) {
	e := newStreamEnv(t)
	d := nodeDirs{t.TempDir(), t.TempDir()}
	n, stop := e.node(d)
	defer stop()
	e.send("p1", tx("a1", "bet", "1.00", ""), tx("a2", "bet", "2.00", ""))
	waitEntries(t, n, 2)

	e.secondWriterCommit(t)

	e.send("p1", tx("a3", "bet", "3.00", ""))
	waitEntries(t, n, 4) // a1, a2, z1 (caught up), a3 (its commit fenced once, then redelivered)
	if f := n.Fenced(); len(f) != 0 {
		t.Errorf("stepped down for %v under static ownership", f)
	}
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
	for _, id := range []string{"a1", "a2", "a3", "z1"} {
		if seen[id] != 1 {
			t.Errorf("%s in the ledger %d times, want 1", id, seen[id])
		}
	}
	if len(seen) != 4 {
		t.Errorf("ledger ids %v", seen)
	}
	verifyLedger(t, d.led, e.vkey)
}

// TestLedgerMsgRoundTrip: the message framing gives back the segment and
// state record it was built from, and refuses a changed state record.
func TestLedgerMsgRoundTrip(t *testing.T) {
	seg := []byte("segment bytes")
	r := &stateRec{Marks: map[string]uint64{"edge\x00p1": 7}, Release: []string{"p1\x00a\x00b"}, Counters: Counters{Entries: 3}}
	m, err := encodeLedgerMsg("tally.ledger.2", 2, 5, seg, r)
	if err != nil {
		t.Fatal(err)
	}
	gotSeg, gotRec, segs, err := decodeLedgerMsg(m.Header, m.Data, 2)
	if err != nil || !bytes.Equal(gotSeg, seg) || segs != 5 || fmt.Sprint(gotRec) != fmt.Sprint(r) {
		t.Fatalf("decode: %q %+v %d %v", gotSeg, gotRec, segs, err)
	}
	if !bytes.Equal(SegmentOf(m.Header, m.Data), seg) {
		t.Error("SegmentOf")
	}
	if _, _, _, err := decodeLedgerMsg(m.Header, m.Data, 3); err == nil {
		t.Error("partition 2's message accepted for partition 3")
	}
	bad := bytes.Clone(m.Data)
	bad[len(bad)-2] ^= 1
	if _, _, _, err := decodeLedgerMsg(m.Header, bad, 2); err == nil {
		t.Error("changed state record accepted")
	}
	empty, err := encodeLedgerMsg("tally.ledger.2", 2, 5, nil, r)
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _, err := decodeLedgerMsg(empty.Header, empty.Data, 2); err != nil || s != nil || SegmentOf(empty.Header, empty.Data) != nil {
		t.Errorf("state-only message: segment %q, %v", s, err)
	}
}

// secondWriterCommit is a second writer of partition 0: a worker over its
// own index and ledger, caught up from the stream, publishes one commit
// (transaction z1 of p9 through edge-2) and closes.
func (e *streamEnv) secondWriterCommit(t *testing.T) {
	t.Helper()
	d2 := nodeDirs{t.TempDir(), t.TempDir()}
	idx2, led2 := e.open(d2)
	w2 := &worker{n: New(Config{Subjects: e.subj}, idx2, led2, e.proto.n.book, hclog.NewNullLogger()), p: 0, log: hclog.NewNullLogger()}
	w2.n.js = e.js
	if err := w2.catchUp(e.ctx); err != nil {
		t.Fatal(err)
	}
	b := newBatchOn(idx2.db, nil, w2.cnt)
	if err := w2.apply(b, "edge-2", "p9", wire.Record{Seq: 1, Payload: []byte(tx("z1", "bet", "9.00", ""))}); err != nil {
		t.Fatal(err)
	}
	b.hwm[string(keyMark(0, "edge-2", "p9"))] = 1
	pr, rec, err := w2.prepare(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w2.publish(e.ctx, pr, rec); err != nil {
		t.Fatal(err)
	}
	b.close()
	led2.Close()
	idx2.Close()
}
