package ingest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// TestPipelineOverlay: a group staged while the previous one is still in
// flight sees that group's dedup keys (the overlay): a resend is a duplicate
// of the in-flight record, a different payload under its id a conflict, and
// those answers (like accepted) are set only when the commit returned, after
// the earlier group's answers.
func TestPipelineOverlay(t *testing.T) {
	w := openWAL(t, Config{NodeID: testNode, WALDir: t.TempDir()})
	var order []int
	first := []*request{{provider: "p1", items: []item{testItem("a"), testItem("b")}}}
	w.stage(first, time.Now(), func(rs []*request, r groupResult) { order = append(order, 1) })
	other := testItem("b")
	other.canon = append([]byte(nil), other.canon...)
	other.canon[len(other.canon)-2] = 'X' // same id, other payload
	other.hash = sha256.Sum256(other.canon)
	second := []*request{{provider: "p1", items: []item{testItem("a"), other, testItem("c")}}}
	w.stage(second, time.Now(), func(rs []*request, r groupResult) { order = append(order, 2) })
	w.flush()
	if fmt.Sprint(order) != "[1 2]" {
		t.Fatalf("groups finished in order %v, want [1 2]", order)
	}
	want := []struct {
		status string
		seq    uint64
	}{{wire.StatusAccepted, 1}, {wire.StatusAccepted, 2}, {wire.StatusDuplicate, 1}, {wire.StatusRejected, 0}, {wire.StatusAccepted, 3}}
	got := append(append([]item{}, first[0].items...), second[0].items...)
	for i, w := range want {
		if a := got[i].ans; a.Status != w.status || a.EdgeSeq != w.seq {
			t.Errorf("item %d answered %+v, want %s seq %d", i, a, w.status, w.seq)
		}
	}
	if a := got[3].ans; a.Code != "conflict" {
		t.Errorf("conflicting payload answered %+v, want conflict", a)
	}
	// A third group, staged after both committed, reads them from the snapshot.
	third := []*request{{provider: "p1", items: []item{testItem("c")}}}
	w.commit(third, time.Now())
	if a := third[0].items[0].ans; a.Status != wire.StatusDuplicate || a.EdgeSeq != 3 {
		t.Errorf("resend after commit answered %+v, want duplicate of 3", a)
	}
	if w.last["p1"] != 3 {
		t.Errorf("last seq %d, want 3", w.last["p1"])
	}
}

// TestPipelineFailurePoisons: when the commit in flight fails, the group
// staged on top of it (its sequences continue that one's) fails too:
// unavailable, never accepted; the counters fall back to what is committed.
func TestPipelineFailurePoisons(t *testing.T) {
	w := openWAL(t, Config{NodeID: testNode, WALDir: t.TempDir()})
	w.commit([]*request{{provider: "p1", items: []item{testItem("ok")}}}, time.Now())
	// A chunk in flight that failed (as a failed fsync reports it).
	bad := &chunk{done: make(chan struct{}), err: fmt.Errorf("injected fsync failure")}
	close(bad.done)
	w.inflight = bad
	w.next["p1"] = 5 // as if bad had staged records 2-5
	reqs := []*request{{provider: "p1", items: []item{testItem("x"), testItem("ok")}}}
	w.stage(reqs, time.Now(), nil)
	w.flush()
	if a := reqs[0].items[0].ans; a.Status != wire.StatusRejected || a.Code != "unavailable" {
		t.Errorf("record staged on a failed commit answered %+v, want unavailable", a)
	}
	if a := reqs[0].items[1].ans; a.Status != wire.StatusDuplicate || a.EdgeSeq != 1 {
		t.Errorf("duplicate of a committed record answered %+v, want duplicate of 1", a)
	}
	again := []*request{{provider: "p1", items: []item{testItem("x")}}}
	w.commit(again, time.Now())
	if a := again[0].items[0].ans; a.Status != wire.StatusAccepted || a.EdgeSeq != 2 {
		t.Errorf("retry after the failure answered %+v, want accepted as 2 (no gap)", a)
	}
}

// writeLayout1 builds a WAL the way the code before packed groups wrote it
// (one q/<provider>/<seq> entry per record, no m/layout), through raw Badger
// calls: records 1-n of p1 with their dedup keys, counter, cursor and bytes.
func writeLayout1(t *testing.T, dir string, n int, cursor uint64, canon func(i int) []byte, id func(i int) string) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithSyncWrites(true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var total int
	err = db.Update(func(tx *badger.Txn) error {
		for i := 1; i <= n; i++ {
			at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(i/3) * time.Second) // three commits' worth of times
			qk := binary.BigEndian.AppendUint64([]byte("q/p1/"), uint64(i))
			qv := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
			qv = append(qv, canon(i)...)
			h := sha256.Sum256(canon(i))
			dk := []byte("d/p1/" + id(i))
			dv := append(binary.BigEndian.AppendUint64(nil, uint64(i)), h[:]...)
			total += len(qk) + len(qv) + len(dk) + len(dv)
			if err := tx.Set(qk, qv); err != nil {
				return err
			}
			if err := tx.Set(dk, dv); err != nil {
				return err
			}
		}
		if err := tx.Set([]byte("s/p1"), u64(uint64(n))); err != nil {
			return err
		}
		if err := tx.Set([]byte("c/p1"), u64(cursor)); err != nil {
			return err
		}
		return tx.Set([]byte("m/bytes"), u64(uint64(total)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateLayout1: a WAL written with one entry per record is repacked at
// open: the dedup index still answers duplicates, new records continue the
// sequence, the forwarder sends the unforwarded old records byte for byte,
// and no q/ key is left.
func TestMigrateLayout1(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	dir := t.TempDir()
	id := func(i int) string { return fmt.Sprint("old", i) }
	body := func(i int) []byte { return payload(id(i), "1.00") }
	canon := func(i int) []byte { return canonical(t, body(i)) }
	writeLayout1(t, dir, 7, 3, canon, id)

	n := startNode(t, testConfig(dir), nc, js)
	if a := ask(t, nc, "p1", body(5)); a.Status != wire.StatusDuplicate || a.EdgeSeq != 5 {
		t.Fatalf("resend of migrated record 5 answered %+v, want duplicate of 5", a)
	}
	if a := ask(t, nc, "p1", payload("old5", "2.00")); a.Code != "conflict" {
		t.Fatalf("other payload under a migrated id answered %+v, want conflict", a)
	}
	if a := ask(t, nc, "p1", payload("new", "1.00")); a.Status != wire.StatusAccepted || a.EdgeSeq != 8 {
		t.Fatalf("new record answered %+v, want accepted as 8", a)
	}
	waitForwarded(t, n, 8)
	v := readStream(t, js)
	if got := v.order["p1"]; fmt.Sprint(got) != "[4 5 6 7 8]" {
		t.Fatalf("stream holds p1 records %v, want [4 5 6 7 8] (1-3 were forwarded before)", got)
	}
	for i := 4; i <= 7; i++ {
		if got := v.records[fmt.Sprintf("p1/%d", i)]; string(got) != string(canon(i)) {
			t.Errorf("record %d forwarded as %s, want %s", i, got, canon(i))
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithValueThreshold(valueThreshold))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxOldRec)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			t.Errorf("layout-1 key %q left after migration", it.Item().Key())
		}
		v, ok, err := get(tx, []byte(keyLayout))
		if err != nil || !ok || len(v) != 8 || binary.BigEndian.Uint64(v) != layoutVersion {
			t.Errorf("m/layout = %x (%v, %v), want %d", v, ok, err, layoutVersion)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLayoutNewerRefused: a WAL with a layout this code does not know is
// refused at open with a message naming both layouts, never misread.
func TestLayoutNewerRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *badger.Txn) error { return tx.Set([]byte(keyLayout), u64(layoutVersion+1)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = New(testConfig(dir), hclog.NewNullLogger())
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("layout %d", layoutVersion+1)) || !strings.Contains(err.Error(), fmt.Sprintf("layout %d", layoutVersion)) {
		t.Fatalf("open of a newer layout: %v, want a refusal naming layouts %d and %d", err, layoutVersion+1, layoutVersion)
	}
}

// TestQueueMaxAnswersBufferFull: with QueueMax records already waiting for
// the committer (here: a group held open by a long GroupWait), further
// requests are answered buffer_full at once with a short retry hint, and
// the ones that got in are accepted.
func TestQueueMaxAnswersBufferFull(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	cfg := testConfig(t.TempDir())
	cfg.QueueMax = 3
	cfg.GroupWait = time.Second // the first group waits to fill: requests pile up behind it
	startNode(t, cfg, nc, js)
	inbox := nats.NewInbox()
	answers := make(chan wire.Answer, 16)
	sub, err := nc.Subscribe(inbox+".*", func(m *nats.Msg) {
		var a wire.Answer
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Errorf("answer %s: %v", m.Data, err)
		}
		answers <- a
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	const sent = 8
	for i := range sent {
		if err := nc.PublishRequest(subjects.In("p1"), fmt.Sprintf("%s.%d", inbox, i), payload(fmt.Sprint("q", i), "1.00")); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int{}
	timeout := time.After(20 * time.Second)
	for range sent {
		select {
		case a := <-answers:
			got[a.Status+"/"+a.Code]++
			if a.Code == "buffer_full" && (a.RetryAfterMs != retryAfterOverload.Milliseconds() || !strings.Contains(a.Reason, "overloaded")) {
				t.Errorf("overload answer %+v", a)
			}
		case <-timeout:
			t.Fatalf("answers so far %v, want %d", got, sent)
		}
	}
	if got["accepted/"] != cfg.QueueMax || got["rejected/buffer_full"] != sent-cfg.QueueMax {
		t.Fatalf("answers %v, want %d accepted and %d buffer_full", got, cfg.QueueMax, sent-cfg.QueueMax)
	}
}

// TestPendingBytesSheds: a request with more than PendingBytes of requests
// waiting behind it in its subscription is answered buffer_full without being
// decoded, a batch with one answer per item in input order (valid ids
// echoed, a bad item shed like the rest), and nothing is written.
func TestPendingBytesSheds(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	cfg := testConfig(t.TempDir())
	cfg.PendingBytes = 250
	n := startNode(t, cfg, nc, js)

	// A subscription nobody reads: its pending count is what Node.handle sees.
	sub, err := nc.SubscribeSync("held.requests")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if why := n.overload(sub); why != "" {
		t.Fatalf("idle subscription: overload %q", why)
	}
	for range 3 {
		if err := nc.Publish("held.requests", make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for msgs, _, _ := sub.Pending(); msgs < 3; msgs, _, _ = sub.Pending() {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages pending, want 3", msgs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	why := n.overload(sub)
	if !strings.Contains(why, "3 requests of 300 bytes waiting") || !strings.Contains(why, "pending_bytes 250") {
		t.Fatalf("overload = %q", why)
	}

	body := []byte("[" + string(payload("s-1", "1.00")) + `,{"id":"s-2","amount":1},{"nope":` + "]")
	if r := n.shed(subjects.In("p1"), body, "", why); len(r.items) != 1 || r.items[0].rej == nil || r.items[0].rej.Code != txn.CodeMalformed {
		t.Fatalf("a batch that does not split: %+v, want its own malformed rejection", r.items)
	}
	body = []byte("[" + string(payload("s-1", "1.00")) + `,{"id":"s-2","amount":1}]`)
	r := n.shed(subjects.In("p1"), body, "", why)
	if !r.batch || len(r.items) != 2 {
		t.Fatalf("shed %d items (batch %v), want 2", len(r.items), r.batch)
	}
	for i, id := range []string{"s-1", "s-2"} {
		a := r.items[i].ans
		if a.Status != wire.StatusRejected || a.Code != string(txn.CodeBufferFull) || a.ID != id ||
			a.RetryAfterMs != retryAfterOverload.Milliseconds() || !strings.Contains(a.Reason, "pending_bytes 250") {
			t.Errorf("item %d: %+v", i, a)
		}
	}
	var got []byte
	r.respond = func(b []byte) { got = b }
	n.submit(r)
	var answers []wire.Answer
	if err := json.Unmarshal(got, &answers); err != nil || len(answers) != 2 {
		t.Fatalf("reply %s: %v", got, err)
	}
	if st := n.Stats(); st.Committed != 0 || st.Rejected[string(txn.CodeBufferFull)] != 2 {
		t.Fatalf("stats after shedding: committed %d, rejected %v", st.Committed, st.Rejected)
	}
}
