package nodes

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/ingest"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// vectorDir is the repository's copy of the acceptance vectors and their
// tally expression (one copy, kept with settle/rules; a missing file fails).
var vectorDir = filepath.Join("..", "settle", "rules", "testdata", "vectors")

// TestDirtyStreamEndToEnd plays vectors/dirty-stream.json through real nodes
// (embedded NATS hub with JetStream, Badger WAL on three ingest edges, one
// settle node with its Badger index and ledger files) and checks every figure
// of the vector against the settled ledger.
//
// The duplicate and the conflicting resend go to other edges than the
// original, as a provider failing over between regions would send them: each
// edge accepts what it has not seen, so it is the settle node's (provider, id)
// index that must turn them into one duplicate and one conflict. The same
// resends sent to the original edge are answered there (duplicate; rejected
// conflict) and never reach settlement.
func TestDirtyStreamEndToEnd(t *testing.T) {
	var v struct {
		Provider string `json:"provider"`
		Expect   struct {
			Stakes      string `json:"stakes_net_of_rollbacks"`
			Wins        string `json:"wins"`
			GGR         string `json:"ggr"`
			Applied     uint64 `json:"distinct_applied"`
			Duplicates  uint64 `json:"duplicates"`
			Conflicts   uint64 `json:"conflicts"`
			Rollbacks   int    `json:"rollbacks_applied"`
			OpenOrphans uint64 `json:"open_orphans"`
		} `json:"expect"`
	}
	raw, err := os.ReadFile(filepath.Join(vectorDir, "dirty-stream.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, filepath.Join(vectorDir, "dirty-stream.jsonl"))
	if len(lines) != 9 {
		t.Fatalf("dirty-stream.jsonl has %d lines, want the vector's 9", len(lines))
	}

	// The hub and the settle node; the edges are ingest-only nodes, one
	// running at a time: without a provider list an edge claims every
	// provider, and the provider moves from one edge to the next.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "hub"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, filepath.Join(root, "hub"))
	cfg.Roles = []string{config.RoleHub, config.RoleSettle}
	rules, err := filepath.Abs(filepath.Join(vectorDir, "dirty-stream.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Settle.Rules = rules
	ctx := context.Background()
	hub, err := Start(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	var edge *Node
	startEdge := func(id string) {
		t.Helper()
		c := config.Default()
		c.NodeID, c.DataDir, c.Roles = id, filepath.Join(root, id), []string{config.RoleIngest}
		c.NATS.URL = hub.ClientURL()
		c.Ingest.ForwardBatch = 100
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if edge, err = Start(ctx, c, testLogger(t)); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nats.Connect(hub.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// stopEdge stops the edge and releases its claim on the providers, as an
	// operator moving them to another edge does (docs/ingest.md, "Topologies").
	stopEdge := func() {
		t.Helper()
		if err := edge.Close(); err != nil {
			t.Fatalf("close %s: %v", edge.cfg.NodeID, err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.KeyValue(ctx, wire.NewSubjects("").ClaimBucket())
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(ctx, ingest.ClaimAll); err != nil {
			t.Fatal(err)
		}
	}
	subj := wire.NewSubjects("")
	ask := func(line int, want string) {
		t.Helper()
		msg, err := nc.Request(subj.In(v.Provider), lines[line-1], 10*time.Second)
		if err != nil {
			t.Fatalf("line %d via %s: %v", line, edge.cfg.NodeID, err)
		}
		var ans wire.Answer
		if err := json.Unmarshal(msg.Data, &ans); err != nil {
			t.Fatalf("line %d: answer %s: %v", line, msg.Data, err)
		}
		got := ans.Status
		if got == wire.StatusRejected {
			got = ans.Code
		}
		if got != want {
			t.Fatalf("line %d via %s: answer %+v, want %s", line, edge.cfg.NodeID, ans, want)
		}
	}
	settled := func(cond func(settle.Stats) error) {
		t.Helper()
		natstest.Eventually(t, 30*time.Second, func() error {
			if err := hub.Err(); err != nil {
				t.Fatalf("node failed: %v", err)
			}
			return cond(*hub.Stats().Settle)
		})
	}

	startEdge("edge-a")
	for l := 1; l <= 5; l++ {
		ask(l, wire.StatusAccepted)
	}
	settled(func(s settle.Stats) error {
		if s.Entries != 5 {
			return fmt.Errorf("%d entries settled, want 5", s.Entries)
		}
		return nil
	})
	stopEdge()
	startEdge("edge-b") // does not know p-1003: settlement must
	ask(6, wire.StatusAccepted)
	settled(func(s settle.Stats) error {
		if s.Duplicates != 1 {
			return fmt.Errorf("%d duplicates, want 1", s.Duplicates)
		}
		return nil
	})
	stopEdge()
	startEdge("edge-a")          // restarted on its WAL
	ask(6, wire.StatusDuplicate) // the original edge knows p-1003
	ask(7, wire.StatusAccepted)  // rollback before its bet
	ask(8, wire.StatusAccepted)
	settled(func(s settle.Stats) error {
		if s.Entries != 7 || s.OrphansReleased != 1 || s.OrphansHeld != 0 {
			return fmt.Errorf("%d entries, %d released, %d held; want 7, 1, 0", s.Entries, s.OrphansReleased, s.OrphansHeld)
		}
		return nil
	})
	ask(9, "conflict") // the original edge rejects the changed payload
	stopEdge()
	startEdge("edge-c") // a third edge does not know it
	ask(9, wire.StatusAccepted)
	settled(func(s settle.Stats) error {
		if s.Conflicts != 1 {
			return fmt.Errorf("%d conflicts, want 1", s.Conflicts)
		}
		return nil
	})
	stopEdge()
	if err := hub.Close(); err != nil {
		t.Fatalf("close hub: %v", err)
	}

	// Figures from the ledger files, through the statement package's GGR.
	rep, err := store.Verify(cfg.LedgerDir(), "", nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var entries []store.Entry
	if err := store.ForEachEntry(cfg.LedgerDir(), func(e store.Entry) error { entries = append(entries, e); return nil }); err != nil {
		t.Fatal(err)
	}
	var g statement.Gaming
	rollbacks := 0
	ids := map[string]int{}
	for i, bt := range statement.BaseTypes(entries) {
		g.Add(bt, entries[i])
		ids[entries[i].Tx.ID]++
		if entries[i].Tx.Type.Reversal() {
			rollbacks++
		}
		if entries[i].Tx.ID == "p-1003" && entries[i].Tx.Amount.String() != "5" {
			t.Errorf("p-1003 settled with amount %s, want the first payload's 5.00", entries[i].Tx.Amount)
		}
	}
	idx, err := settle.OpenIndex(cfg.IndexDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	cnt, err := idx.Counters()
	if err != nil {
		t.Fatal(err)
	}
	exc, err := idx.Exceptions(10)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"stakes net of rollbacks", g.Stakes.StringFixed(2), v.Expect.Stakes},
		{"wins", g.Wins.StringFixed(2), v.Expect.Wins},
		{"GGR", g.GGR.StringFixed(2), v.Expect.GGR},
		{"ledger entries", rep.Entries, v.Expect.Applied},
		{"distinct ids applied", len(ids), int(v.Expect.Applied)},
		{"duplicates", cnt.Duplicates, v.Expect.Duplicates},
		{"conflicts", cnt.Conflicts, v.Expect.Conflicts},
		{"rollbacks applied", rollbacks, v.Expect.Rollbacks},
		{"open orphans", cnt.OrphansHeld, v.Expect.OpenOrphans},
		{"exceptions", len(exc), 1},
	} {
		if fmt.Sprint(f.got) != fmt.Sprint(f.want) {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
	if len(exc) == 1 && (exc[0].Kind != settle.ExcConflict || exc[0].ID != "p-1003" || exc[0].EdgeNode != "edge-c") {
		t.Errorf("exception %+v, want the conflict of p-1003 from edge-c", exc[0])
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s is in the ledger %d times", id, n)
		}
	}
	bals, err := idx.Balances()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{v.Provider: "-1.00", "operator": "-9.00"}
	for _, bal := range bals {
		if bal.Formatted() != want[bal.Party] {
			t.Errorf("balance %s %s = %s, want %s", bal.Party, bal.Currency, bal.Formatted(), want[bal.Party])
		}
	}
	if len(bals) != len(want) {
		t.Errorf("balances %v, want %v", bals, want)
	}
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
