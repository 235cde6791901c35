package store

import (
	"strings"
	"testing"
	"time"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

// operatorEntries are a valid correction and fx_rate as the engine settles them.
func operatorEntries(t *testing.T) (Entry, Entry) {
	t.Helper()
	eur := mustCur(t, "EUR")
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	c := Entry{EdgeNode: txn.OpsID, EdgeSeq: 1, Provider: txn.OpsID, Rule: "correction", SettledAt: at.Add(time.Second),
		Tx: txn.Tx{ID: "adj-exc-7-1", Type: txn.Correction, Amount: eur.FromMinor(250), Currency: eur, OccurredAt: at, Meta: map[string]string{
			"exception": "exc-7", "proposed_by": "alice", "approved_by": "bob,carol", "approvals_required": "2",
			"reason": "double credit", "lines": "studio-a=12.50;operator=-10.00"}},
		Shares: []money.Share{{Party: "studio-a", Amount: eur.FromMinor(1250)}, {Party: "operator", Amount: eur.FromMinor(-1000)}},
		Net:    eur.FromMinor(250)}
	asOf := time.Unix(1764756000, 0).UTC()
	f := Entry{EdgeNode: txn.OpsID, EdgeSeq: 2, Provider: txn.OpsID, Rule: "fx_rate", SettledAt: at.Add(time.Second), Net: eur.FromMinor(0),
		Tx: txn.Tx{ID: "fx-ecb-EURUSD-1764756000", Type: txn.FXRate, Amount: eur.FromMinor(0), Currency: eur, OccurredAt: asOf, Meta: map[string]string{
			"source": "ecb", "pair": "EUR/USD", "rate": "1.0842", "posted_by": "alice"}}}
	for _, e := range []Entry{c, f} {
		if err := e.Validate(); err != nil {
			t.Fatalf("valid %s: %v", e.Tx.Type, err)
		}
	}
	return c, f
}

const payStmt = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"

// payoutEntry is a valid payout_run entry as the engine settles it.
func payoutEntry(t *testing.T) Entry {
	t.Helper()
	eur := mustCur(t, "EUR")
	e := Entry{EdgeNode: txn.OpsID, EdgeSeq: 3, Provider: txn.OpsID, Rule: "payout_run", SettledAt: time.Date(2026, 12, 3, 10, 0, 1, 0, time.UTC), Net: eur.FromMinor(0),
		Tx: txn.Tx{ID: "payout-RUN-000001", Type: txn.PayoutRun, Amount: eur.FromMinor(0), Currency: eur, OccurredAt: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC),
			Meta: map[string]string{"run": "RUN-000001", "run_hash": strings.Repeat("ab", 32), "statements": payStmt,
				"created_by": "alice", "approved_by": "bob", "totals": "EUR=201.13"}}}
	if err := e.Validate(); err != nil {
		t.Fatalf("valid payout_run: %v", err)
	}
	return e
}

// TestOperatorEntryValidate: Validate (run by Seal and on every entry by
// Verify) recomputes operator entries from their meta.
func TestOperatorEntryValidate(t *testing.T) {
	c, f := operatorEntries(t)
	eur := c.Tx.Currency
	meta := func(e Entry, k, v string) Entry {
		m := map[string]string{}
		for a, b := range e.Tx.Meta {
			m[a] = b
		}
		m[k] = v
		e.Tx.Meta = m
		return e
	}
	for _, tc := range []struct {
		name   string
		e      Entry
		reason string
	}{
		{"approver is the proposer", meta(c, "approved_by", "alice,bob"), "cannot approve"},
		{"lines do not sum to amount", meta(c, "lines", "studio-a=12.50;operator=-10.01"), "|Σ lines|"},
		{"shares are not the lines", func() Entry {
			e := c
			e.Shares = []money.Share{{Party: "studio-a", Amount: eur.FromMinor(1251)}, {Party: "operator", Amount: eur.FromMinor(-1001)}}
			return e
		}(), "meta.lines says"},
		{"correction from a provider", func() Entry { e := c; e.Provider = "p1"; return e }(), "must come from"},
		{"bet from _tally", func() Entry {
			e := c
			e.Tx.Type, e.Tx.Meta, e.Rule = txn.Bet, nil, "casino"
			e.Shares = []money.Share{{Party: "operator", Amount: eur.FromMinor(250)}}
			return e
		}(), "reserved for operator entries"},
		{"rule set on a correction", func() Entry { e := c; e.RuleSet[0] = 1; return e }(), "rule set"},
		{"zero rate", meta(f, "rate", "0"), "> 0"},
		{"fx with shares", func() Entry {
			e := f
			e.Shares = []money.Share{{Party: "a", Amount: eur.FromMinor(1)}, {Party: "b", Amount: eur.FromMinor(-1)}}
			return e
		}(), "no shares"},
		{"payout run approved by its creator", meta(payoutEntry(t), "approved_by", "alice"), "cannot approve"},
		{"payout run paying a statement twice", meta(payoutEntry(t), "statements", payStmt+";"+payStmt), "twice"},
		{"payout run with shares", func() Entry {
			e := payoutEntry(t)
			e.Shares = []money.Share{{Party: "a", Amount: eur.FromMinor(1)}, {Party: "b", Amount: eur.FromMinor(-1)}}
			return e
		}(), "no shares"},
		{"payout run from a provider", func() Entry { e := payoutEntry(t); e.Provider = "p1"; return e }(), "must come from"},
		{"payout run rule", func() Entry { e := payoutEntry(t); e.Rule = "fx_rate"; return e }(), "rule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Validate = %v, want %q", err, tc.reason)
			}
			if _, _, err := tc.e.appendBinary(nil); err == nil {
				if _, balanced, _ := tc.e.appendBinary(nil); balanced {
					t.Fatal("the encoder's fast check calls it balanced: Seal would skip Validate")
				}
			}
		})
	}
}

// TestForgedOperatorEntryFailsVerify: a correction forged into the ledger by
// someone who rewrites a segment coherently (entries, root, totals) — an
// approval by the proposer, lines that do not sum — is reported by Verify at
// its entry, with the reason.
func TestForgedOperatorEntryFailsVerify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		forge  func(e *Entry)
		reason string
	}{
		{"approved by the proposer", func(e *Entry) { e.Tx.Meta["approved_by"] = "alice,carol" }, "cannot approve"},
		{"lines not summing", func(e *Entry) { e.Tx.Meta["lines"] = "studio-a=12.50;operator=-9.00" }, "|Σ lines|"},
		// An fx_rate forged in its place: recomputed from its meta too.
		{"fx_rate with a zero rate", func(e *Entry) {
			_, f := operatorEntries(t)
			f.EdgeSeq, f.Tx.ID = e.EdgeSeq, "fx-ecb-EURUSD-1764759600"
			f.Tx.OccurredAt = time.Unix(1764759600, 0).UTC()
			f.Tx.Meta["rate"] = "0"
			*e = f
		}, "> 0"},
		{"fx_rate moving money", func(e *Entry) {
			_, f := operatorEntries(t)
			f.EdgeSeq = e.EdgeSeq
			f.Shares = []money.Share{{Party: "a", Amount: f.Tx.Currency.FromMinor(1)}, {Party: "b", Amount: f.Tx.Currency.FromMinor(-1)}}
			*e = f
		}, "no shares"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := &testLedger{dir: t.TempDir(), key: newKey(t, testOrigin)}
			l := openLedger(t, tl.dir, tl.key)
			c, f := operatorEntries(t)
			seal(t, l, 0, []Entry{c, f})
			sign(t, l, 0)
			c2 := c
			c2.Tx.ID, c2.EdgeSeq = "adj-exc-7-2", 3
			c2.Tx.Meta = map[string]string{}
			for k, v := range c.Tx.Meta {
				c2.Tx.Meta[k] = v
			}
			seal(t, l, 0, []Entry{c2}) // not signed yet: checked like the others
			if err := WriteVerifierKey(tl.dir, tl.key.vkey); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(tl.dir, "", nil); err != nil {
				t.Fatalf("untouched ledger: %v", err)
			}
			tl.rewrite(t, 0, 2, true, func(es []Entry) []Entry { tc.forge(&es[0]); return es })
			_, err := Verify(tl.dir, "", nil)
			ce := asCorrupt(t, err)
			if ce.Segment != 2 || ce.Index != 2 || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Verify = %v (segment %d entry %d), want segment 2 entry 2: %q", err, ce.Segment, ce.Index, tc.reason)
			}
		})
	}
}
