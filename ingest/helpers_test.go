package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

const testNode = "edge-1"

var subjects = wire.NewSubjects("")

// payload is a valid canonical-ish transaction.
func payload(id, amount string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":"bet","amount":%q,"currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, id, amount)
}

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Warn, Output: testWriter{t}})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func testConfig(dir string) Config {
	return Config{NodeID: testNode, Subjects: subjects, WALDir: dir, PublishTimeout: time.Second}
}

// hub starts a JetStream server with the tally streams and returns it with a
// JetStream context on its own connection.
func hub(t testing.TB, mods ...func(*server.Options)) (*server.Server, jetstream.JetStream) {
	t.Helper()
	s := natstest.Run(t, mods...)
	js := jsFor(t, s)
	ensureStreams(t, js)
	return s, js
}

func jsFor(t testing.TB, s *server.Server, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc := natstest.Connect(t, s, opts...)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func ensureStreams(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := wire.EnsureStreams(ctx, js, subjects, wire.StreamOptions{Partitions: 4, MaxMsgBytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
}

// startNode opens and starts a node; Close runs at cleanup (idempotent).
func startNode(t testing.TB, cfg Config, nc *nats.Conn, js jetstream.JetStream) *Node {
	t.Helper()
	n, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(context.Background(), nc, js); err != nil {
		t.Fatal(err)
	}
	return n
}

// ask sends one request and decodes a single answer.
func ask(t testing.TB, nc *nats.Conn, provider string, body []byte) wire.Answer {
	t.Helper()
	m, err := nc.Request(subjects.In(provider), body, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", body, err)
	}
	var a wire.Answer
	if err := json.Unmarshal(m.Data, &a); err != nil {
		t.Fatalf("answer %s: %v", m.Data, err)
	}
	return a
}

// askBatch sends a batch and decodes the array of answers.
func askBatch(t testing.TB, nc *nats.Conn, provider string, bodies ...[]byte) []wire.Answer {
	t.Helper()
	body := append([]byte("["), bytesJoin(bodies)...)
	body = append(body, ']')
	m, err := nc.Request(subjects.In(provider), body, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", body, err)
	}
	var as []wire.Answer
	if err := json.Unmarshal(m.Data, &as); err != nil {
		t.Fatalf("answers %s: %v", m.Data, err)
	}
	return as
}

func bytesJoin(bs [][]byte) []byte {
	var out []byte
	for i, b := range bs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	return out
}

func canonical(t testing.TB, b []byte) []byte {
	t.Helper()
	tx, e := txn.Decode(b, txn.Limits{})
	if e != nil {
		t.Fatalf("decode %s: %v", b, e)
	}
	return tx.Canonical()
}

// streamView is what TALLY_TX holds, checked message by message.
type streamView struct {
	records map[string][]byte   // "<provider>/<seq>" → payload
	order   map[string][]uint64 // provider → edge seqs in stream order, first occurrence only
	resent  int                 // records stored more than once (identical resends)
	msgs    int
}

// readStream reads every message of TALLY_TX, checks headers, hash, subject
// and batch layout, and that a record stored twice is byte-identical.
func readStream(t testing.TB, js jetstream.JetStream) streamView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, subjects.TxStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := streamView{records: map[string][]byte{}, order: map[string][]uint64{}}
	if info.State.Msgs == 0 {
		return v
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get stream msg %d: %v", seq, err)
		}
		v.msgs++
		node, prov := m.Header.Get(wire.HdrNode), m.Header.Get(wire.HdrProvider)
		toks := strings.Split(m.Subject, ".")
		if len(toks) != 5 || toks[1] != "tx" || toks[3] != node || toks[4] != prov {
			t.Fatalf("msg %d subject %s, headers node %q provider %q", seq, m.Subject, node, prov)
		}
		sum := sha256.Sum256(m.Data)
		if m.Header.Get(wire.HdrHash) != hex.EncodeToString(sum[:]) {
			t.Fatalf("msg %d hash header mismatch", seq)
		}
		recs, err := wire.DecodeBatch(m.Data, 1<<20)
		if err != nil {
			t.Fatalf("msg %d: %v", seq, err)
		}
		first, _ := strconv.ParseUint(m.Header.Get(wire.HdrFirstSeq), 10, 64)
		last, _ := strconv.ParseUint(m.Header.Get(wire.HdrLastSeq), 10, 64)
		if first != recs[0].Seq || last != recs[len(recs)-1].Seq {
			t.Fatalf("msg %d headers %d-%d, body %d-%d", seq, first, last, recs[0].Seq, recs[len(recs)-1].Seq)
		}
		want := fmt.Sprintf("%s.%s.%d-%d", node, prov, first, last)
		if id := m.Header.Get(wire.HdrMsgID); m.Header.Get(wire.HdrReplay) == "1" {
			if !strings.HasPrefix(id, want+".r") {
				t.Fatalf("replayed msg %d id %q, want %q.r<ns>", seq, id, want)
			}
		} else if id != want {
			t.Fatalf("msg %d id %q, want %q", seq, id, want)
		}
		for _, r := range recs {
			k := fmt.Sprintf("%s/%d", prov, r.Seq)
			if old, ok := v.records[k]; ok {
				if string(old) != string(r.Payload) {
					t.Fatalf("record %s stored twice with different payloads:\n%s\n%s", k, old, r.Payload)
				}
				v.resent++
				continue
			}
			v.records[k] = append([]byte(nil), r.Payload...)
			v.order[prov] = append(v.order[prov], r.Seq)
		}
	}
	return v
}

// checkComplete asserts that the stream holds seqs 1..want[p] of every
// provider, first stored in edge order.
func (v streamView) checkComplete(t testing.TB, want map[string]int) {
	t.Helper()
	for p, n := range want {
		seqs := v.order[p]
		if len(seqs) != n {
			t.Errorf("provider %s: stream holds %d distinct records, want %d", p, len(seqs), n)
		}
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Errorf("provider %s: record %d first stored at position %d (out of order or gap)", p, s, i+1)
				break
			}
		}
	}
	for p := range v.order {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected provider %s in the stream", p)
		}
	}
}

// deadLetters reads the dead-letter store in order.
func deadLetters(t testing.TB, n *Node) []deadLetter {
	t.Helper()
	var out []deadLetter
	err := n.wal.db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxDead), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var d deadLetter
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &d) }); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitForwarded waits until every committed record is acknowledged.
func waitForwarded(t testing.TB, n *Node, want uint64) {
	t.Helper()
	natstest.Eventually(t, 30*time.Second, func() error {
		st := n.Stats()
		if st.Committed != want || st.Forwarded != want {
			return fmt.Errorf("committed %d, forwarded %d, want %d", st.Committed, st.Forwarded, want)
		}
		return nil
	})
}
