package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

func TestAnswers(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	n := startNode(t, testConfig(t.TempDir()), nc, js)

	want := func(name string, got wire.Answer, status string, seq uint64, code txn.Code) {
		t.Helper()
		if got.Status != status || got.EdgeSeq != seq || got.Code != string(code) {
			t.Errorf("%s: answer %+v, want %s seq %d code %q", name, got, status, seq, code)
		}
	}
	want("first", ask(t, nc, "p1", payload("a", "10.00")), wire.StatusAccepted, 1, "")
	want("retry", ask(t, nc, "p1", payload("a", "10.00")), wire.StatusDuplicate, 1, "")
	want("same meaning", ask(t, nc, "p1", []byte(` {"currency":"EUR","amount":"10.0","type":"bet","id":"a","occurred_at":"2026-11-01T12:00:00+02:00"}`)), wire.StatusDuplicate, 1, "")
	want("conflict", ask(t, nc, "p1", payload("a", "11.00")), wire.StatusRejected, 0, txn.CodeConflict)
	want("other provider", ask(t, nc, "p2", payload("a", "99.00")), wire.StatusAccepted, 1, "")

	// A batch: answers in input order, duplicates and conflicts against
	// records of the same group decided as if sent one by one.
	as := askBatch(t, nc, "p1",
		payload("b", "1.00"),  // new
		payload("a", "10.00"), // duplicate of an earlier group
		[]byte(`{"id":"x"}`),  // bad input
		payload("c", "2.00"),  // new
		payload("b", "1.50"),  // conflict with a record of this group
		payload("b", "1.00"),  // duplicate of a record of this group
		[]byte(`"not an object"`),
	)
	if len(as) != 7 {
		t.Fatalf("batch: %d answers, want 7: %+v", len(as), as)
	}
	want("batch new b", as[0], wire.StatusAccepted, 2, "")
	want("batch dup a", as[1], wire.StatusDuplicate, 1, "")
	want("batch bad", as[2], wire.StatusRejected, 0, txn.CodeMissingField)
	want("batch new c", as[3], wire.StatusAccepted, 3, "")
	want("batch conflict b", as[4], wire.StatusRejected, 0, txn.CodeConflict)
	want("batch dup b", as[5], wire.StatusDuplicate, 2, "")
	want("batch malformed", as[6], wire.StatusRejected, 0, txn.CodeMalformed)
	for i, id := range []string{"b", "a", "x", "c", "b", "b", ""} { // a rejection echoes the id when it parsed
		if as[i].ID != id {
			t.Errorf("batch answer %d id %q, want %q", i, as[i].ID, id)
		}
	}

	// Exactly the accepted records reach the stream, canonical, once.
	waitForwarded(t, n, 4)
	v := readStream(t, js)
	v.checkComplete(t, map[string]int{"p1": 3, "p2": 1})
	if v.resent != 0 {
		t.Errorf("%d records stored twice without any fault", v.resent)
	}
	for k, id := range map[string]string{"p1/1": "a", "p1/2": "b", "p1/3": "c", "p2/1": "a"} {
		amount := map[string]string{"p1/1": "10.00", "p1/2": "1.00", "p1/3": "2.00", "p2/1": "99.00"}[k]
		if got, want := string(v.records[k]), string(canonical(t, payload(id, amount))); got != want {
			t.Errorf("stream record %s = %s, want %s", k, got, want)
		}
	}

	st := n.Stats()
	if st.Accepted != 4 || st.Duplicates != 4 || st.Rejected["conflict"] != 2 || st.Rejected["missing_field"] != 1 || st.Rejected["malformed"] != 1 {
		t.Errorf("stats %+v", st)
	}
	if st.OldestUnforwarded != 0 {
		t.Errorf("caught up but OldestUnforwarded = %v", st.OldestUnforwarded)
	}
	dl := deadLetters(t, n)
	var codes []string
	for _, d := range dl {
		codes = append(codes, d.Code)
		if d.Provider != "p1" || len(d.Payload) == 0 || d.Reason == "" {
			t.Errorf("dead letter %+v", d)
		}
	}
	if got := strings.Join(codes, ","); got != "conflict,missing_field,conflict,malformed" {
		t.Errorf("dead letters %s", got)
	}
}

// TestRejectCodes sends one bad input per txn code (and request-level
// errors) and checks the code, the dead-letter bound, and that nothing
// reaches the stream.
func TestRejectCodes(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	cfg := testConfig(t.TempDir())
	cfg.BatchMax = 3
	cfg.DLQMax = 5
	cfg.Limits = txn.Limits{PayloadBytes: 600, MetaKeys: 1}
	n := startNode(t, cfg, nc, js)

	good := string(payload("p-1", "10.00"))
	sub := func(old, new string) []byte { return []byte(strings.Replace(good, old, new, 1)) }
	tests := []struct {
		name     string
		provider string
		in       []byte
		want     txn.Code
	}{
		{"malformed", "p1", []byte(`{"id":`), txn.CodeMalformed},
		{"oversize", "p1", sub(`"bet"`, `"bet","round":"`+strings.Repeat("r", 700)+`"`), txn.CodePayloadTooLarge},
		{"unknown field", "p1", sub(`"type"`, `"rnd":"1","type"`), txn.CodeUnknownField},
		{"missing field", "p1", sub(`"currency":"EUR",`, ``), txn.CodeMissingField},
		{"invalid id", "p1", sub(`"p-1"`, `""`), txn.CodeInvalidID},
		{"invalid type", "p1", sub(`"bet"`, `"gift"`), txn.CodeInvalidType},
		{"reserved type correction", "p1", sub(`"bet"`, `"correction"`), txn.CodeReservedType},
		{"reserved type fx_rate", "p1", sub(`"bet"`, `"fx_rate"`), txn.CodeReservedType},
		{"json number", "p1", sub(`"10.00"`, `10.00`), txn.CodeAmountNotString},
		{"invalid amount", "p1", sub(`"10.00"`, `"1e3"`), txn.CodeInvalidAmount},
		{"negative", "p1", sub(`"10.00"`, `"-1"`), txn.CodeNegativeAmount},
		{"range", "p1", sub(`"10.00"`, `"10000000000000"`), txn.CodeAmountRange},
		{"decimals", "p1", sub(`"10.00"`, `"10.001"`), txn.CodeTooManyDecimals},
		{"currency", "p1", sub(`"EUR"`, `"XYZ"`), txn.CodeUnknownCurrency},
		{"time", "p1", sub(`2026-11-01T10:00:00Z`, `2026-11-01`), txn.CodeInvalidTime},
		{"parent", "p1", sub(`"bet"`, `"rollback"`), txn.CodeMissingParent},
		{"field", "p1", sub(`"bet"`, `"bet","game":"`+strings.Repeat("g", 200)+`"`), txn.CodeInvalidField},
		{"meta", "p1", sub(`"bet"`, `"bet","meta":{"a":"1","b":"2"}`), txn.CodeMetaTooLarge},
		{"batch too large", "p1", []byte("[" + good + "," + good + "," + good + "," + good + "]"), txn.CodeBatchTooLarge},
		{"broken batch", "p1", []byte("[" + good + ","), txn.CodeMalformed},
		{"empty batch", "p1", []byte(" [ ] "), txn.CodeMalformed},
		{"bad provider token", "p@1", []byte(good), txn.CodeInvalidField},
	}
	for _, tc := range tests {
		a := ask(t, nc, tc.provider, tc.in) // request-level rejections answer one object, even for a batch
		if a.Status != wire.StatusRejected || a.Code != string(tc.want) || a.Reason == "" {
			t.Errorf("%s: answer %+v, want rejected %s", tc.name, a, tc.want)
		}
	}
	st := n.Stats()
	total := uint64(0)
	for _, k := range st.Rejected {
		total += k
	}
	if total != uint64(len(tests)) || st.Accepted != 0 || st.Committed != 0 {
		t.Errorf("stats %+v, want %d rejected and nothing committed", st, len(tests))
	}
	dl := deadLetters(t, n)
	if len(dl) != cfg.DLQMax {
		t.Fatalf("dead letters: %d kept, want DLQMax=%d", len(dl), cfg.DLQMax)
	}
	for i, d := range dl { // the newest DLQMax, oldest first
		if tc := tests[len(tests)-cfg.DLQMax+i]; d.Code != string(tc.want) {
			t.Errorf("dead letter %d code %s, want %s (%s)", i, d.Code, tc.want, tc.name)
		}
	}
	if v := readStream(t, js); v.msgs != 0 {
		t.Errorf("stream holds %d messages, want none", v.msgs)
	}
}

// TestGroupCommitConcurrent: many senders, several providers, retries mixed
// in. Every accepted transaction gets a unique gapless seq per provider and
// the stream ends up with exactly those records, once.
func TestGroupCommitConcurrent(t *testing.T) {
	s, js := hub(t)
	cfg := testConfig(t.TempDir())
	cfg.ForwardBatch = 64
	n := startNode(t, cfg, natstest.Connect(t, s), js)

	const senders, perSender = 24, 125
	providers := []string{"p1", "p2", "p3"}
	var mu sync.Mutex
	accepted := map[string]map[uint64]string{} // provider → seq → id
	dupOf := map[string]uint64{}               // provider/id → seq answered to a retry
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := nats.Connect(s.ClientURL())
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			p := providers[g%len(providers)]
			for i := range perSender {
				id := fmt.Sprintf("g%d-%d", g, i)
				if i%10 == 9 {
					id = fmt.Sprintf("g%d-%d", g, i-1) // a provider retry
				}
				m, err := nc.Request(subjects.In(p), payload(id, "1.00"), 10*time.Second)
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				a := decodeAnswer(t, m.Data)
				mu.Lock()
				switch a.Status {
				case wire.StatusAccepted:
					if accepted[p] == nil {
						accepted[p] = map[uint64]string{}
					}
					if old, ok := accepted[p][a.EdgeSeq]; ok {
						t.Errorf("%s seq %d given to %s and %s", p, a.EdgeSeq, old, id)
					}
					accepted[p][a.EdgeSeq] = id
				case wire.StatusDuplicate:
					dupOf[p+"/"+id] = a.EdgeSeq
				default:
					t.Errorf("%s %s: %+v", p, id, a)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := 0
	counts := map[string]int{}
	for p, seqs := range accepted {
		for seq := uint64(1); seq <= uint64(len(seqs)); seq++ {
			if _, ok := seqs[seq]; !ok {
				t.Errorf("%s: seq %d missing of %d (gap)", p, seq, len(seqs))
			}
		}
		counts[p] = len(seqs)
		total += len(seqs)
	}
	if want := senders * (perSender - perSender/10); total != want {
		t.Errorf("%d accepted, want %d", total, want)
	}
	for k, seq := range dupOf {
		p, id, _ := strings.Cut(k, "/")
		if accepted[p][seq] != id {
			t.Errorf("retry of %s answered duplicate of seq %d, which is %s", k, seq, accepted[p][seq])
		}
	}
	waitForwarded(t, n, uint64(total))
	v := readStream(t, js)
	v.checkComplete(t, counts)
	if v.resent != 0 {
		t.Errorf("%d records stored twice without any fault", v.resent)
	}
	for p, seqs := range accepted {
		for seq, id := range seqs {
			if got, want := string(v.records[fmt.Sprintf("%s/%d", p, seq)]), string(canonical(t, payload(id, "1.00"))); got != want {
				t.Fatalf("%s/%d in stream = %s, want %s", p, seq, got, want)
			}
		}
	}
	t.Logf("%d accepted in %d stream messages", total, v.msgs)
}

func decodeAnswer(t testing.TB, b []byte) wire.Answer {
	t.Helper()
	var a wire.Answer
	if err := jsonUnmarshal(b, &a); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	return a
}

// TestRestart closes a node with a backlog and reopens it on the same dir:
// sequences continue, duplicates are still detected, and the forwarder
// resumes from its cursor without loss.
func TestRestart(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.ForwardBatch = 16
	cfg.PublishTimeout = 300 * time.Millisecond

	hub1 := jsFor(t, s) // the first node's own hub link, cut below
	n1 := startNode(t, cfg, nc, hub1)
	for i := 1; i <= 100; i++ {
		if a := ask(t, nc, "p1", payload(fmt.Sprint("t", i), "1.00")); a.Status != wire.StatusAccepted || a.EdgeSeq != uint64(i) {
			t.Fatalf("tx %d: %+v", i, a)
		}
	}
	waitForwarded(t, n1, 100)
	hub1.Conn().Close() // link down: the next 50 stay in the WAL
	for i := 101; i <= 150; i++ {
		if a := ask(t, nc, "p1", payload(fmt.Sprint("t", i), "1.00")); a.Status != wire.StatusAccepted || a.EdgeSeq != uint64(i) {
			t.Fatalf("tx %d: %+v", i, a)
		}
	}
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := n1.Start(context.Background(), nc, js); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}

	n2, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Close() })
	st := n2.Stats()
	if st.Committed != 150 || st.Forwarded != 100 || st.OldestUnforwarded <= 0 {
		t.Fatalf("reopened stats %+v, want 150 committed, 100 forwarded, a backlog age", st)
	}
	if err := n2.Start(context.Background(), nc, jsFor(t, s)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{5, 120} {
		if a := ask(t, nc, "p1", payload(fmt.Sprint("t", i), "1.00")); a.Status != wire.StatusDuplicate || a.EdgeSeq != uint64(i) {
			t.Errorf("retry of t%d after restart: %+v, want duplicate %d", i, a, i)
		}
	}
	if a := ask(t, nc, "p1", payload("t5", "2.00")); a.Code != string(txn.CodeConflict) {
		t.Errorf("conflict after restart: %+v", a)
	}
	for i := 151; i <= 200; i++ {
		if a := ask(t, nc, "p1", payload(fmt.Sprint("t", i), "1.00")); a.Status != wire.StatusAccepted || a.EdgeSeq != uint64(i) {
			t.Fatalf("tx %d after restart: %+v", i, a)
		}
	}
	waitForwarded(t, n2, 200)
	v := readStream(t, js)
	v.checkComplete(t, map[string]int{"p1": 200})
	t.Logf("%d messages, %d records resent whole", v.msgs, v.resent)
}

// TestOutage: providers talk to server A (no JetStream); the hub B goes away
// and comes back on the same store and port. Ingest keeps accepting into the
// WAL and forwards everything, in order, once by seq.
func TestOutage(t *testing.T) {
	a := natstest.Run(t, func(o *server.Options) { o.JetStream = false })
	hubDir := t.TempDir()
	hubOpts := natstest.Options(hubDir)
	b := natstest.RunWith(t, hubOpts)
	port := b.Addr().(*net.TCPAddr).Port
	link := jsFor(t, b, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	ensureStreams(t, link)

	nc := natstest.Connect(t, a)
	cfg := testConfig(t.TempDir())
	cfg.ForwardBatch = 20
	cfg.PublishTimeout = 500 * time.Millisecond
	n := startNode(t, cfg, nc, link)
	providers := []string{"p1", "p2"}
	send := func(from, to int) {
		for i := from; i < to; i++ {
			p := providers[i%2]
			if ans := ask(t, nc, p, payload(fmt.Sprint("t", i), "1.00")); ans.Status != wire.StatusAccepted || ans.EdgeSeq != uint64(i/2+1) {
				t.Fatalf("tx %d: %+v", i, ans)
			}
		}
	}
	send(0, 100)
	waitForwarded(t, n, 100)

	b.Shutdown()
	b.WaitForShutdown()
	send(100, 400) // the hub is down; the edge keeps accepting
	st := n.Stats()
	if st.Committed != 400 || st.Forwarded != 100 || st.OldestUnforwarded <= 0 {
		t.Errorf("during outage: %+v", st)
	}

	o2 := natstest.Options(hubDir)
	o2.Port = port
	natstest.RunWith(t, o2)
	waitForwarded(t, n, 400)
	v := readStream(t, link)
	v.checkComplete(t, map[string]int{"p1": 200, "p2": 200})
	t.Logf("%d messages, %d records resent whole", v.msgs, v.resent)
}

// TestBudget: at the byte budget new transactions get buffer_full with a
// retry hint; duplicates of stored ones are still answered.
func TestBudget(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	cfg := testConfig(t.TempDir())
	cfg.BudgetBytes = 2000
	cfg.RetentionHighWater = cfg.BudgetBytes // no early deletion: t0's dedup key must stay for the duplicate below
	n := startNode(t, cfg, nc, js)
	accepted, full := 0, 0
	for i := range 40 {
		a := ask(t, nc, "p1", payload(fmt.Sprint("t", i), "1.00"))
		switch {
		case a.Status == wire.StatusAccepted:
			if full > 0 {
				t.Fatalf("accepted after buffer_full: %+v", a)
			}
			accepted++
		case a.Code == string(txn.CodeBufferFull):
			if a.RetryAfterMs <= 0 || !strings.Contains(a.Reason, ErrBufferFull.Error()) {
				t.Errorf("buffer_full without retry hint: %+v", a)
			}
			full++
		default:
			t.Fatalf("answer %+v", a)
		}
	}
	if accepted == 0 || full == 0 {
		t.Fatalf("accepted %d, buffer_full %d: budget not reached or nothing fit", accepted, full)
	}
	if a := ask(t, nc, "p1", payload("t0", "1.00")); a.Status != wire.StatusDuplicate {
		t.Errorf("duplicate at the budget: %+v", a)
	}
	st := n.Stats()
	if st.BufferedBytes > cfg.BudgetBytes || st.Rejected["buffer_full"] != uint64(full) {
		t.Errorf("stats %+v", st)
	}
	if dl := deadLetters(t, n); len(dl) != 0 {
		t.Errorf("buffer_full kept %d dead letters; a full buffer stores nothing", len(dl))
	}
}

// TestCloseAnswersInFlight closes a node under load: every accepted answer
// sent before or during Close is on disk when the WAL is reopened.
func TestCloseAnswersInFlight(t *testing.T) {
	s, js := hub(t)
	dir := t.TempDir()
	n := startNode(t, testConfig(dir), natstest.Connect(t, s), js)
	var mu sync.Mutex
	accepted := map[uint64]string{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := nats.Connect(s.ClientURL())
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("g%d-%d", g, i)
				m, err := nc.Request(subjects.In("p1"), payload(id, "1.00"), 5*time.Second)
				if err != nil {
					return // no responders once the subscription is drained
				}
				a := decodeAnswer(t, m.Data)
				if a.Status == wire.StatusAccepted {
					mu.Lock()
					accepted[a.EdgeSeq] = id
					mu.Unlock()
				} else if a.Code != string(txn.CodeUnavailable) {
					t.Errorf("answer during close: %+v", a)
				}
			}
		}()
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		if st := n.Stats(); st.Accepted < 200 {
			return fmt.Errorf("%d accepted", st.Accepted)
		}
		return nil
	})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	n2, err := New(testConfig(dir), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	for seq, id := range accepted {
		at, err := n2.acceptedAt("p1", seq)
		if err != nil || at == 0 {
			t.Fatalf("accepted seq %d (%s) not in the reopened WAL: %v", seq, id, err)
		}
	}
	if st := n2.Stats(); st.Committed < uint64(len(accepted)) {
		t.Errorf("reopened: %d committed, %d answered accepted", st.Committed, len(accepted))
	}
	t.Logf("%d accepted before close", len(accepted))
}
