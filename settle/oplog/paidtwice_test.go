package oplog_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/oplog"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// stmt is a statement hash: digit d repeated 64 times.
func stmt(d string) string { return strings.Repeat(d, 64) }

// run is payout run RUN-<seq> paying the statements.
func run(seq int, statements ...string) oplog.PayoutRun {
	p := payoutRun()
	p.Run, p.Statements = fmt.Sprintf("RUN-%06d", seq), statements
	p.RunHash = fmt.Sprintf("%064x", seq)
	return p
}

func (m *mesh) post(p oplog.PayoutRun) (uint64, []byte) {
	m.t.Helper()
	b, err := p.Payload()
	if err != nil {
		m.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seq, err := oplog.Post(ctx, m.js, m.subj, b, p.MsgID())
	if err != nil {
		m.t.Fatal(err)
	}
	return seq, b
}

// outcome waits until the node has settled entries and raised exceptions
// (counters) and returns the recorded paid_twice exceptions by id.
func (m *mesh) outcome(entries, exceptions uint64) map[string]settle.Exception {
	m.t.Helper()
	natstest.Eventually(m.t, 15*time.Second, func() error {
		if err := m.node.Err(); err != nil {
			return err
		}
		if s := m.node.Stats(); s.Entries != entries || s.Exceptions != exceptions {
			return fmt.Errorf("%d entries, %d exceptions; want %d, %d", s.Entries, s.Exceptions, entries, exceptions)
		}
		return nil
	})
	exc, err := m.idx.Exceptions(100)
	if err != nil {
		m.t.Fatal(err)
	}
	out := map[string]settle.Exception{}
	for _, e := range exc {
		if e.Kind != settle.ExcPaidTwice {
			m.t.Fatalf("exception %+v, want only %s", e, settle.ExcPaidTwice)
		}
		out[e.ID] = e
	}
	return out
}

// paidBy checks the index's payer of each statement ("" = unpaid).
func (m *mesh) paidBy(want map[string]string) {
	m.t.Helper()
	for s, w := range want {
		by, err := m.idx.PaidBy(s)
		if err != nil || by != w {
			m.t.Errorf("statement %.8s… paid by %q, %v; want %q", s, by, err, w)
		}
	}
}

// restart closes the node and starts another over the same index and
// ledger (fresh = a new empty index and ledger directory: everything is
// rebuilt from TALLY_LEDGER).
func (m *mesh) restart(fresh bool) {
	m.t.Helper()
	if err := m.node.Close(); err != nil {
		m.t.Fatal(err)
	}
	log := hclog.NewNullLogger()
	if fresh {
		m.idx.Close()
		m.led.Close()
		var err error
		if m.idx, err = settle.OpenIndex(m.t.TempDir(), log); err != nil {
			m.t.Fatal(err)
		}
		m.t.Cleanup(func() { m.idx.Close() })
		skey, vkey, err := store.GenerateKey("tally.test/ledger")
		if err != nil {
			m.t.Fatal(err)
		}
		signer, err := note.NewSigner(skey)
		if err != nil {
			m.t.Fatal(err)
		}
		m.ledDir, m.vkey = m.t.TempDir(), vkey
		if m.led, err = store.Open(store.Options{Dir: m.ledDir, Origin: "tally.test/ledger", Signer: signer}); err != nil {
			m.t.Fatal(err)
		}
		m.t.Cleanup(func() { m.led.Close() })
	}
	book, err := rules.Parse([]byte(testRules), "rules.hcl")
	if err != nil {
		m.t.Fatal(err)
	}
	m.node = settle.New(settle.Config{Subjects: m.subj, Partitions: []int{0, 1}, SegmentMaxEntries: 100, SegmentMaxAge: 20 * time.Millisecond,
		FetchBatch: 64, AckWait: 5 * time.Second, OrphanTimeout: time.Hour}, m.idx, m.led, book, log)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.node.Start(ctx, m.nc, m.js); err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { m.node.Close() })
}

// TestPaidTwiceRefused: payout runs posted straight through the operator
// log (no CLI check before planning) are refused by the engine when they
// pay a statement an earlier run pays: exception paid_twice naming the
// statement and the earlier run, no ledger entry, and none of the run's
// other statements marked paid (a run paying A and C, A paid, is refused
// whole). The same holds after a restart over the same index and after a
// rebuild of index and ledger from TALLY_LEDGER; tally verify passes.
func TestPaidTwiceRefused(t *testing.T) {
	m := newMesh(t, oplog.Options{})
	a, b, c := stmt("a"), stmt("b"), stmt("c")
	m.post(run(1, a, b))
	m.outcome(1, 0)
	m.post(run(2, c, a)) // A is paid by run 1: refused whole, C stays unpaid
	exc := m.outcome(1, 1)
	e, ok := exc["payout-RUN-000002"]
	if !ok || !strings.Contains(e.Reason, a) || !strings.Contains(e.Reason, "payout-RUN-000001") || e.Provider != wire.OpsProvider {
		t.Fatalf("exceptions %+v", exc)
	}
	m.paidBy(map[string]string{a: "payout-RUN-000001", b: "payout-RUN-000001", c: ""})
	m.post(run(3, c)) // C was never paid
	m.outcome(2, 1)
	m.paidBy(map[string]string{c: "payout-RUN-000003"})

	m.restart(false) // the same index: its p/ keys
	m.post(run(4, b))
	m.outcome(2, 2)

	m.restart(true) // an empty index and ledger: p/ keys from the stream
	m.outcome(2, 2)
	m.paidBy(map[string]string{a: "payout-RUN-000001", b: "payout-RUN-000001", c: "payout-RUN-000003"})
	m.post(run(5, c))
	exc = m.outcome(2, 3)
	if e := exc["payout-RUN-000005"]; !strings.Contains(e.Reason, c) || !strings.Contains(e.Reason, "payout-RUN-000003") {
		t.Fatalf("after rebuild: exceptions %+v", exc)
	}
	m.post(run(6, stmt("d")))
	m.outcome(3, 3)

	rep, byID := m.verify()
	if rep.PayoutRuns != 3 || rep.PaidStatements != 4 {
		t.Fatalf("verify: %d payout runs paying %d statements; want 3 paying 4", rep.PayoutRuns, rep.PaidStatements)
	}
	for _, id := range []string{"payout-RUN-000001", "payout-RUN-000003", "payout-RUN-000006"} {
		if len(byID[id]) != 1 {
			t.Errorf("%s in the ledger %d times, want 1", id, len(byID[id]))
		}
	}
	for _, id := range []string{"payout-RUN-000002", "payout-RUN-000004", "payout-RUN-000005"} {
		if len(byID[id]) != 0 {
			t.Errorf("refused %s is in the ledger", id)
		}
	}
}

// TestPaidTwiceSameBatch: two runs paying one statement in ONE forwarded
// message (so one engine batch, whatever the timing): only the first lands.
func TestPaidTwiceSameBatch(t *testing.T) {
	m := newMesh(t, oplog.Options{NoForward: true})
	a := stmt("a")
	s1, p1 := m.post(run(1, a))
	s2, p2 := m.post(run(2, stmt("b"), a))
	body := wire.AppendBatch(nil, []wire.Record{{Seq: s1, Payload: p1}, {Seq: s2, Payload: p2}})
	sum := sha256.Sum256(body)
	msg := nats.NewMsg(m.subj.Tx(wire.OpsNode, wire.OpsProvider))
	msg.Data = body
	msg.Header.Set(wire.HdrMsgID, "_tally-both")
	msg.Header.Set(wire.HdrNode, wire.OpsNode)
	msg.Header.Set(wire.HdrProvider, wire.OpsProvider)
	msg.Header.Set(wire.HdrFirstSeq, strconv.FormatUint(s1, 10))
	msg.Header.Set(wire.HdrLastSeq, strconv.FormatUint(s2, 10))
	msg.Header.Set(wire.HdrHash, hex.EncodeToString(sum[:]))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(m.subj.TxStream())); err != nil {
		t.Fatal(err)
	}
	exc := m.outcome(1, 1)
	if _, ok := exc["payout-RUN-000002"]; !ok {
		t.Fatalf("exceptions %+v", exc)
	}
	m.paidBy(map[string]string{a: "payout-RUN-000001", stmt("b"): ""})
	rep, byID := m.verify()
	if rep.PayoutRuns != 1 || len(byID["payout-RUN-000001"]) != 1 || len(byID["payout-RUN-000002"]) != 0 {
		t.Fatalf("verify: %d payout runs; ledger %v", rep.PayoutRuns, byID)
	}
}
