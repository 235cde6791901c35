package oplog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/oplog"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

const testRules = `
ruleset "v1" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "casino" {
    share "studio" {
      party   = "${provider}"
      percent = "10"
    }
    remainder = "operator"
  }
}
`

// mesh is a real nats-server with the tally streams and one settle node
// (real Badger index, real ledger) owning every partition.
type mesh struct {
	t      *testing.T
	nc     *nats.Conn
	js     jetstream.JetStream
	subj   wire.Subjects
	node   *settle.Node
	idx    *settle.Index
	led    *store.Ledger
	ledDir string
	vkey   string
}

func newMesh(t *testing.T, o oplog.Options) *mesh {
	t.Helper()
	s := natstest.Run(t)
	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m := &mesh{t: t, nc: nc, js: js, subj: wire.NewSubjects("")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := wire.EnsureStreams(ctx, js, m.subj, wire.StreamOptions{Partitions: 2, MaxMsgBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	book, err := rules.Parse([]byte(testRules), "rules.hcl")
	if err != nil {
		t.Fatal(err)
	}
	log := hclog.NewNullLogger()
	if m.idx, err = settle.OpenIndex(t.TempDir(), log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.idx.Close() })
	skey, vkey, err := store.GenerateKey("tally.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	m.ledDir, m.vkey = t.TempDir(), vkey
	if m.led, err = store.Open(store.Options{Dir: m.ledDir, Origin: "tally.test/ledger", Signer: signer}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.led.Close() })
	m.node = settle.New(settle.Config{Subjects: m.subj, Partitions: []int{0, 1}, SegmentMaxEntries: 100, SegmentMaxAge: 20 * time.Millisecond,
		FetchBatch: 64, AckWait: 5 * time.Second, OrphanTimeout: time.Hour, Oplog: o}, m.idx, m.led, book, log)
	if err := m.node.Start(ctx, nc, js); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.node.Close() })
	return m
}

// settled waits until the node has committed want entries.
func (m *mesh) settled(want uint64) {
	m.t.Helper()
	natstest.Eventually(m.t, 15*time.Second, func() error {
		if err := m.node.Err(); err != nil {
			return err
		}
		if got := m.node.Stats().Entries; got != want {
			return fmt.Errorf("%d entries settled, want %d", got, want)
		}
		return nil
	})
}

// verify stops the node and audits the ledger as `tally verify` does, with
// the index's committed balances; it returns the ledger's entries by id.
func (m *mesh) verify() (audit.Report, map[string][]store.Entry) {
	m.t.Helper()
	if err := m.node.Close(); err != nil {
		m.t.Fatal(err)
	}
	if err := store.WriteVerifierKey(m.ledDir, m.vkey); err != nil {
		m.t.Fatal(err)
	}
	pbs, err := m.idx.Committed()
	if err != nil {
		m.t.Fatal(err)
	}
	rep, err := audit.Verify(m.ledDir, audit.Options{Balances: &audit.Balances{Source: "index", Partitions: pbs}})
	if err != nil {
		m.t.Fatalf("verify: %v", err)
	}
	byID := map[string][]store.Entry{}
	if err := store.ForEachEntry(m.ledDir, func(e store.Entry) error { byID[e.Tx.ID] = append(byID[e.Tx.ID], e); return nil }); err != nil {
		m.t.Fatal(err)
	}
	return rep, byID
}

func correction(t *testing.T) oplog.Correction {
	eur, _ := money.Lookup("EUR")
	return oplog.Correction{Exception: "exc-7", N: 1, Currency: "EUR",
		Lines:      []money.Share{{Party: "studio-a", Amount: eur.FromMinor(1250)}, {Party: "operator", Amount: eur.FromMinor(-1000)}},
		ProposedBy: "alice", ApprovedBy: []string{"bob", "carol"}, ApprovalsRequired: 2, Reason: "late rollback credited twice",
		ApprovedAt: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
}

func fxRate() oplog.FXRate {
	return oplog.FXRate{Source: "ecb", Base: "EUR", Quote: "USD", Rate: decimal.RequireFromString("1.0842"),
		AsOf: time.Unix(1764756000, 0), PostedBy: "alice"}
}

func payoutRun() oplog.PayoutRun {
	return oplog.PayoutRun{Run: "RUN-000001", RunHash: strings.Repeat("ab", 32), Statements: []string{strings.Repeat("11", 32), strings.Repeat("22", 32)},
		CreatedBy: "alice", ApprovedBy: "bob", CreatedAt: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC),
		Totals: []oplog.PayoutTotal{{Currency: "USD", Sum: decimal.RequireFromString("85.58")}, {Currency: "EUR", Sum: decimal.RequireFromString("201.13")}}}
}

// TestPayoutRunPayload: the builder writes the one canonical payout_run
// (totals ascending by currency, currency = the first) and refuses what the
// engine would not settle.
func TestPayoutRunPayload(t *testing.T) {
	b, err := payoutRun().Payload()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"payout-RUN-000001","type":"payout_run","amount":"0.00","currency":"EUR","occurred_at":"2026-12-02T09:00:00Z","meta":{"approved_by":"bob","created_by":"alice","run":"RUN-000001","run_hash":"` +
		strings.Repeat("ab", 32) + `","statements":"` + strings.Repeat("11", 32) + ";" + strings.Repeat("22", 32) + `","totals":"EUR=201.13;USD=85.58"}}`
	if string(b) != want {
		t.Fatalf("payload\n%s\nwant\n%s", b, want)
	}
	if id := payoutRun().MsgID(); id != "payout-RUN-000001-"+strings.Repeat("ab", 32) {
		t.Fatalf("MsgID = %q", id)
	}
	for name, edit := range map[string]func(*oplog.PayoutRun){
		"maker is checker":    func(p *oplog.PayoutRun) { p.ApprovedBy = "alice" },
		"statement twice":     func(p *oplog.PayoutRun) { p.Statements = append(p.Statements, p.Statements[0]) },
		"no statements":       func(p *oplog.PayoutRun) { p.Statements = nil },
		"no totals":           func(p *oplog.PayoutRun) { p.Totals = nil },
		"currency twice":      func(p *oplog.PayoutRun) { p.Totals[0].Currency = "EUR" },
		"sub-second":          func(p *oplog.PayoutRun) { p.CreatedAt = p.CreatedAt.Add(time.Millisecond) },
		"run hash not hex":    func(p *oplog.PayoutRun) { p.RunHash = strings.Repeat("AB", 32) },
		"run id not RUN-seq6": func(p *oplog.PayoutRun) { p.Run = "run-1" },
	} {
		p := payoutRun()
		edit(&p)
		if _, err := p.Payload(); !errors.Is(err, oplog.ErrInvalid) {
			t.Errorf("%s: Payload = %v, want ErrInvalid", name, err)
		}
	}
}

func payloads(t *testing.T) (corr, fx []byte) {
	t.Helper()
	corr, err := correction(t).Payload()
	if err != nil {
		t.Fatal(err)
	}
	if fx, err = fxRate().Payload(); err != nil {
		t.Fatal(err)
	}
	return corr, fx
}

// TestPostSettlesOnce: a correction and an fx_rate posted to a running
// settle node are in the ledger once each, with the shares of the lines,
// and `tally verify` passes and counts them. The same action posted again
// (same message id: stored once; another message id: settled once) adds
// nothing.
func TestPostSettlesOnce(t *testing.T) {
	m := newMesh(t, oplog.Options{})
	corr, fx := payloads(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s1, err := oplog.Post(ctx, m.js, m.subj, corr, "adj-exc-7")
	if err != nil {
		t.Fatal(err)
	}
	again, err := oplog.Post(ctx, m.js, m.subj, corr, "adj-exc-7") // a retried post
	if err != nil || again != s1 {
		t.Fatalf("retried post = %d, %v; want the first's sequence %d", again, err, s1)
	}
	if _, err := oplog.Post(ctx, m.js, m.subj, fx, "fx-ecb-EURUSD-1764756000"); err != nil {
		t.Fatal(err)
	}
	if _, err := oplog.Post(ctx, m.js, m.subj, corr, "adj-exc-7-late"); err != nil { // a repeat after the window
		t.Fatal(err)
	}
	st, err := m.js.Stream(ctx, m.subj.OplogStream())
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 3 || info.State.LastSeq != 3 {
		t.Fatalf("oplog stream: %+v, %v; want 3 messages", info.State, err)
	}
	m.settled(2)
	natstest.Eventually(t, 10*time.Second, func() error {
		if d := m.node.Stats().Duplicates; d != 1 {
			return fmt.Errorf("%d duplicates, want 1", d)
		}
		return nil
	})
	rep, byID := m.verify()
	if rep.Corrections != 1 || rep.FXRates != 1 || rep.Entries != 2 {
		t.Fatalf("verify report: %d corrections, %d fx rates, %d entries", rep.Corrections, rep.FXRates, rep.Entries)
	}
	c, f := byID["adj-exc-7-1"], byID["fx-ecb-EURUSD-1764756000"]
	if len(c) != 1 || len(f) != 1 || len(byID) != 2 {
		t.Fatalf("ledger ids: %v", byID)
	}
	if e := c[0]; e.Provider != wire.OpsProvider || e.EdgeNode != wire.OpsNode || e.EdgeSeq != 1 || e.Net.String() != "2.5" ||
		len(e.Shares) != 2 || e.Shares[0].Party != "studio-a" || e.Shares[0].Amount.String() != "12.5" {
		t.Fatalf("correction entry: %+v", e)
	}
	if e := f[0]; e.EdgeSeq != 2 || len(e.Shares) != 0 || e.Tx.Meta[txn.MetaRate] != "1.0842" || e.Tx.Meta[txn.MetaPair] != "EUR/USD" {
		t.Fatalf("fx entry: %+v", e)
	}
	bals, err := m.idx.Balances()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range bals {
		got[b.Party+"/"+b.Currency] = b.Amount.String()
	}
	if got["studio-a/EUR"] != "12.5" || got["operator/EUR"] != "-10" {
		t.Fatalf("balances %v", got)
	}
}

// TestLostForwardReplayed: record 1 of (_tally, _tally) never reaches
// TALLY_TX (no forwarder runs; record 2 is forwarded by hand), so the
// partition holds record 2 behind a gap and asks the replay responder,
// which republishes record 1 from the oplog stream: both settle, in order.
func TestLostForwardReplayed(t *testing.T) {
	m := newMesh(t, oplog.Options{NoForward: true})
	corr, fx := payloads(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := oplog.Post(ctx, m.js, m.subj, corr, "adj-exc-7"); err != nil {
		t.Fatal(err)
	}
	s2, err := oplog.Post(ctx, m.js, m.subj, fx, "fx-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := oplog.Forward(ctx, m.js, m.subj, s2, fx); err != nil {
		t.Fatal(err)
	}
	m.settled(2)
	if g := m.node.Stats().Gaps; g == 0 {
		t.Fatal("no gap was seen: the test did not lose the forward")
	}
	rep, byID := m.verify()
	if rep.Corrections != 1 || rep.FXRates != 1 {
		t.Fatalf("report %+v", rep)
	}
	if byID["adj-exc-7-1"][0].EdgeSeq != 1 || byID["fx-ecb-EURUSD-1764756000"][0].EdgeSeq != 2 || byID["adj-exc-7-1"][0].Index > byID["fx-ecb-EURUSD-1764756000"][0].Index {
		t.Fatalf("entries out of order: %v", byID)
	}
}

// TestPostRefuses: Post and the builders refuse what the engine would not
// settle, before anything is published.
func TestPostRefuses(t *testing.T) {
	c := correction(t)
	c.ApprovedBy = []string{"alice"}
	if _, err := c.Payload(); !errors.Is(err, oplog.ErrInvalid) || !strings.Contains(err.Error(), "cannot approve") {
		t.Fatalf("self-approved correction: %v", err)
	}
	c = correction(t)
	c.ApprovedBy = []string{"bob"}
	if _, err := c.Payload(); err == nil {
		t.Fatal("one approver where two are required was accepted")
	}
	f := fxRate()
	f.Rate = decimal.Zero
	if _, err := f.Payload(); err == nil {
		t.Fatal("zero rate accepted")
	}
	f = fxRate()
	f.AsOf = f.AsOf.Add(time.Millisecond)
	if _, err := f.Payload(); err == nil {
		t.Fatal("sub-second as_of accepted")
	}
	bet := []byte(`{"id":"b","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`)
	corr, _ := payloads(t)
	for _, p := range [][]byte{bet, append([]byte(" "), corr...)} {
		if _, err := oplog.Post(context.Background(), nil, wire.NewSubjects(""), p, "x"); !errors.Is(err, oplog.ErrInvalid) {
			t.Fatalf("Post(%s) = %v, want ErrInvalid", p, err)
		}
	}
	if got := c.ID(); got != "adj-exc-7-1" {
		t.Fatalf("ID = %q", got)
	}
}
