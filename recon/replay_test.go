package recon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/ingest"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/recon"
	"github.com/tally-mesh/tally/wire"
)

// TestAskReplay runs the client against a real edge (ingest node, Badger
// WAL, nats-server) whose ingest.replay_ids_max is 2: the client's requests
// of 1000 ids are refused with that bound, it asks again in pairs, and every
// id ends with its outcome; a provider no edge serves is answered by nobody.
func TestAskReplay(t *testing.T) {
	s := natstest.Run(t)
	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj := wire.NewSubjects("")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := wire.EnsureStreams(ctx, js, subj, wire.StreamOptions{Partitions: 2, MaxMsgBytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	n, err := ingest.New(ingest.Config{NodeID: "edge-7", Subjects: subj, WALDir: filepath.Join(t.TempDir(), "wal"),
		PublishTimeout: time.Second, ReplayIDsMax: 2, Providers: map[string]ingest.Provider{"p1": {}}}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(ctx, nc, js); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		body := fmt.Appendf(nil, `{"id":"t%d","type":"bet","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, i)
		m, err := nc.Request(subj.In("p1"), body, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var a wire.Answer
		if err := json.Unmarshal(m.Data, &a); err != nil || a.Status != wire.StatusAccepted {
			t.Fatalf("t%d: %s", i, m.Data)
		}
	}
	out, err := recon.AskReplay(ctx, nc, recon.ReplayOptions{Subjects: subj, Timeout: 5 * time.Second}, "p1",
		[]string{"t5", "ghost", "t1", "t2", "t5", "t4"})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id, outcome string
		seq         uint64
	}{{"t5", recon.ReplayRepublished, 5}, {"ghost", recon.ReplayNotAccepted, 0}, {"t1", recon.ReplayRepublished, 1},
		{"t2", recon.ReplayRepublished, 2}, {"t4", recon.ReplayRepublished, 4}}
	if len(out) != len(want) {
		t.Fatalf("outcomes %+v, want %d (one per distinct id)", out, len(want))
	}
	for i, w := range want {
		if o := out[i]; o.ID != w.id || o.Outcome != w.outcome || o.EdgeSeq != w.seq || o.Edge != "edge-7" || o.Reason == "" {
			t.Errorf("outcome %d = %+v, want %s %s seq %d by edge-7", i, o, w.id, w.outcome, w.seq)
		}
	}
	if st := n.Stats(); st.Replayed != 4 {
		t.Errorf("edge replayed %d records, want 4", st.Replayed)
	}

	out, err = recon.AskReplay(ctx, nc, recon.ReplayOptions{Subjects: subj, Timeout: time.Second}, "p2", []string{"x"})
	if err != nil || len(out) != 1 || out[0].Outcome != recon.ReplayNoEdge || out[0].Edge != "" {
		t.Errorf("p2 (no edge) = %+v, %v", out, err)
	}
}
