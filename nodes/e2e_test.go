package nodes

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// testRules gives the studio exactly 10% and the operator the rest. The test
// sends amounts that are multiples of 10 minor units, so every share is exact
// and the expected balances follow by plain arithmetic, independent of the
// rules engine.
const testRules = `
ruleset "test" {
  effective  = "2020-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
  rule "all" {
    share "studio" {
      party   = "${provider}"
      percent = "10"
    }
    remainder = "operator"
  }
}
`

func testConfig(t *testing.T, dir string) config.Config {
	t.Helper()
	rules := filepath.Join(dir, "rules.hcl")
	if err := os.WriteFile(rules, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.DataDir = dir
	c.Hub.Port = 0
	c.Hub.SyncAlways = false // durability is not under test here; speed is welcome
	c.Settle.Rules = rules
	c.Settle.SegmentMaxAge = 50 * time.Millisecond
	c.Settle.SegmentMaxEntries = 300
	c.Ingest.ForwardBatch = 100
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Warn, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// expectation tracks what the ledger must hold.
type expectation struct {
	net      map[string]decimal.Decimal // (provider, id) → signed net of applied txs
	balances map[[2]string]decimal.Decimal
}

func (e *expectation) apply(provider, currency string, net decimal.Decimal) {
	studio := net.Div(decimal.NewFromInt(10))
	e.balances[[2]string{provider, currency}] = e.balances[[2]string{provider, currency}].Add(studio)
	e.balances[[2]string{"operator", currency}] = e.balances[[2]string{"operator", currency}].Add(net.Sub(studio))
}

type sent struct {
	provider string
	payload  []byte
	want     string // accepted, duplicate, or a rejection code
	id       string
	early    bool // a rollback sent before its bet: the next request is that bet
}

// traffic builds a provider stream: bets, wins, rollbacks (half of them before
// their bet), duplicates, conflicts and bad inputs. It returns the requests in
// order and fills exp with what must settle.
func traffic(rng *rand.Rand, providers []string, perProvider int, exp *expectation) [][]sent {
	out := make([][]sent, len(providers))
	for pi, p := range providers {
		cur, unit := "EUR", "0.10"
		if pi%2 == 1 {
			cur, unit = "JPY", "10"
		}
		u := decimal.RequireFromString(unit)
		var reqs []sent
		var applied []map[string]any
		next := 0
		mk := func(typ string, parent map[string]any) map[string]any {
			next++
			amt := u.Mul(decimal.NewFromInt(int64(1 + rng.IntN(500))))
			tx := map[string]any{"id": fmt.Sprintf("%s-%d", p, next), "type": typ, "amount": amt.StringFixed(u.Exponent() * -1), "currency": cur, "occurred_at": "2026-11-01T10:00:00Z"}
			if parent != nil {
				tx["amount"], tx["parent"] = parent["amount"], parent["id"]
			}
			return tx
		}
		net := func(tx map[string]any) decimal.Decimal {
			return decimal.RequireFromString(tx["amount"].(string))
		}
		for len(reqs) < perProvider {
			r := rng.IntN(100)
			switch {
			case r < 4 && len(applied) > 0: // duplicate
				tx := applied[rng.IntN(len(applied))]
				reqs = append(reqs, sent{p, mustJSON(tx), wire.StatusDuplicate, tx["id"].(string), false})
			case r < 6 && len(applied) > 0: // conflict
				tx := applied[rng.IntN(len(applied))]
				c := map[string]any{}
				for k, v := range tx {
					c[k] = v
				}
				c["amount"] = u.Mul(decimal.NewFromInt(100000)).String()
				reqs = append(reqs, sent{p, mustJSON(c), "conflict", tx["id"].(string), false})
			case r < 9: // bad input
				bad := []struct{ body, code string }{
					{`{"id":"b","type":"bet","amount":1.5,"currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, "amount_not_string"},
					{`{"id":"b","type":"bet","amount":"1.00","currency":"ZZZ","occurred_at":"2026-11-01T10:00:00Z"}`, "unknown_currency"},
					{`{"id":"b","type":"bet","amount":"1.001","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, "too_many_decimals"},
					{`{"id":"b","type":"rollback","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, "missing_parent"},
					{`{"id":"b","type":"bet","amount":"-1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, "negative_amount"},
					{`{"type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, "missing_field"},
					{`not json`, "malformed"},
				}[rng.IntN(7)]
				reqs = append(reqs, sent{p, []byte(bad.body), bad.code, "", false})
			case r < 14: // rollback sent before its bet
				bet := mk("bet", nil)
				rb := mk("rollback", bet)
				reqs = append(reqs, sent{p, mustJSON(rb), wire.StatusAccepted, rb["id"].(string), true}, sent{p, mustJSON(bet), wire.StatusAccepted, bet["id"].(string), false})
				applied = append(applied, bet, rb)
				exp.apply(p, cur, decimal.Zero) // bet and its full rollback net to zero
				exp.net[p+"/"+bet["id"].(string)] = net(bet)
				exp.net[p+"/"+rb["id"].(string)] = net(rb).Neg()
			case r < 35: // win
				tx := mk("win", nil)
				reqs = append(reqs, sent{p, mustJSON(tx), wire.StatusAccepted, tx["id"].(string), false})
				applied = append(applied, tx)
				exp.apply(p, cur, net(tx).Neg())
				exp.net[p+"/"+tx["id"].(string)] = net(tx).Neg()
			default:
				tx := mk("bet", nil)
				reqs = append(reqs, sent{p, mustJSON(tx), wire.StatusAccepted, tx["id"].(string), false})
				applied = append(applied, tx)
				exp.apply(p, cur, net(tx))
				exp.net[p+"/"+tx["id"].(string)] = net(tx)
			}
		}
		out[pi] = reqs
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// send plays each provider's requests in order (providers in parallel) and
// checks every answer.
func send(t *testing.T, url string, streams [][]sent) (accepted int) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s := wire.NewSubjects("")
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, reqs := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range reqs {
				msg, err := nc.Request(s.In(r.provider), r.payload, 10*time.Second)
				if err != nil {
					t.Errorf("request %s: %v", r.payload, err)
					return
				}
				var a wire.Answer
				if err := json.Unmarshal(msg.Data, &a); err != nil {
					t.Errorf("answer %s: %v", msg.Data, err)
					return
				}
				got := a.Status
				if a.Status == wire.StatusRejected {
					got = a.Code
				}
				if got != r.want {
					t.Errorf("%s %s: answer %+v, want %s", r.provider, r.payload, a, r.want)
				}
				if a.Status == wire.StatusAccepted {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return accepted
}

// TestEndToEnd publishes a few thousand transactions through a real embedded
// hub, ingest WAL and settlement, restarts the node in the middle, and checks
// that exactly the accepted transactions are in the ledger once, balances are
// right to the cent, and the ledger verifies.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	exp := &expectation{net: map[string]decimal.Decimal{}, balances: map[[2]string]decimal.Decimal{}}
	providers := []string{"studio-a", "studio-b", "studio-c"}
	streams := traffic(rng, providers, 700, exp)

	ctx := context.Background()
	accepted := 0
	// Two runs of the same node on the same data dir: the second half of the
	// traffic goes to a restarted node, which must continue every chain.
	for half := range 2 {
		n, err := Start(ctx, cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		part := make([][]sent, len(streams))
		for i, s := range streams {
			// Never cut between a rollback and the bet that follows it: a run
			// that ends holding an orphan would never see its parent.
			mid := len(s) / 2
			if s[mid-1].early {
				mid++
			}
			part[i] = [][]sent{s[:mid], s[mid:]}[half]
		}
		accepted += send(t, n.ClientURL(), part)
		natstest.Eventually(t, 60*time.Second, func() error {
			st := n.Stats()
			if err := n.Err(); err != nil {
				t.Fatalf("node failed: %v", err)
			}
			if st.Settle.Entries != uint64(accepted) || st.Settle.OrphansHeld != 0 {
				return fmt.Errorf("settled %d of %d accepted, %d orphans held", st.Settle.Entries, accepted, st.Settle.OrphansHeld)
			}
			return nil
		})
		if err := n.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	if accepted != len(exp.net) {
		t.Fatalf("accepted %d, expected %d distinct transactions", accepted, len(exp.net))
	}

	// The ledger verifies and holds each accepted (provider, id) exactly once.
	rep, err := store.Verify(cfg.LedgerDir(), "", nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if rep.Entries != uint64(accepted) {
		t.Errorf("ledger has %d entries, %d accepted", rep.Entries, accepted)
	}
	seen := map[string]int{}
	err = store.ForEachEntry(cfg.LedgerDir(), func(e store.Entry) error {
		k := e.Provider + "/" + e.Tx.ID
		seen[k]++
		if want, ok := exp.net[k]; !ok || !want.Equal(e.Net) {
			t.Errorf("entry %s net %s, want %s (expected: %v)", k, e.Net, want, ok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k := range exp.net {
		if seen[k] != 1 {
			t.Errorf("%s is in the ledger %d times, want once", k, seen[k])
		}
	}

	// Balances are right to the cent.
	idx, err := settle.OpenIndex(cfg.IndexDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	bals, err := idx.Balances()
	if err != nil {
		t.Fatal(err)
	}
	got := map[[2]string]decimal.Decimal{}
	for _, b := range bals {
		got[[2]string{b.Party, b.Currency}] = b.Amount
	}
	for k, want := range exp.balances {
		if !got[k].Equal(want) {
			t.Errorf("balance %v = %s, want %s", k, got[k], want)
		}
	}
	if len(got) != len(exp.balances) {
		t.Errorf("balances %v, want %v", got, exp.balances)
	}
	cnt, err := idx.Counters()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compared: %d accepted = %d ledger entries; %d balances; settle counters %+v", accepted, rep.Entries, len(got), cnt)
}
