package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

const (
	opCorrection = `{"id":"adj-exc-7-1","type":"correction","amount":"2.50","currency":"EUR","occurred_at":"2026-12-03T10:00:00Z","meta":{"approvals_required":"1","approved_by":"bob","exception":"exc-7","lines":"studio-a=12.50;operator=-10.00","proposed_by":"alice","reason":"late rollback credited twice"}}`
	opFX         = `{"id":"fx-ecb-EURUSD-1764756000","type":"fx_rate","amount":"0.00","currency":"EUR","occurred_at":"2025-12-03T10:00:00Z","meta":{"pair":"EUR/USD","posted_by":"alice","rate":"1.0842","source":"ecb"}}`
	opPayout     = `{"id":"payout-RUN-000001","type":"payout_run","amount":"0.00","currency":"EUR","occurred_at":"2026-12-02T09:00:00Z","meta":{"approved_by":"bob","created_by":"alice","run":"RUN-000001","run_hash":"abababababababababababababababababababababababababababababababab","statements":"1111111111111111111111111111111111111111111111111111111111111111","totals":"EUR=201.13"}}`
)

func (h *harness) sendFrom(node, provider, payload string) {
	h.t.Helper()
	h.now = h.now.Add(1e9)
	if err := h.eng.Apply(h.st, h.out, &h.cnt, Input{Provider: provider, EdgeNode: node, Payload: []byte(payload), Now: h.now}); err != nil {
		h.t.Fatal(err)
	}
}

func TestOpsIDIsWire(t *testing.T) {
	for _, id := range []string{wire.OpsNode, wire.OpsProvider} {
		if id != txn.OpsID {
			t.Fatalf("wire id %q, txn.OpsID %q", id, txn.OpsID)
		}
	}
}

// TestOperatorEntries: a correction settles its lines as shares (net = Σ,
// any sign), an fx_rate settles with no shares; both only from (_tally,
// _tally); a repeat is a duplicate.
func TestOperatorEntries(t *testing.T) {
	h := newHarness(t)
	ops := txn.OpsID
	h.sendFrom(ops, ops, opCorrection)
	h.sendFrom(ops, ops, opFX)
	h.sendFrom(ops, ops, opPayout)
	h.sendFrom(ops, ops, opCorrection) // the same action posted again
	h.sendFrom(ops, ops, opPayout)     // the same run posted again
	if len(h.out.entries) != 3 || len(h.out.exceptions) != 0 || h.cnt.Duplicates != 2 {
		t.Fatalf("entries %d, exceptions %v, duplicates %d", len(h.out.entries), h.out.kinds(), h.cnt.Duplicates)
	}
	c, f := h.out.entries[0], h.out.entries[1]
	if c.Rule != "correction" || c.Net.String() != "2.5" || len(c.Shares) != 2 || c.Shares[0].Party != "studio-a" || c.Shares[1].Amount.String() != "-10" || c.RuleSet != [32]byte{} {
		t.Fatalf("correction entry %+v", c)
	}
	if f.Rule != "fx_rate" || !f.Net.IsZero() || len(f.Shares) != 0 {
		t.Fatalf("fx entry %+v", f)
	}
	if p := h.out.entries[2]; p.Rule != "payout_run" || !p.Net.IsZero() || len(p.Shares) != 0 || p.RuleSet != [32]byte{} {
		t.Fatalf("payout_run entry %+v", p)
	}
	for _, e := range h.out.entries {
		if err := e.Validate(); err != nil {
			t.Errorf("store validation of %s: %v", e.Tx.ID, err)
		}
	}
	if b := h.balances(); b["studio-a"] != "12.5" || b["operator"] != "-10" {
		t.Fatalf("balances %v", b)
	}
}

func TestOperatorReserved(t *testing.T) {
	ops := txn.OpsID
	bet := txJSON("1", "bet", "10.00", "EUR", "", "")
	// another correction than the one applied first (the same one from
	// provider _tally would be its duplicate, whatever the node)
	corr2 := strings.Replace(opCorrection, `"adj-exc-7-1"`, `"adj-exc-7-2"`, 1)
	for _, tc := range []struct {
		name, node, provider, payload string
	}{
		{"correction from a provider", "edge-1", "p1", corr2},
		{"fx_rate from a provider", "edge-1", "p1", opFX},
		{"payout_run from a provider", "edge-1", "p1", opPayout},
		{"payout_run from _tally node, other provider", ops, "p1", opPayout},
		{"payout_run from _tally provider, other node", "edge-1", ops, opPayout},
		{"correction from _tally node, other provider", ops, "p1", corr2},
		{"correction from _tally provider, other node", "edge-1", ops, corr2},
		{"bet from (_tally,_tally)", ops, ops, bet},
		{"bet from _tally provider", "edge-1", ops, bet},
		{"rollback of a correction", ops, ops, txJSON("r1", "rollback", "2.50", "EUR", "adj-exc-7-1", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.sendFrom(ops, ops, opCorrection)
			h.sendFrom(tc.node, tc.provider, tc.payload)
			if len(h.out.entries) != 1 || strings.Join(h.out.kinds(), ",") != ExcReserved {
				t.Fatalf("entries %d, exceptions %v; want 1 entry and one %q exception", len(h.out.entries), h.out.kinds(), ExcReserved)
			}
			h.sendFrom(tc.node, tc.provider, tc.payload) // recorded: a resend is a duplicate
			if len(h.out.exceptions) != 1 || h.cnt.Duplicates != 1 {
				t.Fatalf("resend: exceptions %v, duplicates %d", h.out.kinds(), h.cnt.Duplicates)
			}
		})
	}
}

// TestOperatorInvalid: an operator payload whose meta does not hold (lines
// that do not sum to the amount; a payout run approved by its creator) is
// never settled.
func TestOperatorInvalid(t *testing.T) {
	for _, bad := range []string{
		strings.Replace(opCorrection, "operator=-10.00", "operator=-10.01", 1),
		strings.Replace(opPayout, `"approved_by":"bob"`, `"approved_by":"alice"`, 1),
	} {
		h := newHarness(t)
		h.sendFrom(txn.OpsID, txn.OpsID, bad)
		if len(h.out.entries) != 0 || strings.Join(h.out.kinds(), ",") != ExcUndecodable {
			t.Fatalf("entries %d, exceptions %v", len(h.out.entries), h.out.kinds())
		}
	}
}

// payoutJSON is a payout_run RUN-<seq> paying statements (hex digits
// repeated to 64), checked by ParsePayoutRun like every payload here.
func payoutJSON(t *testing.T, seq int, statements ...string) string {
	t.Helper()
	hs := make([]string, len(statements))
	for i, s := range statements {
		hs[i] = strings.Repeat(s, 64/len(s))
	}
	run := fmt.Sprintf("RUN-%06d", seq)
	p := strings.NewReplacer(`"payout-RUN-000001"`, `"payout-`+run+`"`, `"run":"RUN-000001"`, `"run":"`+run+`"`,
		strings.Repeat("1", 64), strings.Join(hs, ";")).Replace(opPayout)
	tx, rej := txn.Decode([]byte(p), Limits)
	if rej != nil {
		t.Fatal(rej)
	}
	if _, err := txn.ParsePayoutRun(tx); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPayoutPaidTwice: a payout_run naming a statement an earlier one pays
// is refused whole (exception paid_twice naming the statement and the
// earlier run; no entry; none of its statements marked paid), recorded so a
// resend is a duplicate; a run paying only new statements settles.
func TestPayoutPaidTwice(t *testing.T) {
	ops := txn.OpsID
	h := newHarness(t)
	h.sendFrom(ops, ops, payoutJSON(t, 1, "a"))
	h.sendFrom(ops, ops, payoutJSON(t, 2, "c", "a")) // C new, A paid by run 1
	if len(h.out.entries) != 1 || strings.Join(h.out.kinds(), ",") != ExcPaidTwice {
		t.Fatalf("entries %d, exceptions %v; want 1 entry and one %q", len(h.out.entries), h.out.kinds(), ExcPaidTwice)
	}
	e := h.out.exceptions[0]
	if e.ID != "payout-RUN-000002" || !strings.Contains(e.Reason, strings.Repeat("a", 64)) || !strings.Contains(e.Reason, "payout-RUN-000001") {
		t.Fatalf("exception %+v", e)
	}
	if by, _ := h.st.Paid(strings.Repeat("c", 64)); by != "" {
		t.Fatalf("statement C of the refused run is marked paid by %q", by)
	}
	h.sendFrom(ops, ops, payoutJSON(t, 2, "c", "a")) // resent: a duplicate, no second exception
	if len(h.out.exceptions) != 1 || h.cnt.Duplicates != 1 {
		t.Fatalf("resend: exceptions %v, duplicates %d", h.out.kinds(), h.cnt.Duplicates)
	}
	h.sendFrom(ops, ops, payoutJSON(t, 3, "c")) // C was never paid: settles
	if len(h.out.entries) != 2 || h.out.entries[1].Tx.ID != "payout-RUN-000003" || len(h.out.exceptions) != 1 {
		t.Fatalf("entries %d, exceptions %v", len(h.out.entries), h.out.kinds())
	}
	for s, want := range map[string]string{"a": "payout-RUN-000001", "c": "payout-RUN-000003", "b": ""} {
		if by, _ := h.st.Paid(strings.Repeat(s, 64)); by != want {
			t.Errorf("statement %s paid by %q, want %q", s, by, want)
		}
	}
	if h.cnt.Entries != 2 || h.cnt.Exceptions != 1 {
		t.Fatalf("counters %+v", h.cnt)
	}
}
