package ingest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

func askReplayIDs(t *testing.T, nc *nats.Conn, p string, ids ...string) wire.ReplayIDsReply {
	t.Helper()
	b, _ := json.Marshal(wire.ReplayIDsRequest{Provider: p, IDs: ids})
	m, err := nc.Request(subjects.ReplayIDs(p), b, 10*time.Second)
	if err != nil {
		t.Fatalf("replay-ids request: %v", err)
	}
	var r wire.ReplayIDsReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReplayByID: the edge republishes, from its WAL, exactly the records it
// accepted under the asked ids (consecutive sequences in one batch, fresh
// message ids, the same bytes), names the ids it never accepted, refuses a
// request above ingest.replay_ids_max whole, and after retention says the
// record may have been dropped by it.
func TestReplayByID(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	cfg := testConfig(t.TempDir())
	cfg.ForwardBatch = 10
	cfg.GCInterval = time.Hour // passes run by hand below
	cfg.Retention = time.Hour
	cfg.ReplayIDsMax = 8
	n := startNode(t, cfg, nc, js)
	for i := 1; i <= 12; i++ {
		if a := ask(t, nc, "p1", payload(fmt.Sprint("t", i), "1.00")); a.Status != wire.StatusAccepted {
			t.Fatalf("tx %d: %+v", i, a)
		}
	}
	waitForwarded(t, n, 12)
	before := readStream(t, js)

	r := askReplayIDs(t, nc, "p1", "t9", "t3", "ghost", "t4", "t5", "t3")
	if r.Node != testNode || r.Error != "" {
		t.Fatalf("reply %+v", r)
	}
	if want := []string{"t3", "t4", "t5", "t9"}; !reflect.DeepEqual(r.Found, want) || !reflect.DeepEqual(r.Published, want) ||
		!reflect.DeepEqual(r.Seqs, []uint64{3, 4, 5, 9}) {
		t.Errorf("found %v seqs %v published %v, want %v at 3, 4, 5, 9", r.Found, r.Seqs, r.Published, want)
	}
	if len(r.Missing) != 1 || r.Missing[0].ID != "ghost" || r.Missing[0].Code != wire.ReplayNotAccepted || !strings.Contains(r.Missing[0].Reason, "never accepted") {
		t.Errorf("missing %+v, want ghost never accepted", r.Missing)
	}
	after := readStream(t, js) // checks every copy is byte-identical and replayed ids are fresh
	if after.msgs != before.msgs+2 || after.resent != before.resent+4 {
		t.Errorf("stream: %d msgs, %d resent; before %d, %d: want 2 more messages (3-5, 9) with 4 records", after.msgs, after.resent, before.msgs, before.resent)
	}
	after.checkComplete(t, map[string]int{"p1": 12})

	// Above the bound: refused whole, with the bound, nothing published.
	many := []string{"t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"}
	if r := askReplayIDs(t, nc, "p1", many...); r.Max != 8 || r.Error == "" || len(r.Published) != 0 {
		t.Errorf("9 ids with replay_ids_max 8 = %+v, want refused with max 8", r)
	}
	// The bound is on ids, not bytes: 8 ids of the longest length pass.
	long := make([]string, 8)
	for i := range long {
		long[i] = fmt.Sprintf("%d", i) + strings.Repeat("x", 127)
	}
	if r := askReplayIDs(t, nc, "p1", long...); r.Error != "" || len(r.Missing) != 8 {
		t.Errorf("8 ids of 128 bytes = %+v, want 8 missing", r)
	}
	// A provider this edge never saw: nothing is held.
	if r := askReplayIDs(t, nc, "nobody", "x1"); len(r.Missing) != 1 || r.Missing[0].Code != wire.ReplayNotAccepted || len(r.Published) != 0 {
		t.Errorf("unknown provider = %+v", r)
	}
	if got := readStream(t, js); got.msgs != after.msgs {
		t.Errorf("refused requests published %d messages", got.msgs-after.msgs)
	}

	// Retention drops records with their dedup keys: the edge can no longer
	// tell, and says so.
	if k, err := n.gc(time.Now().Add(2*time.Hour), nil); err != nil || k != 12 {
		t.Fatalf("gc = %d, %v; want 12", k, err)
	}
	r = askReplayIDs(t, nc, "p1", "t3")
	if len(r.Missing) != 1 || r.Missing[0].Code != wire.ReplayNotAccepted || !strings.Contains(r.Missing[0].Reason, "dropped by retention with records 1-12") || len(r.Published) != 0 {
		t.Errorf("after retention = %+v", r)
	}
}

// TestReplayByIDOnlyClaimedProviders: an edge with a provider list answers
// only on the subjects of the providers it claimed.
func TestReplayByIDOnlyClaimedProviders(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	cfg := testConfig(t.TempDir())
	cfg.Providers = map[string]Provider{"p1": {}}
	n := startNode(t, cfg, nc, js)
	if a := ask(t, nc, "p1", payload("a1", "1.00")); a.Status != wire.StatusAccepted {
		t.Fatalf("%+v", a)
	}
	waitForwarded(t, n, 1)
	if r := askReplayIDs(t, nc, "p1", "a1"); !reflect.DeepEqual(r.Published, []string{"a1"}) {
		t.Errorf("p1 = %+v", r)
	}
	b, _ := json.Marshal(wire.ReplayIDsRequest{Provider: "p2", IDs: []string{"a1"}})
	if _, err := nc.Request(subjects.ReplayIDs("p2"), b, 300*time.Millisecond); err == nil {
		t.Error("an edge that does not serve p2 answered its replay-ids request")
	}
}
