package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/wire"
)

// The lease tests run two settle processes sharing the partitions by lease
// (settle.leases = true, settle.lease_ttl = 2s) next to one hub and one edge,
// providers sending; then damage one settle node. They share one ledger
// signing key (docs/deploy.md: one log key per region). The survivor ends
// owning every partition, so its ledger directory holds every partition's
// whole chain (catch-up wrote what the other node had published): the fault
// tests' checks (mesh.finish) run on it.

const (
	leaseTTL       = 2 * time.Second
	leaseSettle2PW = "settle-2-password"
	leaseParts     = 4
)

type leaseMesh struct {
	*mesh
	settles [2]*child
	metrics [2]int // metrics_listen ports (GET /v1/status)
	logs    [2]string
	cfgs    [2]string
	nc      *nats.Conn
	kv      jetstream.KeyValue
	js      jetstream.JetStream
}

func settleName(i int) string { return fmt.Sprintf("settle-%d", i+1) }

func startLeaseMesh(t *testing.T) *leaseMesh {
	t.Helper()
	m := &mesh{t: t, dir: t.TempDir(), hubPort: freePort(t), httpPort: freePort(t)}
	lm := &leaseMesh{mesh: m}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("TALLY_TEST_LOGS") == "1" {
			for i := range 2 {
				b, _ := os.ReadFile(lm.logs[i])
				t.Logf("%s log (tail):\n%s", settleName(i), tail(b, 5000))
			}
			b, _ := os.ReadFile(filepath.Join(m.dir, "child.log"))
			t.Logf("child.log (tail):\n%s", tail(b, 3000))
		}
	})
	writeFile(t, filepath.Join(m.dir, "rules.hcl"), crashRules)
	m.hubCfg = writeFile(t, filepath.Join(m.dir, "hub.hcl"), fmt.Sprintf(`
node_id   = "hub-1"
data_dir  = "hub-data"
log_level = "warn"
roles     = ["hub"]
streams { partitions = %d }
hub {
  listen        = "127.0.0.1:%d"
  sync_interval = "always"
  node_user "edge-1" { password = %q }
  node_user "settle-1" { password = %q }
  node_user "settle-2" { password = %q }
}
%s`, leaseParts, m.hubPort, faultEdgePass, faultSettlePass, leaseSettle2PW, providerBlocks()))
	m.hub = startChild(t, m.dir, "node", "--config", m.hubCfg)
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", m.hubPort))
	for i, pw := range []string{faultSettlePass, leaseSettle2PW} {
		lm.metrics[i] = freePort(t)
		lm.cfgs[i] = writeFile(t, filepath.Join(m.dir, settleName(i)+".hcl"), fmt.Sprintf(`
node_id   = %q
data_dir  = "%s-data"
log_level = "info"
roles     = ["settle"]
metrics_listen = "127.0.0.1:%d"
streams { partitions = %d }
nats {
  url      = %q
  user     = %q
  password = %q
}
settle {
  rules               = "rules.hcl"
  segment_max_age     = "50ms"
  segment_max_entries = 200
  signing_key         = "ledger.key"
  leases              = true
  lease_ttl           = %q
}
`, settleName(i), settleName(i), lm.metrics[i], leaseParts, m.hubURL(), settleName(i), pw, leaseTTL.String()))
		lm.settles[i], lm.logs[i] = startLogged(t, m.dir, settleName(i)+".log", "node", "--config", lm.cfgs[i])
		lm.waitLog(i, "settling by lease", 30*time.Second) // the first creates the shared key before the second starts
	}
	nc, err := nats.Connect(m.hubURL(), nats.UserInfo("settle-1", faultSettlePass))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	lm.nc = nc
	lm.js, _ = jetstream.New(nc)
	natstest.Eventually(t, 30*time.Second, func() error {
		kv, err := lm.js.KeyValue(context.Background(), wire.NewSubjects(wire.DefaultPrefix).OwnersBucket())
		lm.kv = kv
		return err
	})
	m.proxy = newProxy(t, fmt.Sprintf("127.0.0.1:%d", m.hubPort))
	m.edgeCfg = writeFile(t, filepath.Join(m.dir, "edge.hcl"), fmt.Sprintf(`
node_id   = "edge-1"
data_dir  = "edge-data"
log_level = "warn"
roles     = ["ingest"]
streams { partitions = %d }
nats {
  url      = "nats://%s"
  user     = "edge-1"
  password = %q
}
ingest {
  forward_batch   = 50
  publish_timeout = "1s"
  http_listen     = "127.0.0.1:%d"
}
%s`, leaseParts, m.proxy.addr(), faultEdgePass, m.httpPort, providerBlocks()))
	m.startEdge()
	return lm
}

// owners reads TALLY_OWNERS: partition → owner ("" for none).
func (lm *leaseMesh) owners() map[int]string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	os, _, err := settle.ReadOwners(ctx, lm.kv, leaseParts)
	out := map[int]string{}
	if err != nil {
		return out
	}
	for _, o := range os {
		out[o.Partition] = o.Owner
	}
	return out
}

// waitOwners waits until ok holds for the owners map.
func (lm *leaseMesh) waitOwners(within time.Duration, what string, ok func(map[int]string) bool) map[int]string {
	lm.t.Helper()
	var last map[int]string
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if last = lm.owners(); ok(last) {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	lm.t.Fatalf("%s: not within %s; owners %v", what, within, last)
	return nil
}

func (lm *leaseMesh) waitLog(i int, s string, within time.Duration) {
	lm.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(lm.logs[i])
		if bytes.Contains(b, []byte(s)) {
			return
		}
		if exited(lm.settles[i]) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(lm.logs[i])
	lm.t.Fatalf("%s did not log %q within %s:\n%s", settleName(i), s, within, tail(b, 3000))
}

func countOwned(o map[int]string, node string) int {
	n := 0
	for _, v := range o {
		if v == node {
			n++
		}
	}
	return n
}

// spread waits for the even spread: each node 2 of the 4 partitions.
func (lm *leaseMesh) spread() {
	lm.waitOwners(30*time.Second, "even spread over two settle nodes", func(o map[int]string) bool {
		return countOwned(o, "settle-1") == leaseParts/2 && countOwned(o, "settle-2") == leaseParts/2
	})
}

// victimOf is the settle node owning partition 0.
func victimOf(o map[int]string) (victim, survivor int) {
	if o[0] == "settle-1" {
		return 0, 1
	}
	return 1, 0
}

// statusJSON runs `tally status --nats … --json` in process.
func (lm *leaseMesh) statusJSON() clusterStatus {
	lm.t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"status", "--nats", lm.hubURL(), "--user", "settle-1", "--password", faultSettlePass, "--json", "--wait", "500ms"}, &out, &errb); err != nil {
		lm.t.Fatalf("tally status: %v\n%s", err, errb.String())
	}
	var st clusterStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		lm.t.Fatalf("tally status --json: %v\n%s", err, out.String())
	}
	return st
}

// TestLeaseTakeoverKill9: kill -9 the owner of partition 0 under load; the
// other settle node owns every partition within 10 s (TTL 2 s), the ledger
// goes on, and the survivor's ledger holds exactly the accepted pairs once
// each and verifies. TALLY_SOAK=1: three rounds.
func TestLeaseTakeoverKill9(t *testing.T) {
	rounds := 1
	if soak() {
		rounds = 3
	}
	for r := range rounds {
		t.Run(fmt.Sprint("round", r), func(t *testing.T) {
			lm := startLeaseMesh(t)
			lm.spread()
			lm.startSends(false)
			lm.waitAnswered(0.3)
			victim, survivor := victimOf(lm.owners())
			lm.settles[victim].kill()
			killed := time.Now()
			lm.waitOwners(10*time.Second, "survivor owns every partition", func(o map[int]string) bool {
				return countOwned(o, settleName(survivor)) == leaseParts
			})
			t.Logf("%s owns all %d partitions %s after kill -9 of %s (lease TTL %s)", settleName(survivor), leaseParts, time.Since(killed).Round(time.Millisecond), settleName(victim), leaseTTL)
			st := lm.statusJSON()
			for _, p := range st.Partitions {
				if p.Owner.Owner != settleName(survivor) {
					t.Errorf("tally status: partition %d owner %q, want %s", p.Partition, p.Owner.Owner, settleName(survivor))
				}
			}
			if len(st.Settle) != 1 || st.Settle[0].Node != settleName(survivor) {
				t.Errorf("tally status: settle heartbeats %+v, want only %s", st.Settle, settleName(survivor))
			}
			// The survivor's own view, over HTTP.
			var out, errb bytes.Buffer
			if err := run(context.Background(), []string{"status", "--url", fmt.Sprintf("http://127.0.0.1:%d", lm.metrics[survivor])}, &out, &errb); err != nil {
				t.Fatalf("tally status --url: %v\n%s", err, errb.String())
			}
			var own nodes.Status
			if err := json.Unmarshal(out.Bytes(), &own); err != nil || own.Settle == nil {
				t.Fatalf("tally status --url: %v\n%s", err, out.String())
			}
			natstest.Eventually(t, 10*time.Second, func() error {
				out.Reset()
				if err := run(context.Background(), []string{"status", "--url", fmt.Sprintf("http://127.0.0.1:%d", lm.metrics[survivor])}, &out, &errb); err != nil {
					return err
				}
				var own nodes.Status
				json.Unmarshal(out.Bytes(), &own)
				running := 0
				for _, p := range own.Settle.Partitions {
					if p.State == "running" && p.LeaseAge >= 0 && p.WriteLeft > 0 {
						running++
					}
				}
				if own.Node != settleName(survivor) || own.Settle.Ownership != "lease" || running != leaseParts {
					return fmt.Errorf("/v1/status of %s: %s", settleName(survivor), out.String())
				}
				return nil
			})
			lm.settle = lm.settles[survivor]
			lm.ledgerDir = filepath.Join(lm.dir, settleName(survivor)+"-data", "ledger")
			lm.finish("kill -9 of a lease owner")
		})
	}
}

// TestLeaseZombie: SIGSTOP the owner of partition 0 past its lease; the other
// node takes over and appends; SIGCONT: the old owner appends nothing
// between its resume and its step-down, logs the step-down, and the chain
// verifies (no fork). It then rejoins and the spread is even again; stopped
// with SIGTERM it gives its leases back and the survivor ends with all.
func TestLeaseZombie(t *testing.T) {
	lm := startLeaseMesh(t)
	lm.spread()
	lm.startSends(false)
	lm.waitAnswered(0.3)
	victim, survivor := victimOf(lm.owners())
	vname := settleName(victim)
	if err := lm.settles[victim].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	lm.waitOwners(10*time.Second, "survivor owns every partition", func(o map[int]string) bool {
		return countOwned(o, settleName(survivor)) == leaseParts
	})
	// Let the new owner append to the taken partitions, so a late append by
	// the old one would have to fork.
	lm.waitLog(survivor, "caught up from the ledger stream", 10*time.Second)
	time.Sleep(leaseTTL)
	resumed := time.Now()
	if err := lm.settles[victim].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	lm.waitLog(victim, "LEASE", 10*time.Second)
	if exited(lm.settles[victim]) {
		t.Fatalf("%s exited after the resume; it should step down and go on", vname)
	}
	b, _ := os.ReadFile(lm.logs[victim])
	stepped := stepDownTime(t, b)
	t.Logf("%s resumed, stepped down %s later", vname, stepped.Sub(resumed).Round(time.Millisecond))
	// Nothing published by the old owner between its resume and its step-down.
	for _, m := range lm.ledgerWriters() {
		if m.writer == vname && !m.at.Before(resumed) && !m.at.After(stepped) {
			t.Errorf("ledger message %d of partition %s written by %s at %s, after its resume at %s and before its step-down at %s",
				m.seq, m.partition, vname, m.at.Format(time.RFC3339Nano), resumed.Format(time.RFC3339Nano), stepped.Format(time.RFC3339Nano))
		}
	}
	// It rejoins: the spread is even again.
	lm.spread()
	// A graceful stop gives its leases back at once.
	lm.settles[victim].stop(t)
	lm.waitOwners(10*time.Second, "survivor owns every partition after the rejoined node stopped", func(o map[int]string) bool {
		return countOwned(o, settleName(survivor)) == leaseParts
	})
	lm.settle = lm.settles[survivor]
	lm.ledgerDir = filepath.Join(lm.dir, settleName(survivor)+"-data", "ledger")
	lm.finish("zombie settle node")
}

// stepDownTime is the time of the first step-down line of a settle log
// (hclog: "2026-01-02T15:04:05.000Z [ERROR] …").
func stepDownTime(t *testing.T, log []byte) time.Time {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "LEASE NOT RENEWED") && !strings.Contains(line, "LEASE LOST") {
			continue
		}
		ts, _, _ := strings.Cut(line, " ")
		at, err := time.Parse("2006-01-02T15:04:05.000Z0700", ts)
		if err != nil {
			t.Fatalf("step-down line without a time: %q", line)
		}
		return at
	}
	t.Fatal("no step-down line")
	return time.Time{}
}

type ledgerMsgInfo struct {
	seq       uint64
	partition string
	writer    string
	at        time.Time
}

// ledgerWriters reads every TALLY_LEDGER message's writer and time.
func (lm *leaseMesh) ledgerWriters() []ledgerMsgInfo {
	lm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subj := wire.NewSubjects(wire.DefaultPrefix)
	st, err := lm.js.Stream(ctx, subj.LedgerStream())
	if err != nil {
		lm.t.Fatal(err)
	}
	last := st.CachedInfo().State.LastSeq
	oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		lm.t.Fatal(err)
	}
	var out []ledgerMsgInfo
	for seq := uint64(0); seq < last; {
		m, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			lm.t.Fatalf("read the ledger stream at %d of %d: %v", seq, last, err)
		}
		md, _ := m.Metadata()
		seq = md.Sequence.Stream
		out = append(out, ledgerMsgInfo{seq: seq, partition: m.Headers().Get(wire.HdrPartition), writer: m.Headers().Get(settle.HdrWriter), at: md.Timestamp})
	}
	return out
}
