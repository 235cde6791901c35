package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/store"
)

// pipelineSettleBlock is the fault mesh's settle block with the commit
// pipeline on and small segments, so that under the senders' load nearly
// every batch fills while the one before it publishes, writes and acks.
const pipelineSettleBlock = `settle {
  rules               = "rules.hcl"
  segment_max_age     = "50ms"
  segment_max_entries = 40
  pipeline            = true
}
`

// TestSettlePipelineKill9Loop kills the separate settlement node, running
// with settle.pipeline on, with SIGKILL at random moments while providers
// send (one more file per provider at every kill): between a batch's apply and its publish, between the PubAck and the
// segment file, between the segment and the index, between the index and
// the acks, with the next batch filled on top of an unfinished commit. Every
// restart must reach ready by itself; then every accepted (provider, id)
// must be in the ledger exactly once, `tally verify` must pass (mesh.finish),
// every entry must carry its input's amount, and the index's balances must
// add up to the ledger's entries. 5 kills by default, 24 with TALLY_SOAK=1.
func TestSettlePipelineKill9Loop(t *testing.T) {
	kills := 5
	if soak() {
		kills = 24
	}
	m := startMeshWith(t, true, pipelineSettleBlock)
	cfg := infoConfig(t, m.settleCfg)
	m.settle.kill() // the mesh started it at warn level; restarted at info below
	var logPath string
	m.settle, logPath = startLogged(t, m.dir, "settle-0.log", "node", "--config", cfg)
	waitReady(t, m.settle, logPath)
	if b, _ := os.ReadFile(logPath); !bytes.Contains(b, []byte("pipeline=true")) {
		t.Fatalf("the settle node did not start with the commit pipeline:\n%s", tail(b, 2000))
	}
	m.startSends(false)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
	for i := 1; i <= kills; i++ {
		startSendsRound(m, i) // traffic flows at every kill: another file per provider, new ids
		time.Sleep(time.Duration(50+rng.IntN(700)) * time.Millisecond)
		m.settle.kill()
		settled := m.settled()
		m.settle, logPath = startLogged(t, m.dir, fmt.Sprintf("settle-%d.log", i), "node", "--config", cfg)
		waitReady(t, m.settle, logPath)
		t.Logf("kill %d: %d settled at the kill, %d answered; restart ready", i, settled, m.answered())
	}
	m.finish(fmt.Sprintf("%d pipelined settle kill -9s", kills))
	checkBalances(t, m)
}

// checkBalances: every ledger entry's amount is its input line's amount
// (|Net| == amount of the first line with that id: later lines reusing an id
// are duplicates or the rejected conflict), and the index's balances,
// summed over parties, equal the sum of the entries' Net per currency.
func checkBalances(t *testing.T, m *mesh) {
	t.Helper()
	inputs := map[string]decimal.Decimal{} // provider/id → amount of its first line
	for _, sp := range m.sends {
		p := sp.provider
		for _, l := range sp.lines {
			var tx struct {
				ID     string
				Amount string
			}
			if json.Unmarshal(l, &tx) != nil {
				continue
			}
			if _, ok := inputs[p+"/"+tx.ID]; !ok {
				inputs[p+"/"+tx.ID], _ = decimal.NewFromString(tx.Amount)
			}
		}
	}
	net := map[string]decimal.Decimal{}
	n := 0
	err := store.ForEachEntry(m.ledgerDir, func(e store.Entry) error {
		n++
		in, ok := inputs[e.Provider+"/"+e.Tx.ID]
		if !ok || !e.Net.Abs().Equal(in) {
			t.Errorf("%s/%s settled for %s, its input says %s (%v)", e.Provider, e.Tx.ID, e.Net, in, ok)
		}
		net[e.Tx.Currency.Code] = net[e.Tx.Currency.Code].Add(e.Net)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(m.dir, "settle-data", "settle", "index")
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		t.Fatalf("settle index: %v", err)
	}
	idx, err := settle.OpenIndex(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	bals, err := idx.Balances()
	if err != nil {
		t.Fatal(err)
	}
	sum := map[string]decimal.Decimal{}
	for _, b := range bals {
		sum[b.Currency] = sum[b.Currency].Add(b.Amount)
	}
	if len(sum) != len(net) {
		t.Errorf("balances in %v, ledger in %v", sum, net)
	}
	for c, v := range net {
		if !sum[c].Equal(v) {
			t.Errorf("%s: balances sum to %s, the ledger's entries to %s", c, sum[c], v)
		}
	}
	t.Logf("%d entries; balances equal the ledger's net %v", n, net)
}
