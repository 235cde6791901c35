package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

// The fault tests run a small mesh of real tally processes (this test binary
// as the tally command, see TestMain): a hub (with or without the settle
// role), optionally a separate settle node, and an edge ingest node whose
// NATS link to the hub runs through a TCP proxy the test can cut. Providers
// are `tally send` processes with their own credentials. After the damage
// every line must have a definite answer, `tally verify` must pass, and the
// ledger must hold exactly the accepted (provider, id) pairs, each once.

const (
	faultProviders   = 3
	faultLines       = 500 // per provider
	faultEdgePass    = "edge-1-password"
	faultSettlePass  = "settle-1-password"
	faultSendTimeout = "2s"
)

func faultProvider(i int) string    { return fmt.Sprintf("p%d", i+1) }
func faultPassword(p string) string { return p + "-nats-password" }
func faultToken(p string) string    { return p + "-http-token-0123456789" }
func providerBlocks() string {
	var b strings.Builder
	for i := range faultProviders {
		p := faultProvider(i)
		fmt.Fprintf(&b, "provider %q {\n  nats_password = %q\n  http_token = %q\n}\n", p, faultPassword(p), faultToken(p))
	}
	return b.String()
}

// tcpProxy forwards 127.0.0.1:<port> to target until cut; while cut it
// closes every connection and refuses new ones, like a broken link.
type tcpProxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { io.Copy(u, c); u.Close(); c.Close() }()
		go func() { io.Copy(c, u); u.Close(); c.Close() }()
	}
}

// cut drops every connection and refuses new ones until restore.
func (p *tcpProxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *tcpProxy) restore() { p.down.Store(false) }

// mesh is the set of processes of one fault test.
type mesh struct {
	t         *testing.T
	dir       string
	hubPort   int
	proxy     *tcpProxy
	httpPort  int
	hub, edge *child
	settle    *child // nil when the hub settles
	hubCfg    string
	edgeCfg   string
	settleCfg string
	ledgerDir string
	sends     []*sendProc
}

func (m *mesh) hubURL() string  { return fmt.Sprintf("nats://127.0.0.1:%d", m.hubPort) }
func (m *mesh) httpURL() string { return fmt.Sprintf("http://127.0.0.1:%d", m.httpPort) }

func writeFile(t *testing.T, path, s string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const faultSettleBlock = `settle {
  rules               = "rules.hcl"
  segment_max_age     = "50ms"
  segment_max_entries = 200
}
`

// startMesh starts the hub (and settle, separately when separateSettle) and
// the edge, whose hub link goes through a proxy.
func startMesh(t *testing.T, separateSettle bool) *mesh {
	t.Helper()
	return startMeshWith(t, separateSettle, faultSettleBlock)
}

// startMeshWith is startMesh with the given settle block.
func startMeshWith(t *testing.T, separateSettle bool, settleBlock string) *mesh {
	t.Helper()
	m := &mesh{t: t, dir: t.TempDir(), hubPort: freePort(t), httpPort: freePort(t)}
	t.Cleanup(func() { // the processes' logs, when something went wrong
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(m.dir, "child.log"))
			t.Logf("child.log (tail):\n%s", tail(b, 6000))
		}
	})
	writeFile(t, filepath.Join(m.dir, "rules.hcl"), crashRules)
	roles, settle := `["hub", "settle"]`, settleBlock
	if separateSettle {
		roles, settle = `["hub"]`, ""
	}
	m.hubCfg = writeFile(t, filepath.Join(m.dir, "hub.hcl"), fmt.Sprintf(`
node_id   = "hub-1"
data_dir  = "hub-data"
log_level = "warn"
roles     = %s
hub {
  listen        = "127.0.0.1:%d"
  sync_interval = "always"
  node_user "edge-1" { password = %q }
  node_user "settle-1" { password = %q }
}
%s
%s`, roles, m.hubPort, faultEdgePass, faultSettlePass, settle, providerBlocks()))
	m.ledgerDir = filepath.Join(m.dir, "hub-data", "ledger")
	m.hub = startChild(t, m.dir, "node", "--config", m.hubCfg)
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", m.hubPort))
	if separateSettle {
		m.settleCfg = writeFile(t, filepath.Join(m.dir, "settle.hcl"), fmt.Sprintf(`
node_id   = "settle-1"
data_dir  = "settle-data"
log_level = "warn"
roles     = ["settle"]
nats {
  url      = %q
  user     = "settle-1"
  password = %q
}
%s`, m.hubURL(), faultSettlePass, settleBlock))
		m.ledgerDir = filepath.Join(m.dir, "settle-data", "ledger")
		m.settle = startChild(t, m.dir, "node", "--config", m.settleCfg)
	}
	m.proxy = newProxy(t, fmt.Sprintf("127.0.0.1:%d", m.hubPort))
	m.edgeCfg = writeFile(t, filepath.Join(m.dir, "edge.hcl"), fmt.Sprintf(`
node_id   = "edge-1"
data_dir  = "edge-data"
log_level = "warn"
roles     = ["ingest"]
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
%s`, m.proxy.addr(), faultEdgePass, m.httpPort, providerBlocks()))
	m.startEdge()
	return m
}

func (m *mesh) startEdge() {
	m.edge = startChild(m.t, m.dir, "node", "--config", m.edgeCfg)
	waitTCP(m.t, fmt.Sprintf("127.0.0.1:%d", m.httpPort))
}

func waitTCP(t *testing.T, addr string) {
	t.Helper()
	natstest.Eventually(t, 30*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// sendProc is one `tally send` process: a provider sending its file.
type sendProc struct {
	provider string
	lines    [][]byte // input, by line number - 1
	cmd      *exec.Cmd
	outPath  string
	done     chan error
}

// faultInput is a provider's file: bets with unique ids, every 25th line a
// retry of an earlier line (duplicate), every 40th a malformed amount, and
// one conflicting reuse of an id.
func faultInput(provider string) [][]byte {
	var lines [][]byte
	for i := range faultLines {
		var b []byte
		switch {
		case i > 0 && i%25 == 0:
			b = lines[i/2]
		case i%40 == 39:
			b = fmt.Appendf(nil, `{"id":"%s-bad-%d","type":"bet","amount":"1.001","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, provider, i)
		case i == faultLines-1:
			b = fmt.Appendf(nil, `{"id":"%s-tx-1","type":"bet","amount":"999.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, provider)
		default:
			b = fmt.Appendf(nil, `{"id":"%s-tx-%d","type":"bet","amount":"%d.%02d","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`, provider, i, 1+i%90, i%100)
		}
		lines = append(lines, b)
	}
	return lines
}

// startSends starts one `tally send` per provider, over NATS to the hub or
// over HTTP to the edge.
func (m *mesh) startSends(overHTTP bool) {
	for i := range faultProviders {
		p := faultProvider(i)
		sp := &sendProc{provider: p, lines: faultInput(p), outPath: filepath.Join(m.dir, p+".answers"), done: make(chan error, 1)}
		in := writeFile(m.t, filepath.Join(m.dir, p+".jsonl"), string(bytes.Join(sp.lines, []byte("\n")))+"\n")
		args := []string{"send", "--provider", p, "--timeout", faultSendTimeout, "--give-up", "90s", "--concurrency", "4"}
		if overHTTP {
			args = append(args, "--http", m.httpURL(), "--token", faultToken(p))
		} else {
			args = append(args, "--nats", m.hubURL(), "--user", p, "--password", faultPassword(p))
		}
		out, err := os.Create(sp.outPath)
		if err != nil {
			m.t.Fatal(err)
		}
		log, _ := os.OpenFile(filepath.Join(m.dir, "child.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		sp.cmd = exec.Command(os.Args[0], append(args, in)...)
		sp.cmd.Env = append(os.Environ(), "TALLY_TEST_CHILD=1")
		sp.cmd.Stdout, sp.cmd.Stderr = out, log
		if err := sp.cmd.Start(); err != nil {
			m.t.Fatal(err)
		}
		go func() { sp.done <- sp.cmd.Wait(); out.Close(); log.Close() }()
		m.t.Cleanup(func() {
			if sp.cmd.ProcessState == nil {
				sp.cmd.Process.Signal(syscall.SIGKILL)
			}
		})
		m.sends = append(m.sends, sp)
	}
}

// answered counts the answers printed so far by every sender.
func (m *mesh) answered() int {
	n := 0
	for _, sp := range m.sends {
		b, _ := os.ReadFile(sp.outPath)
		n += bytes.Count(b, []byte("\n"))
	}
	return n
}

// waitAnswered waits until at least frac of all lines have an answer.
func (m *mesh) waitAnswered(frac float64) {
	m.t.Helper()
	want := int(frac * float64(faultProviders*faultLines))
	natstest.Eventually(m.t, 60*time.Second, func() error {
		if n := m.answered(); n < want {
			return fmt.Errorf("%d of %d lines answered", n, want)
		}
		return nil
	})
}

// finish waits for every sender, then checks answers, the ledger and verify.
// It returns how many lines needed more than one attempt.
func (m *mesh) finish(what string) (retried int) {
	t := m.t
	t.Helper()
	accepted := map[string]bool{} // (provider/id) answered accepted or duplicate
	rejected := map[string]bool{}
	counts := map[string]int{}
	for _, sp := range m.sends {
		select {
		case err := <-sp.done:
			// Exit 1: some lines were rejected (the input has some on purpose).
			if err != nil && sp.cmd.ProcessState.ExitCode() != sendExitRejected {
				b, _ := os.ReadFile(filepath.Join(m.dir, "child.log"))
				t.Fatalf("tally send %s: %v\n%s", sp.provider, err, tail(b, 3000))
			}
		case <-time.After(120 * time.Second):
			t.Fatalf("tally send %s did not finish", sp.provider)
		}
		f, err := os.Open(sp.outPath)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		seen := 0
		for sc.Scan() {
			var a sendLine
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				t.Fatalf("%s: bad answer line %q", sp.provider, sc.Bytes())
			}
			seen++
			if a.Attempts > 1 {
				retried++
			}
			var tx struct{ ID string }
			json.Unmarshal(sp.lines[a.Line-1], &tx)
			key := sp.provider + "/" + tx.ID
			counts[a.Status]++
			switch a.Status {
			case wire.StatusAccepted, wire.StatusDuplicate:
				accepted[key] = true
			case wire.StatusRejected:
				if a.Code != "conflict" {
					rejected[key] = true
				}
			default:
				t.Errorf("%s line %d: no definite answer: %+v", sp.provider, a.Line, a)
			}
		}
		f.Close()
		if seen != len(sp.lines) {
			t.Errorf("%s: %d answers for %d lines", sp.provider, seen, len(sp.lines))
		}
	}
	natstest.Eventually(t, 60*time.Second, func() error {
		ids, err := ledgerIDs(m.ledgerDir)
		if err != nil {
			return err
		}
		if len(ids) < len(accepted) {
			return fmt.Errorf("%d of %d in the ledger", len(ids), len(accepted))
		}
		return nil
	})
	m.edge.stop(t)
	if m.settle != nil {
		m.settle.stop(t)
	}
	m.hub.stop(t)
	ids, err := ledgerIDs(m.ledgerDir)
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	for k, n := range ids {
		entries += n
		if n != 1 {
			t.Errorf("%s in the ledger %d times, want 1", k, n)
		}
		if !accepted[k] {
			t.Errorf("%s in the ledger but never answered accepted", k)
		}
	}
	for k := range accepted {
		if ids[k] == 0 {
			t.Errorf("%s answered accepted but missing from the ledger", k)
		}
		if rejected[k] {
			t.Errorf("%s answered both accepted and rejected", k)
		}
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"verify", m.ledgerDir}, &out, &errb); err != nil {
		t.Fatalf("tally verify after %s: %v\n%s%s", what, err, out.String(), errb.String())
	}
	t.Logf("%s: compared %d lines sent (%d retried) → %d accepted, %d duplicate, %d rejected answers; %d distinct accepted (provider, id); ledger %d entries, %d distinct; verify ok",
		what, faultProviders*faultLines, retried, counts[wire.StatusAccepted], counts[wire.StatusDuplicate], counts[wire.StatusRejected], len(accepted), entries, len(ids))
	return retried
}

// settled is the number of distinct ids in the ledger now (0 while unreadable).
func (m *mesh) settled() int {
	ids, _ := ledgerIDs(m.ledgerDir)
	return len(ids)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// TestFaultEdgeKill9: (a) kill -9 the edge ingest node mid-load and restart
// it; the providers' `tally send` retries unanswered lines with the same ids.
func TestFaultEdgeKill9(t *testing.T) {
	m := startMesh(t, false)
	m.startSends(false)
	m.waitAnswered(0.3)
	m.edge.kill()
	t.Logf("edge killed with %d lines answered", m.answered())
	time.Sleep(500 * time.Millisecond) // providers see no responders and retry
	m.startEdge()
	if retried := m.finish("edge kill -9"); retried == 0 {
		t.Error("no line was retried: the kill did not hit requests in flight")
	}
}

// TestFaultHubLinkCut: (b) cut the edge's link to the hub for a while as
// providers keep sending over HTTP; the edge buffers in its WAL and forwards
// everything once the link is back.
func TestFaultHubLinkCut(t *testing.T) {
	m := startMesh(t, false)
	m.startSends(true)
	m.waitAnswered(0.2)
	m.proxy.cut()
	cutAt, before := time.Now(), m.answered()
	natstest.Eventually(t, 60*time.Second, func() error { // accepting goes on while cut
		if n := m.answered(); n < before+600 || time.Since(cutAt) < 2*time.Second {
			return fmt.Errorf("%d answered during the cut (from %d)", n, before)
		}
		return nil
	})
	// Nothing answered during the cut can have reached the hub: it is all in
	// the edge's WAL (allow for the answers in flight when the cut came).
	during, settled := m.answered()-before, m.settled()
	t.Logf("link cut: %d lines answered before, %d during; %d settled when the link returns", before, during, settled)
	if settled > before+4*4*faultProviders {
		t.Errorf("%d settled during the cut, only %d lines were answered before it", settled, before)
	}
	m.proxy.restore()
	m.finish("hub link cut")
}

// TestFaultSettleKill9: (c) kill -9 the settlement node mid-batch and
// restart it; it recovers its ledger and consumer and settles the rest.
func TestFaultSettleKill9(t *testing.T) {
	m := startMesh(t, true)
	m.startSends(false)
	natstest.Eventually(t, 60*time.Second, func() error {
		ids, err := ledgerIDs(m.ledgerDir)
		if err != nil {
			return err
		}
		if len(ids) < 200 {
			return fmt.Errorf("%d settled", len(ids))
		}
		return nil
	})
	m.settle.kill()
	t.Logf("settle killed with %d lines answered", m.answered())
	time.Sleep(500 * time.Millisecond)
	m.settle = startChild(t, m.dir, "node", "--config", m.settleCfg)
	m.finish("settle kill -9")
}
