package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/recon"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// lossyTxHub is a JetStream server whose TALLY_TX allows deleting messages
// (tally's own streams deny it), so a test can take a forwarded batch away
// before settlement reads it: the record is then in the edge's WAL and not
// in the ledger, and nothing after it makes settlement see a gap.
func lossyTxHub(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	s := natstest.Run(t)
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	subj := wire.NewSubjects("")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: subj.TxStream(), Subjects: []string{subj.TxSource()},
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: subj.TxSource(), Destination: subj.TxDest(4)},
		Storage:          jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew,
		Duplicates: 2 * time.Minute, AllowDirect: true,
	}); err != nil {
		t.Fatal(err)
	}
	if err := wire.EnsureStreams(ctx, js, subj, wire.StreamOptions{Partitions: 4, MaxMsgBytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	return s.ClientURL(), js
}

func ledgerCounts(t *testing.T, dir string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	if err := store.ForEachEntry(filepath.Join(dir, "ledger"), func(e store.Entry) error {
		ids[e.Provider+"/"+e.Tx.ID]++
		return nil
	}); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return ids
}

// TestReconcileReplay: record k-2 is in the edge's WAL but not in the
// ledger (its forwarded batch was deleted from TALLY_TX before the settle
// node started). A reconciliation lists it missing; with --replay the edge
// republishes it, it reaches the ledger exactly once, and the next
// reconciliation matches it. An id the edge never accepted is reported as
// such, and the ids of a provider no edge serves as held by no edge.
func TestReconcileReplay(t *testing.T) {
	url, js := lossyTxHub(t)
	rules, _ := filepath.Abs(filepath.Join(vectorDir, "dirty-stream.hcl"))
	nodeCfg := func(id string, roles ...string) config.Config {
		c := config.Default()
		c.NodeID, c.DataDir, c.Roles = id, t.TempDir(), roles
		c.NATS.URL = url
		c.Settle.Rules = rules
		c.Settle.SegmentMaxAge = 50 * time.Millisecond
		c.Providers = []config.Provider{{Name: "P"}}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	start := func(c config.Config) *nodes.Node {
		n, err := nodes.Start(context.Background(), c, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	edge := start(nodeCfg("edge-1", config.RoleIngest))
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for i, id := range []string{"k-1", "k-2"} {
		body := fmt.Appendf(nil, `{"id":%q,"type":"bet","amount":"10.00","currency":"EUR","occurred_at":"2026-11-0%dT10:00:00Z"}`, id, i+2)
		m, err := nc.Request(wire.NewSubjects("").In("P"), body, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var a wire.Answer
		if err := json.Unmarshal(m.Data, &a); err != nil || a.Status != wire.StatusAccepted || a.EdgeSeq != uint64(i+1) {
			t.Fatalf("%s: %s", id, m.Data)
		}
		natstest.Eventually(t, 30*time.Second, func() error { // one batch per record
			if f := edge.Stats().Ingest.Forwarded; f != uint64(i+1) {
				return fmt.Errorf("forwarded %d", f)
			}
			return nil
		})
	}
	natstest.DropTxBatch(t, js, 2)

	scfg := nodeCfg("settle-1", config.RoleSettle)
	settle := start(scfg)
	data := scfg.DataDir
	natstest.Eventually(t, 30*time.Second, func() error {
		if n := ledgerCounts(t, data)["P/k-1"]; n != 1 {
			return fmt.Errorf("k-1 in the ledger %d times", n)
		}
		return nil
	})

	dir := t.TempDir()
	report := filepath.Join(dir, "P-2026-11.jsonl")
	if err := os.WriteFile(report, []byte(`{"id":"k-1","type":"bet","amount":"10.00","currency":"EUR","occurred_at":"2026-11-02T10:00:00Z"}
{"id":"k-2","type":"bet","amount":"10.00","currency":"EUR","occurred_at":"2026-11-03T10:00:00Z"}
{"id":"ghost-1","type":"bet","amount":"5.00","currency":"EUR","occurred_at":"2026-11-04T10:00:00Z"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--data", data, "--provider", "P", "--period", "2026-11", "--report", report}
	missing := func(r *recon.Result) []string { return recon.MissingIDs(r) }

	first := reconcileRun(t, args...)
	if got := missing(first.Result); !reflect.DeepEqual(got, []string{"k-2", "ghost-1"}) || first.Result.Matched != 1 || first.Replay != nil {
		t.Fatalf("first: missing %v matched %d replay %+v, want k-2 and ghost-1 missing, k-1 matched, no replay", got, first.Result.Matched, first.Replay)
	}
	if n := ledgerCounts(t, data)["P/k-2"]; n != 0 {
		t.Fatalf("k-2 reached the ledger %d times before any replay", n)
	}

	second := reconcileRun(t, append(args, "--replay", "--nats", url, "--replay-timeout", "5s")...)
	if got := missing(second.Result); !reflect.DeepEqual(got, []string{"k-2", "ghost-1"}) {
		t.Fatalf("second: missing %v", got)
	}
	if second.Replay == nil || len(second.Replay.Outcomes) != 2 {
		t.Fatalf("second: replay %+v, want 2 outcomes", second.Replay)
	}
	k2, ghost := second.Replay.Outcomes[0], second.Replay.Outcomes[1]
	if k2.ID != "k-2" || k2.Outcome != recon.ReplayRepublished || k2.Edge != "edge-1" || k2.EdgeSeq != 2 {
		t.Errorf("k-2 outcome %+v, want republished by edge-1 as seq 2", k2)
	}
	if ghost.ID != "ghost-1" || ghost.Outcome != recon.ReplayNotAccepted || ghost.Edge != "edge-1" || !strings.Contains(ghost.Reason, "never accepted") {
		t.Errorf("ghost-1 outcome %+v, want not accepted by edge-1", ghost)
	}
	// Kept beside the signed note, which is unchanged by it.
	kept, err := os.ReadFile(second.Path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(kept), "republished") {
		t.Error("the signed note holds the replay outcome")
	}
	var stored recon.Replay
	if b, err := os.ReadFile(recon.ReplayPath(second.Path)); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &stored); err != nil || !reflect.DeepEqual(&stored, second.Replay) {
		t.Errorf("stored replay %+v (%v), printed %+v", stored, err, second.Replay)
	}

	natstest.Eventually(t, 30*time.Second, func() error {
		if n := ledgerCounts(t, data)["P/k-2"]; n != 1 {
			return fmt.Errorf("k-2 in the ledger %d times", n)
		}
		return nil
	})
	third := reconcileRun(t, args...)
	if got := missing(third.Result); !reflect.DeepEqual(got, []string{"ghost-1"}) || third.Result.Matched != 2 {
		t.Errorf("third: missing %v matched %d, want only ghost-1 missing, 2 matched", got, third.Result.Matched)
	}
	// k-2 was republished once and k-1 never: with settlement closed
	// (everything it applied is sealed), each is in the ledger exactly once.
	if err := settle.Close(); err != nil {
		t.Fatal(err)
	}
	for id, n := range ledgerCounts(t, data) {
		if n != 1 {
			t.Errorf("%s in the ledger %d times", id, n)
		}
	}

	// A provider no edge serves: nobody answers, the provider must resend.
	qreport := filepath.Join(dir, "Q-2026-11.jsonl")
	if err := os.WriteFile(qreport, []byte(`{"id":"q-1","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-04T10:00:00Z"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	q := reconcileRun(t, "--data", data, "--provider", "Q", "--period", "2026-11", "--report", qreport, "--replay", "--nats", url, "--replay-timeout", "1s")
	if q.Replay == nil || len(q.Replay.Outcomes) != 1 || q.Replay.Outcomes[0].Outcome != recon.ReplayNoEdge || !strings.Contains(q.Replay.Outcomes[0].Reason, "provider must resend") {
		t.Errorf("Q replay %+v, want q-1 held by no edge", q.Replay)
	}
}
