package settle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
)

func TestQuota(t *testing.T) {
	for _, c := range []struct{ parts, n int }{{4, 2}, {4, 3}, {1, 2}, {8, 3}, {5, 5}, {3, 7}} {
		sum := 0
		var qs []int
		for r := range c.n {
			q := Quota(c.parts, c.n, r)
			qs = append(qs, q)
			sum += q
		}
		if sum != c.parts || slices.Max(qs)-slices.Min(qs) > 1 {
			t.Errorf("Quota(%d partitions, %d nodes) = %v: want a sum of %d, spread at most 1", c.parts, c.n, qs, c.parts)
		}
	}
}

// leaseNode starts a settle node named id with leases (TTL 1s) on the env's
// one partition.
func (e *streamEnv) leaseNode(id string, d nodeDirs) (n *Node, stop func()) {
	idx, led := e.open(d)
	log := hclog.New(&hclog.LoggerOptions{Output: e.logs, Level: hclog.Info, Name: id})
	n = New(Config{Subjects: e.subj, SegmentMaxEntries: 50, SegmentMaxAge: 20 * time.Millisecond,
		FetchBatch: 16, OrphanTimeout: time.Hour, Leases: &LeaseConfig{NodeID: id, TTL: time.Second, Replicas: 1, Partitions: 1}},
		idx, led, e.proto.n.book, log)
	if err := n.Start(e.ctx, e.nc, e.js); err != nil {
		e.t.Fatal(err)
	}
	return n, func() {
		if err := n.Close(); err != nil {
			e.t.Errorf("close %s: %v", id, err)
		}
		led.Close()
		idx.Close()
	}
}

func (e *streamEnv) owner() string {
	kv, err := e.js.KeyValue(e.ctx, e.subj.OwnersBucket())
	if err != nil {
		return ""
	}
	os, _, err := ReadOwners(e.ctx, kv, 1)
	if err != nil || len(os) == 0 {
		return ""
	}
	return os[0].Owner
}

func waitRunning(t *testing.T, n *Node) {
	t.Helper()
	natstest.Eventually(t, 15*time.Second, func() error {
		st := n.Status()
		if len(st) != 1 || st[0].State != "running" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

// TestLeaseHandOver: node a holds the partition; b starts and stays idle
// (one partition, a keeps it: sticky); a stops gracefully, gives the lease
// back, and b takes it at once, catches up from the ledger stream and
// settles on. b's ledger holds both rounds and verifies.
func TestLeaseHandOver(t *testing.T) {
	e := newStreamEnv(t)
	dir := t.TempDir()
	a, stopA := e.leaseNode("a", nodeDirs{filepath.Join(dir, "a-idx"), filepath.Join(dir, "a-led")})
	waitRunning(t, a)
	e.workload(1)
	waitEntries(t, a, 6)
	b, stopB := e.leaseNode("b", nodeDirs{filepath.Join(dir, "b-idx"), filepath.Join(dir, "b-led")})
	defer stopB()
	time.Sleep(time.Second) // a few lease rounds
	if got := e.owner(); got != "a" {
		t.Fatalf("owner %q after b joined, want a (sticky)", got)
	}
	if st := b.Status(); len(st) != 0 {
		t.Fatalf("b runs %+v while a holds the lease", st)
	}
	stopA()
	stopped := time.Now()
	waitRunning(t, b)
	t.Logf("b runs the partition %s after a stopped", time.Since(stopped).Round(time.Millisecond))
	if got := e.owner(); got != "b" {
		t.Fatalf("owner %q, want b", got)
	}
	e.workload(2)
	waitEntries(t, b, 12)
	rep := verifyLedger(t, filepath.Join(dir, "b-led"), e.vkey)
	if rep.Entries != 12 {
		t.Fatalf("b's ledger verifies %d entries, want 12", rep.Entries)
	}
}

// TestLeaseLostStepsDown: another writer takes the lease key (as if a's
// lease had expired and b taken it): a's next renewal is refused, a stops
// the partition without failing, lists it in Fenced, logs LEASE LOST, and
// writes nothing more.
func TestLeaseLostStepsDown(t *testing.T) {
	e := newStreamEnv(t)
	dir := t.TempDir()
	a, stopA := e.leaseNode("a", nodeDirs{filepath.Join(dir, "a-idx"), filepath.Join(dir, "a-led")})
	defer stopA()
	waitRunning(t, a)
	e.workload(1)
	waitEntries(t, a, 6)
	kv, err := e.js.KeyValue(e.ctx, e.subj.OwnersBucket())
	if err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(Lease{Node: "intruder", Since: time.Now()})
	if _, err := kv.Put(e.ctx, LeaseKey(0), v); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		if !slices.Equal(a.Fenced(), []int{0}) {
			return fmt.Errorf("stepped down from %v", a.Fenced())
		}
		return nil
	})
	if err := a.Err(); err != nil {
		t.Fatalf("a failed: %v; a lost lease must only step down", err)
	}
	if e.logs.count("LEASE LOST") == 0 {
		t.Error("no LEASE LOST line in the log")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, _ := e.js.Stream(ctx, e.subj.LedgerStream())
	before, err := st.GetLastMsgForSubject(ctx, e.subj.Ledger(0))
	if err != nil {
		t.Fatal(err)
	}
	e.workload(2)
	time.Sleep(500 * time.Millisecond)
	after, err := st.GetLastMsgForSubject(ctx, e.subj.Ledger(0))
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatal(err)
	}
	if after.Sequence != before.Sequence {
		t.Fatalf("a appended ledger message %d after losing its lease (last before: %d)", after.Sequence, before.Sequence)
	}
}
