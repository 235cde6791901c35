package settle

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// syncBuf is a log sink the test can read while the node writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Count(s.b.Bytes(), []byte(sub))
}

// TestGapHeldUntilFilled is the gap storm of issue 16 (item 3) on a real
// JetStream and Badger: one record of an (edge, provider) is missing while
// many later batches are in the stream ahead of it, some of them twice, and
// AckWait is shorter than the time the gap stays open, so JetStream delivers
// held batches again. The missing batch lands at the stream tail, after all
// of them, as a replay or a forwarder resend does. The partition must settle
// every record once, within a bound, with a handful of gap warnings. Before
// the fix every gapped batch was NAKed and came back every 500 ms ahead of
// the stream tail, logging a warning each time.
func TestGapHeldUntilFilled(t *testing.T) {
	s := natstest.Run(t)
	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj := wire.NewSubjects("")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := wire.EnsureStreams(ctx, js, subj, wire.StreamOptions{Partitions: 1, MaxMsgBytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	w := benchWorker(t) // index and book in temp dirs
	skey, _, err := store.GenerateKey("tally.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	ledDir := t.TempDir()
	led, err := store.Open(store.Options{Dir: ledDir, Origin: "tally.test/ledger", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	logs := &syncBuf{}
	log := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	n := New(Config{Subjects: subj, Partitions: []int{0}, SegmentMaxEntries: 200, SegmentMaxAge: 20 * time.Millisecond,
		FetchBatch: 64, AckWait: time.Second}, w.n.idx, led, w.n.book, log)

	const later = 1500 // batches after the missing one, one record each
	pub := func(seq uint64, tag string) {
		body := wire.AppendBatch(nil, []wire.Record{{Seq: seq, Payload: benchPayload(nil, int(seq))}})
		m := nats.NewMsg(subj.Tx("edge-1", "p1"))
		m.Data = body
		m.Header.Set(wire.HdrNode, "edge-1")
		m.Header.Set(wire.HdrProvider, "p1")
		m.Header.Set(wire.HdrMsgID, fmt.Sprintf("%d%s", seq, tag))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	pub(1, "")
	for seq := uint64(3); seq < 3+later; seq++ {
		pub(seq, "")
	}
	for seq := uint64(3); seq < 3+later; seq += 7 {
		pub(seq, ".dup") // resends with other message ids
	}
	if err := n.Start(ctx, nc, js); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// The gap stays open for longer than AckWait: held batches are delivered
	// again while it is open.
	natstest.Eventually(t, 10*time.Second, func() error {
		if n.Stats().Gaps < later {
			return fmt.Errorf("%d gapped deliveries", n.Stats().Gaps)
		}
		return nil
	})
	// Load goes on: more batches of the provider keep arriving behind the
	// gap until the test ends.
	stop := make(chan struct{})
	var loadWG sync.WaitGroup
	var next uint64 = 3 + later
	loadWG.Add(1)
	go func() {
		defer loadWG.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			pub(next, "")
			next++
		}
	}()
	time.Sleep(2500 * time.Millisecond)
	pub(2, ".replay")
	filled := time.Now()
	// Converged: the missing record and everything held behind it are
	// settled while the load goes on (bounded: 15 s; it takes well under 1 s).
	natstest.Eventually(t, 15*time.Second, func() error {
		if e := n.Stats().Entries; e < later+2 {
			return fmt.Errorf("%d of %d settled with load going on", e, later+2)
		}
		return nil
	})
	t.Logf("%d held records settled %s after the missing one arrived", later+1, time.Since(filled).Round(time.Millisecond))
	close(stop)
	loadWG.Wait()
	total := next - 1
	natstest.Eventually(t, 20*time.Second, func() error {
		if e := n.Stats().Entries; e < total {
			return fmt.Errorf("%d of %d settled", e, total)
		}
		return nil
	})
	t.Logf("settled %d records; %d gapped deliveries; %d gap log lines", total, n.Stats().Gaps, logs.count("sequence gap"))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if st := n.Stats(); st.Entries != total {
		t.Errorf("%d entries, want %d", st.Entries, total)
	}
	seen := map[string]int{}
	if err := store.ForEachEntry(ledDir, func(e store.Entry) error { seen[e.Tx.ID]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if uint64(len(seen)) != total {
		t.Errorf("ledger holds %d ids, want %d", len(seen), total)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s in the ledger %d times", id, k)
		}
	}
	// One warning when the gap opens, one per gapWarnEvery while open, one
	// "closed" line.
	if c := logs.count("sequence gap"); c > 6 {
		t.Errorf("%d gap log lines; want a few\n%s", c, logs.b.String())
	}
}
