package engine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
)

const engineRules = `
ruleset "v1" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "casino" {
    types = ["bet", "win"]
    share "studio" {
      party   = "${provider}"
      percent = "12.5"
    }
    share "aff" {
      party   = "${affiliate}"
      percent = "7"
    }
    remainder = "operator"
  }
}
`

// memSink records what the engine decides.
type memSink struct {
	entries    []store.Entry
	exceptions []Exception
}

func (s *memSink) Entry(e store.Entry)   { s.entries = append(s.entries, e) }
func (s *memSink) Exception(e Exception) { s.exceptions = append(s.exceptions, e) }
func (s *memSink) kinds() (out []string) {
	for _, e := range s.exceptions {
		out = append(out, e.Kind)
	}
	return out
}

type harness struct {
	t   testing.TB
	eng Engine
	st  *MemState
	out *memSink
	cnt Counters
	now time.Time
}

func newHarness(t testing.TB) *harness {
	book, err := rules.Parse([]byte(engineRules), "engine.hcl")
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, eng: Engine{Book: book}, st: NewMemState(), out: &memSink{}, now: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)}
}

func (h *harness) send(provider, payload string) {
	h.t.Helper()
	h.now = h.now.Add(time.Second)
	if err := h.eng.Apply(h.st, h.out, &h.cnt, Input{Provider: provider, EdgeNode: "e", Payload: []byte(payload), Now: h.now}); err != nil {
		h.t.Fatal(err)
	}
}

func txJSON(id, typ, amount, cur, parent, aff string) string {
	s := fmt.Sprintf(`{"id":%q,"type":%q,"amount":%q,"currency":%q,"occurred_at":"2026-11-01T10:00:00Z"`, id, typ, amount, cur)
	if parent != "" {
		s += fmt.Sprintf(`,"parent":%q`, parent)
	}
	if aff != "" {
		s += fmt.Sprintf(`,"affiliate":%q`, aff)
	}
	return s + "}"
}

// balances sums the shares of every entry per party (one currency).
func (h *harness) balances() map[string]string {
	m := map[string]decimal.Decimal{}
	for _, e := range h.out.entries {
		for _, s := range e.Shares {
			m[s.Party] = m[s.Party].Add(s.Amount)
		}
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = v.String()
	}
	return out
}

// TestEngineDecisions: each decision of the engine, table-driven.
func TestEngineDecisions(t *testing.T) {
	tests := []struct {
		name       string
		txs        []string // "provider|payload"
		entries    int
		exceptions string
		balances   string
		held       int
	}{
		{"bet", []string{"s|" + txJSON("1", "bet", "10.00", "EUR", "", "a")}, 1, "", "map[a:0.7 operator:8.05 s:1.25]", 0},
		{"duplicate applies nothing", []string{"s|" + txJSON("1", "bet", "10.00", "EUR", "", "a"), "s|" + txJSON("1", "bet", "10.00", "EUR", "", "a")}, 1, "", "map[a:0.7 operator:8.05 s:1.25]", 0},
		{"same id other provider is another transaction", []string{"s|" + txJSON("1", "bet", "10.00", "EUR", "", ""), "t|" + txJSON("1", "bet", "10.00", "EUR", "", "")}, 2, "", "map[operator:17.5 s:1.25 t:1.25]", 0},
		{"conflict is recorded, first payload stands", []string{"s|" + txJSON("1", "bet", "10.00", "EUR", "", ""), "s|" + txJSON("1", "bet", "11.00", "EUR", "", "")}, 1, "conflict", "map[operator:8.75 s:1.25]", 0},
		{"full rollback", []string{"s|" + txJSON("1", "bet", "10.00", "EUR", "", "a"), "s|" + txJSON("2", "rollback", "10.00", "EUR", "1", "")}, 2, "", "map[a:0 operator:0 s:0]", 0},
		{"rollback before its bet is held, then applied", []string{"s|" + txJSON("2", "rollback", "10.00", "EUR", "1", ""), "s|" + txJSON("1", "bet", "10.00", "EUR", "", "a")}, 2, "", "map[a:0 operator:0 s:0]", 0},
		{"rollback without its bet stays held", []string{"s|" + txJSON("2", "rollback", "10.00", "EUR", "1", "")}, 0, "", "map[]", 1},
		{"two early partial rollbacks, one parent", []string{"s|" + txJSON("3", "refund", "4.00", "EUR", "1", ""), "s|" + txJSON("2", "rollback", "6.00", "EUR", "1", ""), "s|" + txJSON("1", "bet", "10.00", "EUR", "", "a")}, 3, "", "map[a:0 operator:0 s:0]", 0},
		{"over-reversal", []string{"s|" + txJSON("1", "bet", "10.00", "EUR", "", ""), "s|" + txJSON("2", "rollback", "6.00", "EUR", "1", ""), "s|" + txJSON("3", "rollback", "5.00", "EUR", "1", "")}, 2, "over_reversal", "map[operator:3.5 s:0.5]", 0},
		{"currency differs from parent", []string{"s|" + txJSON("1", "bet", "10.00", "EUR", "", ""), "s|" + txJSON("2", "rollback", "10.00", "USD", "1", "")}, 1, "currency", "map[operator:8.75 s:1.25]", 0},
		{"no rule", []string{"s|" + txJSON("1", "purchase", "10.00", "EUR", "", "")}, 0, "no_rule", "map[]", 0},
		{"undecodable", []string{"s|{\"id\":1}"}, 0, "undecodable", "map[]", 0},
		{"rollback of a rollback restores", []string{"s|" + txJSON("1", "bet", "10.00", "EUR", "", "a"), "s|" + txJSON("2", "rollback", "10.00", "EUR", "1", ""), "s|" + txJSON("3", "rollback", "10.00", "EUR", "2", "")}, 3, "", "map[a:0.7 operator:8.05 s:1.25]", 0},
		{"win is borne", []string{"s|" + txJSON("1", "win", "10.00", "EUR", "", "a")}, 1, "", "map[a:-0.7 operator:-8.05 s:-1.25]", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for _, x := range tc.txs {
				p, payload, _ := strings.Cut(x, "|")
				h.send(p, payload)
			}
			if len(h.out.entries) != tc.entries || strings.Join(h.out.kinds(), ",") != tc.exceptions || h.st.OpenOrphans() != tc.held {
				t.Errorf("entries %d exceptions %v held %d, want %d %q %d", len(h.out.entries), h.out.kinds(), h.st.OpenOrphans(), tc.entries, tc.exceptions, tc.held)
			}
			if got := fmt.Sprint(h.balances()); got != tc.balances {
				t.Errorf("balances %s, want %s", got, tc.balances)
			}
			if h.cnt.Entries != uint64(len(h.out.entries)) || h.cnt.Exceptions != uint64(len(h.out.exceptions)) || h.cnt.OrphansHeld != uint64(tc.held) {
				t.Errorf("counters %+v disagree with the sink", h.cnt)
			}
		})
	}
}

// TestEngineExpire: a held reversal older than the timeout becomes an
// exception, keeps its (provider, id), and its parent then settles alone.
func TestEngineExpire(t *testing.T) {
	h := newHarness(t)
	h.send("s", txJSON("2", "rollback", "10.00", "EUR", "1", ""))
	if err := h.eng.Expire(h.st, h.out, &h.cnt, h.now.Add(time.Hour), 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if h.st.OpenOrphans() != 1 {
		t.Fatalf("expired before the timeout")
	}
	if err := h.eng.Expire(h.st, h.out, &h.cnt, h.now.Add(3*time.Hour), 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if h.st.OpenOrphans() != 0 || strings.Join(h.out.kinds(), ",") != ExcOrphanTimout || h.out.exceptions[0].Provider != "s" || h.out.exceptions[0].ID != "2" {
		t.Fatalf("after expiry: held %d exceptions %+v", h.st.OpenOrphans(), h.out.exceptions)
	}
	h.send("s", txJSON("2", "rollback", "10.00", "EUR", "1", ""))
	h.send("s", txJSON("1", "bet", "10.00", "EUR", "", ""))
	if len(h.out.entries) != 1 || h.cnt.Duplicates != 1 {
		t.Errorf("entries %d duplicates %d, want the bet alone and the resent rollback a duplicate", len(h.out.entries), h.cnt.Duplicates)
	}
}

// TestEngineProperty: random streams of bets and wins in random currencies
// with random partial reversals (some before their parent, some of other
// reversals). Every entry's shares sum to its net; no party ever gets back
// more than its share of a parent; a full reversal of a reversal puts every
// balance back where it was before the first; and the balances equal the sum
// of the nets of what was applied. The seed is printed.
func TestEngineProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	codes := []string{"EUR", "JPY", "KWD", "CLF", "USD"}
	for round := range 50 {
		h := newHarness(t)
		cur, _ := money.Lookup(codes[rng.IntN(len(codes))])
		type parent struct {
			id   string
			left decimal.Decimal // absolute amount not yet reversed
		}
		var parents []parent
		n := 0
		id := func() string { n++; return fmt.Sprintf("t%d", n) }
		for range 40 {
			switch r := rng.IntN(10); {
			case r < 5 || len(parents) == 0:
				amt := decimal.New(rng.Int64N(1_000_000), -cur.Exponent)
				typ := []string{"bet", "win"}[rng.IntN(2)]
				aff := []string{"", "aff-1", "aff-2"}[rng.IntN(3)]
				x := id()
				if rng.IntN(4) == 0 { // a partial rollback that arrives before its parent
					part := decimal.New(rng.Int64N(amt.Shift(cur.Exponent).IntPart()+1), -cur.Exponent)
					h.send("s", txJSON(id(), "rollback", cur.Format(part), cur.Code, x, ""))
					h.send("s", txJSON(x, typ, cur.Format(amt), cur.Code, "", aff))
					parents = append(parents, parent{x, amt.Sub(part)})
				} else {
					h.send("s", txJSON(x, typ, cur.Format(amt), cur.Code, "", aff))
					parents = append(parents, parent{x, amt})
				}
			default:
				i := rng.IntN(len(parents))
				p := &parents[i]
				if !p.left.IsPositive() {
					continue
				}
				part := decimal.New(rng.Int64N(p.left.Shift(cur.Exponent).IntPart())+1, -cur.Exponent)
				rb := id()
				before := h.balances()
				h.send("s", txJSON(rb, "refund", cur.Format(part), cur.Code, p.id, ""))
				p.left = p.left.Sub(part)
				if rng.IntN(3) == 0 { // reverse the reversal in full: balances come back
					h.send("s", txJSON(id(), "rollback", cur.Format(part), cur.Code, rb, ""))
					if after := h.balances(); fmt.Sprint(after) != fmt.Sprint(before) && !sameBalances(before, after) {
						t.Fatalf("round %d (seed %d): reversal of reversal %s: balances %v, before %v", round, seed, rb, after, before)
					}
				} else {
					parents = append(parents, parent{rb, part})
				}
			}
		}
		if len(h.out.exceptions) != 0 {
			t.Fatalf("round %d (seed %d): exceptions %+v", round, seed, h.out.exceptions)
		}
		if h.st.OpenOrphans() != 0 {
			t.Fatalf("round %d (seed %d): %d orphans left", round, seed, h.st.OpenOrphans())
		}
		// Per parent and party, reversals never exceed the original share.
		given := map[string]map[string]decimal.Decimal{}
		back := map[string]map[string]decimal.Decimal{}
		net := decimal.Zero
		for _, e := range h.out.entries {
			if !money.Sum(e.Shares).Equal(e.Net) {
				t.Fatalf("round %d (seed %d): %s shares %v sum to %s, net %s", round, seed, e.Tx.ID, e.Shares, money.Sum(e.Shares), e.Net)
			}
			net = net.Add(e.Net)
			add := func(m map[string]map[string]decimal.Decimal, key string) {
				if m[key] == nil {
					m[key] = map[string]decimal.Decimal{}
				}
				for _, s := range e.Shares {
					m[key][s.Party] = m[key][s.Party].Add(s.Amount)
				}
			}
			add(given, e.Tx.ID) // a reversal is also the parent of a reversal of it
			if e.Tx.Type.Reversal() {
				add(back, e.Tx.Parent)
			}
		}
		for pid, parties := range back {
			for party, b := range parties {
				g := given[pid][party]
				if b.Abs().GreaterThan(g.Abs()) || (b.Sign() != 0 && b.Sign() == g.Sign()) {
					t.Fatalf("round %d (seed %d): %s got back %s of %s's share %s", round, seed, party, b, pid, g)
				}
			}
		}
		total := decimal.Zero
		for _, v := range h.balances() {
			total = total.Add(decimal.RequireFromString(v))
		}
		if !total.Equal(net) {
			t.Fatalf("round %d (seed %d): balances sum to %s, nets to %s", round, seed, total, net)
		}
	}
}

func sameBalances(a, b map[string]string) bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		x, y := decimal.Zero, decimal.Zero
		if a[k] != "" {
			x = decimal.RequireFromString(a[k])
		}
		if b[k] != "" {
			y = decimal.RequireFromString(b[k])
		}
		if !x.Equal(y) {
			return false
		}
	}
	return true
}
