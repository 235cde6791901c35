package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/config/examples"
	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/wire"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stdout, stderr)
	duration := fs.Duration("duration", 30*time.Second, "how long the simulated providers publish")
	data := fs.String("data", "", "data directory (default: a new directory under the system temp dir)")
	providers := fs.Int("providers", 4, "number of simulated providers")
	rate := fs.Int("rate", 2000, "transactions per second offered by all providers together")
	seed := fs.Uint64("seed", 0, "random seed (0 = from the clock); printed so a run can be repeated")
	logLevel := fs.String("log-level", "error", "trace, debug, info, warn, error (warnings would interleave with the progress line)")
	httpListen := fs.String("http", "127.0.0.1:0", "ingest HTTP endpoint address (port 0 picks a free one; \"\" for none)")
	metricsListen := fs.String("metrics", "127.0.0.1:0", "Prometheus /metrics, /healthz, /readyz address (port 0 picks a free one; \"\" for none)")
	consoleListen := fs.String("console", "127.0.0.1:0", "console address: web UI and /v1 API (port 0 picks a free one; \"\" for none; console_demo.go)")
	stay := fs.String("stay", "auto", "after the traffic, keep the node and console up until Ctrl-C: yes, no, or auto (yes when the output is a terminal and the console is on)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *providers < 1 || *providers > 64 || *rate < 1 || *rate > 1_000_000 || *duration <= 0 {
		return usageError{"--providers 1-64, --rate 1-1000000 and a positive --duration, please"}
	}
	if *stay != "auto" && *stay != "yes" && *stay != "no" {
		return usageError{"--stay is yes, no or auto"}
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	dir := *data
	if dir == "" {
		d, err := os.MkdirTemp("", "tally-demo-")
		if err != nil {
			return err
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cfg, err := demoConfig(abs, *logLevel)
	if err != nil {
		return err
	}
	if cfg, err = withDemoProviders(cfg, *providers, *httpListen); err != nil {
		return err
	}
	run, err := nextDemoRun(abs)
	if err != nil {
		return err
	}
	cfg.MetricsListen = *metricsListen
	logins, err := demoConsole(&cfg, *consoleListen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tally demo: data %s, %d providers, %d tx/s for %s, seed %d\n", abs, *providers, *rate, *duration, *seed)
	if run > 1 {
		fmt.Fprintf(stdout, "continuing in %s: run %d; its ids carry -r%d- so none repeats an earlier run's (balances and ledger carry on)\n", abs, run, run)
	}
	log := newLogger(*logLevel, stderr)
	node, err := nodes.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			node.Close()
		}
	}()
	fmt.Fprintf(stdout, "hub at %s — providers publish to %s.in.<provider>\n", node.ClientURL(), cfg.Prefix)
	if addr := node.MetricsAddr(); addr != "" {
		fmt.Fprintf(stdout, "metrics at http://%s/metrics (readiness: http://%s/readyz; docs/metrics.md)\n", addr, addr)
	}
	staying := *stay == "yes" || *stay == "auto" && isTerminal(stdout) && node.ConsoleURL() != ""
	demoConsoleHelp(stdout, node, logins, *duration, staying)
	demoSendHelp(stdout, node, cfg)

	sim, err := newSimulation(node.ClientURL(), cfg, wire.NewSubjects(cfg.Prefix), *providers, *seed, run)
	if err != nil {
		return err
	}
	defer sim.close()

	if len(sim.providers) > 0 {
		over, conflict, orphan := sim.plantExceptions()
		fmt.Fprintf(stdout, "planted for the console's exception queue: over-reversal %s, orphan %s (after %s); and a conflicting resend of %s (refused at the edge: `tally dlq`)\n",
			over, orphan, demoOrphanTimeout, conflict)
	}
	runCtx, stop := context.WithTimeout(ctx, *duration)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sim.run(runCtx, *rate) }()

	tty := isTerminal(stdout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start, lastSettled, lastAt := time.Now(), uint64(0), time.Now()
	progress := func(final bool) {
		st := node.Stats()
		settled := st.Settle.Entries
		rateNow := float64(settled-lastSettled) / time.Since(lastAt).Seconds()
		if final {
			rateNow = float64(settled) / time.Since(start).Seconds() // the run's average
		}
		lastSettled, lastAt = settled, time.Now()
		in := st.Ingest
		line := fmt.Sprintf("%5.0fs published %d  accepted %d  dup %d  rejected %d  forwarded %d  buffered %s  fwd-lag %d  oldest %s  settled %d  held %d  exceptions %d  lag %d  %.0f tx/s",
			time.Since(start).Seconds(), sim.published.Load(), in.Accepted, in.Duplicates, sumMap(in.Rejected),
			in.Forwarded, byteSize(uint64(max(in.BufferedBytes, 0))), in.ForwardLag, in.OldestUnforwarded.Round(time.Millisecond), settled,
			st.Settle.OrphansHeld, st.Settle.Exceptions, in.ForwardLag+st.Settle.Lag, rateNow)
		switch {
		case tty && !final:
			fmt.Fprintf(stdout, "\r%-160s", line)
		case tty:
			fmt.Fprintf(stdout, "\r%-160s\n", line)
		default:
			fmt.Fprintln(stdout, line)
		}
	}
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-node.Failed():
			return fmt.Errorf("node stopped: %w", node.Err())
		case <-tick.C:
			progress(false)
		}
	}
	wg.Wait()
	// Let the pipeline drain: everything accepted forwarded and settled.
	drainBy := time.Now().Add(60 * time.Second)
	for time.Now().Before(drainBy) && ctx.Err() == nil {
		st := node.Stats()
		if st.Ingest.Forwarded == st.Ingest.Committed && st.Settle.Lag == 0 && st.Settle.Entries+st.Settle.Duplicates+st.Settle.Conflicts+st.Settle.OrphansHeld+st.Settle.Exceptions >= st.Ingest.Committed {
			break
		}
		select {
		case <-tick.C:
			progress(false)
		case <-time.After(50 * time.Millisecond):
		}
	}
	progress(true)
	if staying && ctx.Err() == nil {
		// A newcomer works through the console by hand (docs/console.md):
		// the node stays up, with no more simulated traffic, until Ctrl-C.
		fmt.Fprintf(stdout, "traffic done; the node and the console at %s/ stay up until Ctrl-C\n", node.ConsoleURL())
		select {
		case <-ctx.Done():
		case <-node.Failed():
			return fmt.Errorf("node stopped: %w", node.Err())
		}
	}
	st := node.Stats()
	balances, err := node.Balances()
	if err != nil {
		return err
	}
	closed = true
	if err := node.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return demoSummary(stdout, abs, cfg, sim, st, balances)
}

// demoRunFile counts the demo runs in a data directory. Each run puts its
// number in every id it makes, so a run on an existing directory continues
// it instead of re-sending the ids of an earlier run with new payloads
// (thousands of conflicts).
const demoRunFile = "demo-run"

// nextDemoRun returns this run's number (1 for a new directory) and records it.
func nextDemoRun(dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	path := filepath.Join(dir, demoRunFile)
	last := 0
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if last, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil || last < 1 {
			return 0, fmt.Errorf("%s holds %q, not a run number: remove it only if no demo ever ran in %s", path, b, dir)
		}
	case !errors.Is(err, os.ErrNotExist):
		return 0, err
	default:
		// No run file: a directory from before run numbers, or a new one.
		if _, err := os.Stat(filepath.Join(dir, "ingest")); err == nil {
			last = 1 // ids of an earlier run have no run number; start at 2
		}
	}
	run := last + 1
	if err := os.WriteFile(path, []byte(strconv.Itoa(run)+"\n"), 0o644); err != nil {
		return 0, err
	}
	return run, nil
}

// demoConfig is the single-node config on a fresh data dir, with the example
// rules written into it so the demo needs no other file.
func demoConfig(dir, logLevel string) (config.Config, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return config.Config{}, err
	}
	rulesPath := filepath.Join(dir, "rules.hcl")
	if _, err := os.Stat(rulesPath); errors.Is(err, os.ErrNotExist) {
		b, err := examples.FS.ReadFile("rules.hcl")
		if err != nil {
			return config.Config{}, err
		}
		if err := os.WriteFile(rulesPath, b, 0o644); err != nil {
			return config.Config{}, err
		}
	}
	cfg := config.Default()
	cfg.NodeID = "demo"
	cfg.DataDir = dir
	cfg.LogLevel = logLevel
	cfg.Hub.Port = 0 // any free loopback port
	cfg.Settle.Rules = rulesPath
	cfg.Settle.Origin = "tally.demo/ledger"
	// Short, so the orphan the simulation plants (plantExceptions) becomes
	// an exception while the demo runs; the early rollbacks it sends on
	// purpose meet their bets within milliseconds.
	cfg.Settle.OrphanTimeout = demoOrphanTimeout
	return cfg, cfg.Validate()
}

// withDemoProviders turns identity on, as in production: each simulated
// provider has its own NATS user (publish only on its own subject) and HTTP
// token, fresh per run; the ingest HTTP endpoint listens on httpListen.
func withDemoProviders(cfg config.Config, providers int, httpListen string) (config.Config, error) {
	cfg.Ingest.HTTPListen = httpListen
	for i := range providers {
		name := fmt.Sprintf("studio-%d", i+1)
		cfg.Providers = append(cfg.Providers, config.Provider{Name: name, NATSPassword: "pw-" + secret(), HTTPToken: "tok-" + secret()})
	}
	// One more provider that uploads CSV files over HTTP (nothing simulates it).
	cfg.Providers = append(cfg.Providers, config.Provider{Name: "uploads", Dialect: "csv", HTTPToken: "tok-" + secret()})
	return cfg, cfg.Validate()
}

func secret() string {
	b := make([]byte, 12)
	if _, err := crand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

// demoSendHelp prints how to send as one of the demo's providers.
func demoSendHelp(w io.Writer, node *nodes.Node, cfg config.Config) {
	p := cfg.Providers[0]
	fmt.Fprintf(w, "send as a provider while the demo runs (FILE: one JSON transaction per line):\n")
	fmt.Fprintf(w, "  tally send --nats %s --provider %s --user %s --password %s FILE\n", node.ClientURL(), p.Name, p.Name, p.NATSPassword)
	if addr := node.HTTPAddr(); addr != "" {
		fmt.Fprintf(w, "  tally send --http http://%s --provider %s --token %s FILE\n", addr, p.Name, p.HTTPToken)
		up := cfg.Providers[len(cfg.Providers)-1]
		fmt.Fprintf(w, "  tally send --http http://%s --provider %s --token %s --format csv FILE.csv\n", addr, up.Name, up.HTTPToken)
	}
}

func sumMap(m map[string]uint64) uint64 {
	var s uint64
	for _, v := range m {
		s += v
	}
	return s
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func demoSummary(w io.Writer, dir string, cfg config.Config, sim *simulation, st nodes.Stats, balances []settle.Balance) error {
	fmt.Fprintln(w, "\n== providers (answers received)")
	outs := sim.outcomes()
	keys := make([]string, 0, len(outs))
	for k := range outs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-28s %d\n", k, outs[k])
	}
	fmt.Fprintf(w, "  (%d ids re-sent with a new payload on purpose: each is a conflict, or a duplicate when the new amount happened to equal the old)\n", sim.conflicts.Load())
	fmt.Fprintln(w, "\n== settlement")
	s := st.Settle
	fmt.Fprintf(w, "  entries %d  segments %d  duplicates %d  conflicts %d  orphans held %d  orphans released %d  exceptions %d  redelivered %d  gaps %d\n",
		s.Entries, s.Segments, s.Duplicates, s.Conflicts, s.OrphansHeld, s.OrphansReleased, s.Exceptions, s.Redelivered, s.Gaps)
	fmt.Fprintln(w, "\n== balances (party, currency)")
	for _, b := range balances {
		fmt.Fprintf(w, "  %-16s %s %20s\n", b.Party, b.Currency, b.Formatted())
	}
	fmt.Fprintln(w, "\n== last signed checkpoint per partition")
	for p := range cfg.Streams.Partitions {
		cp, err := os.ReadFile(filepath.Join(cfg.LedgerDir(), fmt.Sprintf("p%03d", p), "checkpoint"))
		if err != nil {
			fmt.Fprintf(w, "  partition %d: none\n", p)
			continue
		}
		fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(strings.TrimSpace(string(cp)), "\n", "\n  "))
	}
	fmt.Fprintf(w, "\nverify it:  go run ./cmd/tally verify %s\n", dir)
	return nil
}

// simulation publishes realistic provider traffic over NATS request/reply.
type simulation struct {
	conns     map[string]*nats.Conn // one per provider, with its own credentials
	subjects  wire.Subjects
	providers []*simProvider
	published atomic.Uint64
	conflicts atomic.Uint64 // ids re-sent with a new payload on purpose
	mu        sync.Mutex
	answers   map[string]uint64
}

type simProvider struct {
	name     string
	run      int         // the demo run number, in every id (demoRunFile)
	sim      *simulation // counts the conflicts made on purpose
	rng      *rand.Rand
	next     int
	currency []string
	recent   []map[string]any // sent transactions, for duplicates, conflicts and rollbacks
	reversed map[string]bool  // bets already rolled back: a real provider reverses a bet once
	pending  []map[string]any // parents to send after their rollback
}

func newSimulation(url string, cfg config.Config, s wire.Subjects, n int, seed uint64, run int) (*simulation, error) {
	sim := &simulation{conns: map[string]*nats.Conn{}, subjects: s, answers: map[string]uint64{}}
	for _, p := range cfg.Providers[:n] {
		nc, err := nats.Connect(url, nats.Name("tally demo "+p.Name), nats.UserInfo(p.Name, p.NATSPassword),
			nats.CustomInboxPrefix(nodes.ProviderInbox(p.Name)))
		if err != nil {
			sim.close()
			return nil, fmt.Errorf("provider %s connect: %w", p.Name, err)
		}
		sim.conns[p.Name] = nc
	}
	currencies := [][]string{{"EUR"}, {"USD", "EUR"}, {"JPY"}, {"KWD", "USD"}}
	for i := range n {
		sim.providers = append(sim.providers, &simProvider{
			name:     fmt.Sprintf("studio-%d", i+1),
			run:      run,
			sim:      sim,
			rng:      rand.New(rand.NewPCG(seed, uint64(i))),
			currency: currencies[i%len(currencies)],
			reversed: map[string]bool{},
		})
	}
	return sim, nil
}

func (s *simulation) close() {
	for _, nc := range s.conns {
		nc.Close()
	}
}

// demoOrphanTimeout is the demo's settle.orphan_timeout.
var demoOrphanTimeout = 15 * time.Second // tests shorten it

// plantExceptions sends, in order, one of each exception the console's
// queue works on (docs/console.md "Trying it"), by the first provider: an
// over-reversal (a bet rolled back twice) and an orphan (a rollback whose
// bet never comes: an exception after demoOrphanTimeout); and a conflict
// (the bet's id again with another amount), which the edge itself refuses
// (dead letter, code conflict): a conflict reaches the settle queue only
// when two edges accept the same id. It returns their ids.
func (s *simulation) plantExceptions() (overReversal, conflict, orphan string) {
	p := s.providers[0]
	bet := p.fresh("bet")
	s.send(p.name, p.remember(bet))
	s.send(p.name, mustJSON(p.reversal(bet)))
	second := p.reversal(bet)
	s.send(p.name, mustJSON(second))
	again := clone(bet)
	again["amount"] = "999.99"
	if bet["currency"] == "JPY" {
		again["amount"] = "99999"
	}
	s.send(p.name, mustJSON(again))
	s.conflicts.Add(1)
	p.next++
	lost := fmt.Sprintf("%s-r%d-never-%d", p.name, p.run, p.next)
	rb := p.reversal(map[string]any{"id": lost, "amount": bet["amount"], "currency": bet["currency"]})
	s.send(p.name, mustJSON(rb))
	return second["id"].(string), bet["id"].(string), rb["id"].(string)
}

// run offers `rate` transactions per second in total, open loop, until ctx ends.
func (s *simulation) run(ctx context.Context, rate int) {
	const inflight = 256
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	interval := time.Second / time.Duration(max(rate, 1))
	burst := 1
	if interval < time.Millisecond {
		burst = int(time.Millisecond / interval)
		interval = time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	i := 0
	for {
		select {
		case <-ctx.Done():
			// A real provider eventually sends the bet behind every early
			// rollback; send the ones still pending so none stays an orphan.
			wg.Wait()
			for _, p := range s.providers {
				for _, tx := range p.pending {
					s.send(p.name, p.remember(tx))
				}
				p.pending = nil
			}
			return
		case <-t.C:
		}
		for range burst {
			p := s.providers[i%len(s.providers)]
			i++
			payload := p.nextPayload()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				s.send(p.name, payload) // generated, so sent: pending bets may depend on it
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s.send(p.name, payload)
			}()
		}
	}
}

func (s *simulation) send(provider string, payload []byte) {
	s.published.Add(1)
	key := "error: no answer"
	for attempt := 0; attempt < 3; attempt++ {
		msg, err := s.conns[provider].Request(s.subjects.In(provider), payload, 5*time.Second)
		if err != nil {
			continue // retry with the same payload: the edge deduplicates
		}
		var a wire.Answer
		if json.Unmarshal(msg.Data, &a) != nil {
			key = "error: bad answer"
			break
		}
		key = a.Status
		if a.Status == wire.StatusRejected {
			key = "rejected: " + a.Code
		}
		break
	}
	s.mu.Lock()
	s.answers[key]++
	s.mu.Unlock()
}

func (s *simulation) outcomes() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.answers))
	for k, v := range s.answers {
		out[k] = v
	}
	return out
}

var (
	games = []struct{ name, category string }{{"book-of-x", "slot"}, {"star-reels", "slot"}, {"live-roulette", "live"}, {"blackjack-vip", "table"}}
	bad   = []string{
		`{"id":"bad-r%d-%d","type":"bet","amount":10.5,"currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`,
		`{"id":"bad-r%d-%d","type":"bet","amount":"1.00","currency":"XXX","occurred_at":"2026-11-01T10:00:00Z"}`,
		`{"id":"bad-r%d-%d","type":"bet","amount":"1.001","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`,
		`{"id":"bad-r%d-%d","type":"rollback","amount":"1.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`,
		`{"id":"bad-r%d-%d","type":"bet","amount":"-3.00","currency":"EUR","occurred_at":"2026-11-01T10:00:00Z"}`,
		`{"id":"bad-r%d-%d", "type":"bet"`,
	}
)

// nextPayload picks what a real provider stream looks like: mostly bets and
// wins, some rollbacks (some sent before their bet), retries that duplicate,
// the odd conflicting reuse of an id, and a little malformed input.
func (p *simProvider) nextPayload() []byte {
	r := p.rng.IntN(1000)
	switch {
	case len(p.pending) > 0 && r < 500:
		tx := p.pending[0]
		p.pending = p.pending[1:]
		return p.remember(tx)
	case r < 10:
		return fmt.Appendf(nil, bad[p.rng.IntN(len(bad))], p.run, p.rng.IntN(1e9))
	case r < 40 && len(p.recent) > 0:
		return mustJSON(p.recent[p.rng.IntN(len(p.recent))]) // retry: a duplicate
	case r < 45 && len(p.recent) > 0:
		tx := clone(p.recent[p.rng.IntN(len(p.recent))])
		tx["amount"] = p.amount(tx["currency"].(string)) // same id, new payload: a conflict
		p.sim.conflicts.Add(1)
		return mustJSON(tx)
	case r < 80 && len(p.recent) > 0:
		parent := p.recent[p.rng.IntN(len(p.recent))]
		if parent["type"] != "bet" || p.reversed[parent["id"].(string)] {
			break
		}
		return mustJSON(p.reversal(parent))
	case r < 95:
		// A rollback sent before its bet: settlement holds it until the bet arrives.
		bet := p.fresh("bet")
		p.pending = append(p.pending, bet)
		return mustJSON(p.reversal(bet))
	}
	typ := "bet"
	if p.rng.IntN(100) < 35 {
		typ = "win"
	}
	return p.remember(p.fresh(typ))
}

func (p *simProvider) remember(tx map[string]any) []byte {
	if len(p.recent) < 512 {
		p.recent = append(p.recent, tx)
	} else {
		i := p.rng.IntN(len(p.recent))
		delete(p.reversed, p.recent[i]["id"].(string)) // keeps the set as small as recent
		p.recent[i] = tx
	}
	return mustJSON(tx)
}

func (p *simProvider) fresh(typ string) map[string]any {
	p.next++
	cur := p.currency[p.rng.IntN(len(p.currency))]
	g := games[p.rng.IntN(len(games))]
	tx := map[string]any{
		"id": fmt.Sprintf("%s-r%d-%d", p.name, p.run, p.next), "type": typ, "amount": p.amount(cur), "currency": cur,
		"occurred_at": time.Now().UTC().Format(time.RFC3339Nano), "round": fmt.Sprintf("R%d", p.next/3),
		"game": g.name, "category": g.category, "jurisdiction": "MT", "brand": "main",
		"player": fmt.Sprintf("pl-%x", p.rng.Uint32()%5000),
	}
	if p.rng.IntN(3) == 0 {
		tx["affiliate"] = fmt.Sprintf("aff-%d", 1+p.rng.IntN(3))
	}
	return tx
}

func (p *simProvider) reversal(parent map[string]any) map[string]any {
	p.next++
	p.reversed[parent["id"].(string)] = true
	return map[string]any{
		"id": fmt.Sprintf("%s-r%d-rb-%d", p.name, p.run, p.next), "type": "rollback", "amount": parent["amount"],
		"currency": parent["currency"], "parent": parent["id"], "occurred_at": time.Now().UTC().Format(time.RFC3339Nano),
	}
}

func (p *simProvider) amount(cur string) string {
	switch cur {
	case "JPY":
		return fmt.Sprintf("%d", 10+p.rng.IntN(50000))
	case "KWD":
		return fmt.Sprintf("%d.%03d", 1+p.rng.IntN(50), p.rng.IntN(1000))
	default:
		return fmt.Sprintf("%d.%02d", 1+p.rng.IntN(200), p.rng.IntN(100))
	}
}

func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
