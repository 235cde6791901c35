package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

const testRules = `
ruleset "v1" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "casino" {
    share "studio" {
      party   = "${provider}"
      percent = "12"
    }
    share "affiliate" {
      party   = "${affiliate}"
      percent = "5"
    }
    remainder = "operator"
  }
}
ruleset "v2" {
  effective  = "2026-11-15T00:00:00Z"
  rounding   = "half_even"
  allocation = "largest_remainder"
  rule "casino" {
    share "studio" {
      party   = "${provider}"
      percent = "15"
    }
    remainder = "operator"
  }
}
`

// ruled is a ledger settled by real rules: the way the settle worker does
// it, reimplemented here (split with Book.Split; reverse what is left of the
// parent with rules.Reverse).
type ruled struct {
	t      *testing.T
	dir    string
	vkey   string
	book   *rules.Book
	l      *store.Ledger
	parent map[string]*store.Entry // by id
	left   map[string][]money.Share
	rev    map[string]decimal.Decimal
	n      int
	bal    map[[2]string]decimal.Decimal
}

func newRuled(t *testing.T) *ruled {
	t.Helper()
	book, err := rules.Parse([]byte(testRules), "test.hcl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	skey, vkey, err := note.GenerateKey(nil, "tally.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	if err := store.WriteVerifierKey(dir, vkey); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, RulesDir), 0o755)
	for _, v := range book.Versions() {
		h := v.Hash()
		if err := os.WriteFile(filepath.Join(dir, RulesDir, fmt.Sprintf("%x.json", h)), v.Canonical(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := store.Open(store.Options{Dir: dir, Origin: "tally.test/ledger", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &ruled{t: t, dir: dir, vkey: vkey, book: book, l: l, parent: map[string]*store.Entry{},
		left: map[string][]money.Share{}, rev: map[string]decimal.Decimal{}, bal: map[[2]string]decimal.Decimal{}}
}

func (r *ruled) tx(typ txn.Type, amount, code string, day int) txn.Tx {
	r.n++
	cur, _ := money.Lookup(code)
	return txn.Tx{ID: fmt.Sprintf("t%d", r.n), Type: typ, Amount: decimal.RequireFromString(amount), Currency: cur,
		OccurredAt: time.Date(2026, 11, day, 12, 0, 0, 0, time.UTC), Game: "g", Affiliate: "aff-1"}
}

func (r *ruled) split(tx txn.Tx) store.Entry {
	res, err := r.book.Split("acme", tx)
	if err != nil {
		r.t.Fatal(err)
	}
	return store.Entry{Partition: 1, EdgeNode: "e", EdgeSeq: uint64(r.n), Provider: "acme", Tx: tx,
		RuleSet: res.Version.Hash(), Rule: res.Rule, Net: tx.Signed(), Shares: res.Shares}
}

func (r *ruled) reverse(typ txn.Type, parentID, amount string) store.Entry {
	p := r.parent[parentID]
	tx := r.tx(typ, amount, p.Tx.Currency.Code, 20)
	tx.Parent = parentID
	left := r.left[parentID]
	if left == nil {
		left = p.Shares
	}
	leftAbs := p.Net.Abs().Sub(r.rev[parentID])
	shares, err := rules.Reverse(left, leftAbs, tx.Amount, tx.Currency)
	if err != nil {
		r.t.Fatal(err)
	}
	rest := make([]money.Share, len(left))
	for i := range left {
		rest[i] = money.Share{Party: left[i].Party, Amount: left[i].Amount.Add(shares[i].Amount)}
	}
	r.left[parentID], r.rev[parentID] = rest, r.rev[parentID].Add(tx.Amount)
	return store.Entry{Partition: 1, EdgeNode: "e", EdgeSeq: uint64(r.n), Provider: "acme", Tx: tx,
		RuleSet: p.RuleSet, Net: money.Sum(shares), Shares: shares}
}

func (r *ruled) seal(es ...store.Entry) {
	r.t.Helper()
	if _, _, err := r.l.Seal(1, es, time.Now()); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.l.Sign(1); err != nil {
		r.t.Fatal(err)
	}
	for i := range es {
		e := es[i]
		r.parent[e.Tx.ID] = &e
		for _, s := range e.Shares {
			k := [2]string{s.Party, e.Tx.Currency.Code}
			r.bal[k] = r.bal[k].Add(s.Amount)
		}
	}
}

// good seals two segments: bets and wins under both rule versions, a full
// rollback and two partial refunds of one bet.
func (r *ruled) good() {
	b1 := r.split(r.tx(txn.Bet, "10.01", "EUR", 2))
	b2 := r.split(r.tx(txn.Bet, "777", "JPY", 3))
	w1 := r.split(r.tx(txn.Win, "3.333", "KWD", 4))
	b3 := r.split(r.tx(txn.Bet, "99.99", "EUR", 16)) // v2
	r.seal(b1, b2, w1, b3)
	rb := r.reverse(txn.Rollback, b2.Tx.ID, "777")
	rf1 := r.reverse(txn.Refund, b3.Tx.ID, "33.33")
	r.seal(rb, rf1)
	rf2 := r.reverse(txn.Refund, b3.Tx.ID, "33.33")
	r.seal(rf2, r.split(r.tx(txn.Bet, "0.07", "EUR", 17)))
}

func (r *ruled) balances() *Balances {
	var bs []settle.Balance
	for k, v := range r.bal {
		bs = append(bs, settle.Balance{Party: k[0], Currency: k[1], Amount: v})
	}
	return &Balances{Source: "test", Partitions: []settle.PartitionBalances{{Partition: 1, Segments: r.l.Head(1).Segments, Balances: bs}}}
}

func TestVerifyRecomputesSplits(t *testing.T) {
	r := newRuled(t)
	r.good()
	rep, err := Verify(r.dir, Options{Key: r.vkey, Balances: r.balances()})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Splits != 5 || rep.Reversals != 3 || rep.RuleSets != 2 || len(rep.BalancesChecked) != 1 || rep.Entries != 8 {
		t.Fatalf("report: %d splits, %d reversals, %d rule sets, balances %v, %d entries", rep.Splits, rep.Reversals, rep.RuleSets, rep.BalancesChecked, rep.Entries)
	}
}

func TestVerifyDetectsWrongSettlement(t *testing.T) {
	type bad struct {
		name   string
		build  func(r *ruled) // seals what precedes the bad entry and the bad entry
		bal    func(r *ruled) *Balances
		seg    uint64
		index  int64
		reason string
	}
	tests := []bad{
		{"shares moved between parties, still balanced", func(r *ruled) {
			r.good()
			e := r.split(r.tx(txn.Bet, "100.00", "EUR", 18))
			e.Shares[0].Amount = e.Shares[0].Amount.Add(decimal.RequireFromString("0.01"))
			e.Shares[1].Amount = e.Shares[1].Amount.Sub(decimal.RequireFromString("0.01"))
			r.seal(e)
		}, nil, 4, 8, "recorded shares differ from rule \"casino\" of \"v2\": share 0 is acme 15.01, recomputed acme 15"},
		{"split by a rule set not in force", func(r *ruled) {
			r.good()
			tx := r.tx(txn.Bet, "100.00", "EUR", 18)
			v1, _ := r.book.At(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
			res, _ := v1.Split("acme", tx)
			r.seal(store.Entry{Partition: 1, EdgeNode: "e", Provider: "acme", Tx: tx, RuleSet: v1.Hash(), Rule: res.Rule, Net: tx.Signed(), Shares: res.Shares})
		}, nil, 4, 8, "but \"v2\""},
		{"rule set not recorded", func(r *ruled) {
			r.good()
			e := r.split(r.tx(txn.Bet, "1.00", "EUR", 18))
			e.RuleSet[0] ^= 1
			r.seal(e)
		}, nil, 4, 8, "not in rules/"},
		{"transaction settled twice", func(r *ruled) {
			r.good()
			e := *r.parent["t1"]
			r.seal(e)
		}, nil, 4, 8, "settled twice: first at partition 1 entry 0"},
		{"reversal that does not follow its parent's shares", func(r *ruled) {
			r.good()
			e := r.reverse(txn.Rollback, "t1", "10.01")
			e.Shares[0].Amount, e.Shares[2].Amount = e.Shares[0].Amount.Add(decimal.RequireFromString("0.01")), e.Shares[2].Amount.Sub(decimal.RequireFromString("0.01"))
			r.seal(e)
		}, nil, 4, 8, "differ from the reversal of t1"},
		{"refund larger than what is left of the parent", func(r *ruled) {
			r.good()
			tx := r.tx(txn.Refund, "40.00", "EUR", 21)
			tx.Parent = "t4" // 99.99, 66.66 already refunded
			p := r.parent["t4"]
			shares, _ := rules.Reverse(p.Shares, p.Net.Abs(), tx.Amount, tx.Currency)
			r.seal(store.Entry{Partition: 1, EdgeNode: "e", Provider: "acme", Tx: tx, RuleSet: p.RuleSet, Net: money.Sum(shares), Shares: shares})
		}, nil, 4, 8, "what is left (33.33)"},
		{"reversal of a transaction not in the ledger", func(r *ruled) {
			r.good()
			tx := r.tx(txn.Rollback, "1.00", "EUR", 21)
			tx.Parent = "nope"
			cur := tx.Currency
			r.seal(store.Entry{Partition: 1, EdgeNode: "e", Provider: "acme", Tx: tx, Net: cur.FromMinor(-100), Shares: []money.Share{{Party: "operator", Amount: cur.FromMinor(-100)}}})
		}, nil, 4, 8, "reverses nope, which is not in the ledger"},
		{"index balance differs from the entries", func(r *ruled) { r.good() }, func(r *ruled) *Balances {
			b := r.balances()
			for i, bal := range b.Partitions[0].Balances {
				if bal.Party == "operator" && bal.Currency == "EUR" {
					b.Partitions[0].Balances[i].Amount = bal.Amount.Add(decimal.RequireFromString("0.01"))
				}
			}
			return b
		}, 3, -1, "balance of operator in EUR is"},
		{"index committed more segments than the ledger has", func(r *ruled) { r.good() }, func(r *ruled) *Balances {
			b := r.balances()
			b.Partitions[0].Segments = 9
			return b
		}, 9, -1, "committed 9 segments, the ledger has 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRuled(t)
			tc.build(r)
			var b *Balances
			if tc.bal != nil {
				b = tc.bal(r)
			}
			_, err := Verify(r.dir, Options{Key: r.vkey, Balances: b})
			var ce *store.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("Verify = %v, want a *store.CorruptError", err)
			}
			if ce.Partition != 1 || ce.Segment != tc.seg || ce.Index != tc.index {
				t.Fatalf("error at partition %d segment %d entry %d, want 1/%d/%d: %v", ce.Partition, ce.Segment, ce.Index, tc.seg, tc.index, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error %q does not say %q", err, tc.reason)
			}
		})
	}
}

func TestVerifyRuleFiles(t *testing.T) {
	r := newRuled(t)
	r.good()
	files, _ := filepath.Glob(filepath.Join(r.dir, RulesDir, "*.json"))
	b, _ := os.ReadFile(files[0])
	os.WriteFile(files[0], append(b, ' '), 0o644)
	if _, err := Verify(r.dir, Options{Key: r.vkey}); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "recorded rule set was changed") {
		t.Fatalf("Verify with an edited rule file = %v", err)
	}
	os.WriteFile(files[0], b, 0o644)
	os.Rename(files[0], filepath.Join(r.dir, RulesDir, "v1.json"))
	if _, err := Verify(r.dir, Options{Key: r.vkey}); err == nil || !strings.Contains(err.Error(), "not named <sha256 hex>.json") {
		t.Fatalf("Verify with a misnamed rule file = %v", err)
	}
}

// TestVerifyNewEntryKinds: the kinds of entry issue 15 added are recomputed
// by Verify. A deposit and a tax are split by the rules like any
// transaction (and a refund of the deposit replays its shares), so a moved
// share is caught by the recomputation; a correction's shares are its
// approved lines and an fx_rate has none (store.Entry.Validate, run on
// every entry Verify reads). The report counts each: splits, reversals,
// corrections, fx rates.
func TestVerifyNewEntryKinds(t *testing.T) {
	operator := func(r *ruled) (store.Entry, store.Entry) {
		eur, _ := money.Lookup("EUR")
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		c := store.Entry{Partition: 1, EdgeNode: txn.OpsID, EdgeSeq: 100, Provider: txn.OpsID, Rule: "correction",
			Tx: txn.Tx{ID: "adj-exc-1-1", Type: txn.Correction, Amount: eur.FromMinor(250), Currency: eur, OccurredAt: at, Meta: map[string]string{
				"exception": "exc-1", "proposed_by": "alice", "approved_by": "bob", "approvals_required": "1",
				"reason": "missed credit", "lines": "acme=12.50;operator=-10.00"}},
			Shares: []money.Share{{Party: "acme", Amount: eur.FromMinor(1250)}, {Party: "operator", Amount: eur.FromMinor(-1000)}},
			Net:    eur.FromMinor(250)}
		asOf := time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)
		f := store.Entry{Partition: 1, EdgeNode: txn.OpsID, EdgeSeq: 101, Provider: txn.OpsID, Rule: "fx_rate", Net: eur.FromMinor(0),
			Tx: txn.Tx{ID: fmt.Sprintf("fx-ecb-EURUSD-%d", asOf.Unix()), Type: txn.FXRate, Amount: eur.FromMinor(0), Currency: eur, OccurredAt: asOf,
				Meta: map[string]string{"source": "ecb", "pair": "EUR/USD", "rate": "1.12", "posted_by": "treasury"}}}
		return c, f
	}
	newKinds := func(r *ruled) (dep store.Entry) {
		dep = r.split(r.tx(txn.Deposit, "50.00", "EUR", 18))
		tax := r.split(r.tx(txn.Tax, "7.77", "EUR", 19))
		c, f := operator(r)
		r.seal(dep, tax, c, f)
		return dep
	}

	r := newRuled(t)
	r.good()
	newKinds(r)
	r.seal(r.reverse(txn.Refund, "t6", "20.00")) // t6: the deposit
	rep, err := Verify(r.dir, Options{Key: r.vkey, Balances: r.balances()})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Splits != 7 || rep.Reversals != 4 || rep.Corrections != 1 || rep.FXRates != 1 || rep.Entries != 13 {
		t.Fatalf("report: %d splits, %d reversals, %d corrections, %d fx rates, %d entries; want 7, 4, 1, 1, 13",
			rep.Splits, rep.Reversals, rep.Corrections, rep.FXRates, rep.Entries)
	}

	for _, tc := range []struct {
		name   string
		build  func(r *ruled)
		index  int64
		reason string
	}{
		{"deposit shares moved between parties", func(r *ruled) {
			r.good()
			e := r.split(r.tx(txn.Deposit, "50.00", "EUR", 18))
			e.Shares[0].Amount = e.Shares[0].Amount.Add(decimal.RequireFromString("0.01"))
			e.Shares[1].Amount = e.Shares[1].Amount.Sub(decimal.RequireFromString("0.01"))
			r.seal(e)
		}, 8, "recorded shares differ from rule \"casino\""},
		{"tax split by another rule set", func(r *ruled) {
			r.good()
			tx := r.tx(txn.Tax, "7.77", "EUR", 19)
			v1, _ := r.book.At(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
			res, _ := v1.Split("acme", tx)
			r.seal(store.Entry{Partition: 1, EdgeNode: "e", Provider: "acme", Tx: tx, RuleSet: v1.Hash(), Rule: res.Rule, Net: tx.Signed(), Shares: res.Shares})
		}, 8, "but \"v2\""},
		{"refund of a deposit off its recorded shares", func(r *ruled) {
			r.good()
			newKinds(r)
			e := r.reverse(txn.Refund, "t6", "20.00")
			e.Shares[0].Amount, e.Shares[1].Amount = e.Shares[0].Amount.Add(decimal.RequireFromString("0.01")), e.Shares[1].Amount.Sub(decimal.RequireFromString("0.01"))
			r.seal(e)
		}, 12, "differ from the reversal of t6"},
		{"correction settled twice", func(r *ruled) {
			r.good()
			newKinds(r)
			c, _ := operator(r)
			c.EdgeSeq = 102
			r.seal(c)
		}, 12, "_tally/adj-exc-1-1 is settled twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRuled(t)
			tc.build(r)
			_, err := Verify(r.dir, Options{Key: r.vkey})
			var ce *store.CorruptError
			if !errors.As(err, &ce) || ce.Index != tc.index || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Verify = %v, want entry %d: %q", err, tc.index, tc.reason)
			}
		})
	}
}

// payoutRunEntry is a payout_run entry as the engine settles it: run seq,
// paying the given statement hashes.
func payoutRunEntry(seq int, edgeSeq uint64, statements ...string) store.Entry {
	eur, _ := money.Lookup("EUR")
	run := fmt.Sprintf("RUN-%06d", seq)
	return store.Entry{Partition: 1, EdgeNode: txn.OpsID, EdgeSeq: edgeSeq, Provider: txn.OpsID, Rule: "payout_run", Net: eur.FromMinor(0),
		Tx: txn.Tx{ID: txn.PayoutRunID(run), Type: txn.PayoutRun, Amount: eur.FromMinor(0), Currency: eur,
			OccurredAt: time.Date(2026, 12, 2, 9, seq, 0, 0, time.UTC), Meta: map[string]string{
				"run": run, "run_hash": strings.Repeat(fmt.Sprintf("%x", seq%16), 64), "statements": strings.Join(statements, ";"),
				"created_by": "alice", "approved_by": "bob", "totals": "EUR=201.13"}}}
}

// TestVerifyPayoutRunsNeverPayTwice: payout_run entries are counted with
// the statements they pay; a ledger in which two payout_run entries — each
// valid on its own, signed and chained like any entry — pay the same
// statement fails verification at the second, with ErrPaidTwice: a
// balance paid twice is visible from the ledger alone.
func TestVerifyPayoutRunsNeverPayTwice(t *testing.T) {
	h1, h2, h3 := strings.Repeat("a1", 32), strings.Repeat("b2", 32), strings.Repeat("c3", 32)

	r := newRuled(t)
	r.good()
	r.seal(payoutRunEntry(1, 200, h1, h2))
	r.seal(payoutRunEntry(2, 201, h3))
	rep, err := Verify(r.dir, Options{Key: r.vkey, Balances: r.balances()})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.PayoutRuns != 2 || rep.PaidStatements != 3 || rep.Entries != 10 {
		t.Fatalf("report: %d payout runs paying %d statements, %d entries; want 2, 3, 10", rep.PayoutRuns, rep.PaidStatements, rep.Entries)
	}

	r = newRuled(t)
	r.good()
	r.seal(payoutRunEntry(1, 200, h1, h2))
	r.seal(payoutRunEntry(2, 201, h3, h2)) // pays h2 again
	_, err = Verify(r.dir, Options{Key: r.vkey})
	var ce *store.CorruptError
	if !errors.Is(err, ErrPaidTwice) || !errors.As(err, &ce) || ce.Index != 9 ||
		!strings.Contains(err.Error(), "statement "+h2+" is paid by RUN-000001 (partition 1 entry 8) and again by RUN-000002") {
		t.Fatalf("Verify = %v, want ErrPaidTwice at entry 9 naming both runs", err)
	}
}
