package ingest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

func askReplay(t *testing.T, nc *nats.Conn, p string, from, to uint64) wire.ReplayReply {
	t.Helper()
	b, _ := json.Marshal(wire.ReplayRequest{Provider: p, From: from, To: to})
	m, err := nc.Request(subjects.Replay(testNode), b, 10*time.Second)
	if err != nil {
		t.Fatalf("replay request: %v", err)
	}
	var r wire.ReplayReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReplayAndRetention: the replay service publishes retained records again
// (fresh message ids, same bytes); retention then deletes forwarded records
// and their dedup keys in bounded batches, lowers the buffered bytes (also
// after a reopen), and a replay below the floor reports what is missing.
func TestReplayAndRetention(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.ForwardBatch = 10
	cfg.GCBatch = 7
	cfg.GCInterval = time.Hour // passes run by hand below
	cfg.Retention = time.Hour
	n := startNode(t, cfg, nc, js)
	for i := 1; i <= 45; i++ {
		if a := ask(t, nc, "p1", payload(fmt.Sprint("t", i), "1.00")); a.Status != wire.StatusAccepted {
			t.Fatalf("tx %d: %+v", i, a)
		}
	}
	waitForwarded(t, n, 45)
	before := readStream(t, js)

	// Replay while retained: everything published again, byte for byte.
	if r := askReplay(t, nc, "p1", 11, 30); r.Published != 20 || r.Missing != 0 || r.Error != "" {
		t.Fatalf("replay 11-30 = %+v, want 20 published", r)
	}
	if r := askReplay(t, nc, "p1", 40, 99); r.Published != 6 || r.Missing != 46 {
		t.Errorf("replay 40-99 = %+v, want 6 published, missing from 46", r)
	}
	if r := askReplay(t, nc, "nobody", 1, 2); r.Missing != 1 || r.Error == "" {
		t.Errorf("replay of an unknown provider = %+v", r)
	}
	after := readStream(t, js) // also checks that every copy is byte-identical
	if after.msgs <= before.msgs || after.resent < before.resent+26 {
		t.Errorf("stream after replay: %d msgs, %d resent; before %d, %d", after.msgs, after.resent, before.msgs, before.resent)
	}
	after.checkComplete(t, map[string]int{"p1": 45})

	// Nothing is old enough yet: the pass deletes nothing.
	if k, err := n.gc(time.Now(), nil); err != nil || k != 0 {
		t.Fatalf("gc before retention = %d, %v", k, err)
	}
	full := n.Stats().BufferedBytes
	// Past retention: every forwarded record goes, in batches of 7.
	k, err := n.gc(time.Now().Add(2*time.Hour), nil)
	if err != nil || k != 45 {
		t.Fatalf("gc after retention = %d, %v; want 45", k, err)
	}
	st := n.Stats()
	if st.RetainedFrom["p1"] != 46 || st.GCDeleted != 45 || st.GCEarly != 0 {
		t.Errorf("after gc: %+v", st)
	}
	if st.BufferedBytes >= full/10 {
		t.Errorf("buffered bytes %d after deleting everything, was %d", st.BufferedBytes, full)
	}
	if r := askReplay(t, nc, "p1", 1, 45); r.Missing != 1 || r.Published != 0 {
		t.Errorf("replay below the floor = %+v, want missing 1", r)
	}
	// The dedup key went with the record: an old id is new again at the edge
	// (settlement's permanent index still sees it as a duplicate).
	if a := ask(t, nc, "p1", payload("t1", "1.00")); a.Status != wire.StatusAccepted || a.EdgeSeq != 46 {
		t.Errorf("t1 after retention = %+v, want accepted 46", a)
	}
	waitForwarded(t, n, 46)
	used := n.Stats().BufferedBytes
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if st := n2.Stats(); st.BufferedBytes != used || st.RetainedFrom["p1"] != 46 {
		t.Errorf("reopened: buffered %d (want %d), floor %d (want 46)", st.BufferedBytes, used, st.RetainedFrom["p1"])
	}
}

// TestRetentionHighWater: above the high-water mark, forwarded records are
// deleted before their time, oldest first; unforwarded ones never.
func TestRetentionHighWater(t *testing.T) {
	s, _ := hub(t)
	nc := natstest.Connect(t, s)
	cfg := testConfig(t.TempDir())
	cfg.ForwardBatch = 10
	cfg.GCInterval = time.Hour
	cfg.PublishTimeout = 300 * time.Millisecond
	link := jsFor(t, s)
	n := startNode(t, cfg, nc, link)
	for i := 1; i <= 60; i++ {
		ask(t, nc, "p1", payload(fmt.Sprint("t", i), "1.00"))
	}
	waitForwarded(t, n, 60)
	link.Conn().Close() // the next 20 stay unforwarded
	for i := 61; i <= 80; i++ {
		ask(t, nc, "p1", payload(fmt.Sprint("t", i), "1.00"))
	}
	n.cfg.RetentionHighWater = n.Stats().BufferedBytes / 2 // as if configured low
	k, err := n.gc(time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := n.Stats()
	if k == 0 || st.GCEarly != uint64(k) || st.BufferedBytes > n.cfg.RetentionHighWater && st.RetainedFrom["p1"] <= 60 {
		t.Errorf("deleted %d, stats %+v: want early deletions down to the mark or to the cursor", k, st)
	}
	if st.RetainedFrom["p1"] > 61 || st.Committed != 80 || st.Forwarded != 60 {
		t.Errorf("an unforwarded record was deleted: %+v", st)
	}
}

// TestHighWaterWakesGC: above the high-water mark, retention does not wait
// for its interval (an hour here): a commit wakes it, and it deletes
// forwarded records early.
func TestHighWaterWakesGC(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	cfg := testConfig(t.TempDir())
	cfg.GCInterval = time.Hour
	cfg.RetentionHighWater = 2000 // bytes: a few records
	n := startNode(t, cfg, nc, js)
	for i := 1; i <= 40; i++ {
		ask(t, nc, "p1", payload(fmt.Sprint("w", i), "1.00"))
	}
	waitForwarded(t, n, 40)
	deadline := time.Now().Add(20 * time.Second)
	for i := 41; n.Stats().GCEarly == 0; i++ { // each commit above the mark wakes the GC (at most every second)
		if time.Now().After(deadline) {
			t.Fatalf("no early deletion within 20s with the GC interval at an hour: %+v", n.Stats())
		}
		ask(t, nc, "p1", payload(fmt.Sprint("w", i), "1.00"))
		time.Sleep(50 * time.Millisecond)
	}
	if st := n.Stats(); st.RetainedFrom["p1"] <= 1 || st.RetainedFrom["p1"] > st.Forwarded+1 {
		t.Fatalf("retained from %d with %d forwarded", st.RetainedFrom["p1"], st.Forwarded)
	}
}
