package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

const testOrigin = "tally.test/ledger"

var testTime = time.Date(2026, 11, 1, 10, 0, 0, 123456789, time.UTC)

func mustCur(t testing.TB, code string) money.Currency {
	t.Helper()
	c, ok := money.Lookup(code)
	if !ok {
		t.Fatalf("unknown currency %s", code)
	}
	return c
}

// sampleEntry has every field set; its encoding is the documented vector.
func sampleEntry(t testing.TB) Entry {
	eur := mustCur(t, "EUR")
	var rs [32]byte
	for i := range rs {
		rs[i] = byte(i)
	}
	return Entry{
		Partition: 3, Index: 17, EdgeNode: "edge-1", EdgeSeq: 42, Provider: "acme",
		Tx: txn.Tx{
			ID: "p-1001", Type: txn.Bet, Amount: decimal.RequireFromString("10.00"), Currency: eur,
			OccurredAt: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), Round: "R1", Seq: 17,
			Game: "book-of-x", Category: "slot", Jurisdiction: "MT", Brand: "main", Affiliate: "aff-7",
			Player: "9f2c", Meta: map[string]string{"campaign": "nov", "ab": "x"},
		},
		RuleSet: rs, Rule: "slots-70-30", Net: decimal.RequireFromString("10.00"),
		Shares: []money.Share{
			{Party: "acme", Amount: decimal.RequireFromString("7.00")},
			{Party: "platform", Amount: decimal.RequireFromString("2.50")},
			{Party: "aff-7", Amount: decimal.RequireFromString("0.50")},
		},
		SettledAt: time.Date(2026, 11, 1, 10, 0, 1, 500, time.UTC),
	}
}

// gen makes valid entries with unique ids "tx-p<p>-<n>" in a few currencies.
type gen struct {
	rng *rand.Rand
	n   int
}

func newGen(t testing.TB) *gen {
	seed := rand.Uint64()
	t.Logf("entry seed %d", seed)
	return &gen{rng: rand.New(rand.NewPCG(seed, 7))}
}

func (g *gen) entries(t testing.TB, p uint32, n int) []Entry {
	codes := []string{"EUR", "JPY", "KWD"}
	types := []txn.Type{txn.Bet, txn.Win, txn.Refund, txn.Purchase}
	out := make([]Entry, n)
	for i := range out {
		g.n++
		cur := mustCur(t, codes[g.rng.IntN(len(codes))])
		m := g.rng.Int64N(1_000_000)
		tx := txn.Tx{
			ID: fmt.Sprintf("tx-p%d-%06d", p, g.n), Type: types[g.rng.IntN(len(types))],
			Amount: cur.FromMinor(m), Currency: cur, OccurredAt: testTime.Add(time.Duration(g.n) * time.Second),
			Seq: uint64(g.n), Game: "book-of-x", Meta: map[string]string{"campaign": "nov"},
		}
		sign := int64(1)
		if tx.Type.Sign() < 0 {
			sign = -1
		}
		rule := "default"
		if tx.Type.Reversal() {
			tx.Parent, sign, rule = "parent-"+tx.ID, -1, ""
		}
		a := m * 7 / 10
		out[i] = Entry{
			Partition: p, EdgeNode: "edge-1", EdgeSeq: uint64(g.n), Provider: "acme", Tx: tx,
			Rule: rule, Net: cur.FromMinor(sign * m),
			Shares: []money.Share{
				{Party: "acme", Amount: cur.FromMinor(sign * a)},
				{Party: "platform", Amount: cur.FromMinor(sign * (m - a))},
			},
			SettledAt: testTime.Add(time.Duration(g.n) * time.Second),
		}
	}
	return out
}

type testKey struct {
	signer note.Signer
	vkey   string
}

func newKey(t testing.TB, name string) testKey {
	t.Helper()
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{s, vkey}
}

func openLedger(t testing.TB, dir string, k testKey) *Ledger {
	t.Helper()
	l, err := Open(Options{Dir: dir, Origin: testOrigin, Signer: k.signer})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func seal(t testing.TB, l *Ledger, p uint32, es []Entry) SegmentHeader {
	t.Helper()
	h, _, err := l.Seal(p, es, testTime)
	if err != nil {
		t.Fatalf("Seal(%d): %v", p, err)
	}
	return h
}

func sign(t testing.TB, l *Ledger, p uint32) []byte {
	t.Helper()
	b, err := l.Sign(p)
	if err != nil {
		t.Fatalf("Sign(%d): %v", p, err)
	}
	return b
}

func asCorrupt(t testing.TB, err error) *CorruptError {
	t.Helper()
	var ce *CorruptError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("error = %v, want a *CorruptError", err)
	}
	return ce
}

func segFile(dir string, p uint32, n uint64) string {
	return segmentPath(partitionDir(dir, p), n)
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
