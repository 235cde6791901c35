package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

func init() {
	register(command{"bench", "[--duration 60s] [--rate N|max] [--providers 8] [--batch 100] [--json]",
		"measure publish-to-ledger throughput and latency next to raw JetStream", 60, cmdBench})
}

// benchResult is what `tally bench` measured; --json prints it as is.
type benchResult struct {
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	CPUs      int    `json:"cpus"`

	Duration  string `json:"duration"`
	Rate      string `json:"rate"` // offered tx/s, or "max"
	Providers int    `json:"providers"`
	Batch     int    `json:"batch"`

	Sent          uint64  `json:"sent"`     // transactions published by the providers
	Answered      uint64  `json:"answered"` // transactions with an answer
	Accepted      uint64  `json:"accepted"`
	NotAccepted   uint64  `json:"not_accepted"` // rejected (e.g. buffer_full) or duplicate
	Unanswered    uint64  `json:"unanswered"`   // requests without an answer by the end
	Skipped       uint64  `json:"skipped"`      // requests the generator did not send: too many outstanding
	Settled       uint64  `json:"settled"`
	OfferedTxS    float64 `json:"offered_tx_s"`
	AcceptedTxS   float64 `json:"accepted_tx_s"`
	SettledTxS    float64 `json:"settled_tx_s"` // settled / (load window + drain)
	DrainSeconds  float64 `json:"drain_s"`      // after the load stopped, until all accepted were settled
	AckP50Ms      float64 `json:"ack_p50_ms"`
	AckP99Ms      float64 `json:"ack_p99_ms"`
	AckP999Ms     float64 `json:"ack_p999_ms"`
	AckSamples    int     `json:"ack_samples"` // requests (one per batch)
	LedgerP50Ms   float64 `json:"ledger_p50_ms"`
	LedgerP99Ms   float64 `json:"ledger_p99_ms"`
	LedgerSamples int     `json:"ledger_samples"` // transactions in sampled segments

	CPUSeconds       float64          `json:"cpu_s"`                // whole process: tally and the load generator
	CPUSecondsPer1k  float64          `json:"cpu_s_per_1000_tx"`    // per 1,000 settled transactions
	DiskBytes        map[string]int64 `json:"disk_bytes"`           // allocated blocks per store
	DiskBytesPerTx   float64          `json:"disk_bytes_per_tx"`    // all stores / settled
	RawTxS           float64          `json:"raw_jetstream_tx_s"`   // per-record async publish, same payloads
	RawSeconds       float64          `json:"raw_jetstream_s"`      // how long the raw run lasted
	RatioToRaw       float64          `json:"ratio_settled_to_raw"` // settled_tx_s / raw_jetstream_tx_s
	Verified         bool             `json:"verified"`             // tally verify passed on the ledger
	VerifiedEntries  uint64           `json:"verified_entries"`
	DataDir          string           `json:"data_dir,omitempty"` // kept with --keep
	FsyncDescription string           `json:"fsync"`
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	duration := fs.Duration("duration", 60*time.Second, "how long the providers offer load")
	rateFlag := fs.String("rate", "max", "offered transactions per second in total (open loop), or max (each provider keeps --window requests outstanding)")
	providers := fs.Int("providers", 8, "simulated providers")
	batch := fs.Int("batch", 100, "transactions per request (1 = single-transaction requests)")
	window := fs.Int("window", 8, "with --rate max: requests each provider keeps outstanding")
	rawFor := fs.Duration("raw", 0, "how long to run the raw JetStream publish (default: duration/4, 3s-20s)")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of a table")
	data := fs.String("data", "", "data directory (default: a new temporary directory, removed at the end)")
	keep := fs.Bool("keep", false, "keep the data directory")
	logLevel := fs.String("log-level", "error", "trace, debug, info, warn, error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load window to this file (go tool pprof)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rate := 0
	if *rateFlag != "max" {
		r, err := strconv.Atoi(*rateFlag)
		if err != nil || r < 1 || r > 10_000_000 {
			return usageError{"--rate is a number of transactions per second (1-10000000) or max"}
		}
		rate = r
	}
	if *providers < 1 || *providers > 256 || *batch < 1 || *batch > 1000 || *window < 1 || *window > 1024 || *duration <= 0 || *duration > 24*time.Hour {
		return usageError{"--providers 1-256, --batch 1-1000, --window 1-1024 and --duration up to 24h, please"}
	}
	if *rawFor <= 0 {
		*rawFor = min(max(*duration/4, 3*time.Second), 20*time.Second)
	}

	dir := *data
	if dir == "" {
		d, err := os.MkdirTemp("", "tally-bench-")
		if err != nil {
			return err
		}
		dir = d
		if !*keep {
			defer os.RemoveAll(dir)
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cfg, err := demoConfig(abs, *logLevel)
	if err != nil {
		return err
	}
	cfg.NodeID = "bench"
	cfg.Ingest.BatchMax = max(cfg.Ingest.BatchMax, *batch)
	res := benchResult{
		GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(),
		Duration: duration.String(), Rate: *rateFlag, Providers: *providers, Batch: *batch,
		FsyncDescription: fsyncDescription(cfg.Hub.SyncAlways),
	}
	if *keep {
		res.DataDir = abs
	}
	progressTo := stdout
	if *asJSON {
		progressTo = stderr
	}
	fmt.Fprintf(progressTo, "tally bench: %s, rate %s, %d providers, batch %d, data %s\n", duration, *rateFlag, *providers, *batch, abs)

	node, err := nodes.Start(ctx, cfg, newLogger(*logLevel, stderr))
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			node.Close()
		}
	}()
	nc, err := nats.Connect(node.ClientURL(), nats.Name("tally bench providers"))
	if err != nil {
		return fmt.Errorf("providers connect: %w", err)
	}
	defer nc.Close()
	subjects := wire.NewSubjects(cfg.Prefix)

	load := newBenchLoad(nc, subjects, *providers, *batch)
	if err := load.watchLedger(subjects); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	runCtx, stop := context.WithTimeout(ctx, *duration)
	defer stop()
	var wg sync.WaitGroup
	for _, p := range load.providers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rate > 0 {
				p.openLoop(runCtx, float64(rate)/float64(*providers), start)
			} else {
				p.closedLoop(runCtx, *window)
			}
		}()
	}

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastSent, lastAcc, lastSettled uint64
	lastAt := start
	progress := func() {
		st := node.Stats()
		sent, acc := load.sent(), load.accepted()
		settled := st.Settle.Entries
		dt := time.Since(lastAt).Seconds()
		fmt.Fprintf(progressTo, "%5.0fs offered %7.0f/s  accepted %7.0f/s  settled %7.0f/s  unanswered %d  lag %d  buffered %s\n",
			time.Since(start).Seconds(), float64(sent-lastSent)/dt, float64(acc-lastAcc)/dt, float64(settled-lastSettled)/dt,
			load.outstanding(), st.Ingest.Committed-st.Ingest.Forwarded+st.Settle.Lag, byteSize(uint64(max(st.Ingest.BufferedBytes, 0))))
		lastSent, lastAcc, lastSettled, lastAt = sent, acc, settled, time.Now()
	}
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-node.Failed():
			return fmt.Errorf("node stopped: %w", node.Err())
		case <-tick.C:
			progress()
		}
	}
	wg.Wait()
	loadEnd := time.Now()
	loadSecs := loadEnd.Sub(start).Seconds()

	// Answers still in flight, then everything accepted into the ledger.
	deadline := time.Now().Add(30 * time.Second)
	for load.outstanding() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	deadline = time.Now().Add(120 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if node.Stats().Settle.Entries >= load.accepted() {
			break
		}
		select {
		case <-tick.C:
			progress()
		case <-time.After(5 * time.Millisecond):
		}
	}
	settledAt := time.Now()
	st := node.Stats()
	res.Settled = st.Settle.Entries
	res.CPUSeconds = cpuSeconds() - cpu0
	res.DrainSeconds = settledAt.Sub(loadEnd).Seconds()
	load.stopLedger()

	res.Sent, res.Accepted, res.Answered, res.Skipped = load.sent(), load.accepted(), load.answered(), load.skipped.Load()
	res.NotAccepted = res.Answered - res.Accepted
	res.Unanswered = uint64(load.outstanding()) * uint64(*batch)
	res.OfferedTxS = float64(res.Sent) / loadSecs
	res.AcceptedTxS = float64(res.Accepted) / loadSecs
	res.SettledTxS = float64(res.Settled) / settledAt.Sub(start).Seconds()
	if res.Settled > 0 {
		res.CPUSecondsPer1k = res.CPUSeconds / float64(res.Settled) * 1000
	}
	acks := load.ackLatencies()
	res.AckSamples = len(acks)
	res.AckP50Ms, res.AckP99Ms, res.AckP999Ms = pctMs(acks, 0.50), pctMs(acks, 0.99), pctMs(acks, 0.999)
	led := load.ledgerLatencies()
	res.LedgerSamples = len(led)
	res.LedgerP50Ms, res.LedgerP99Ms = pctMs(led, 0.50), pctMs(led, 0.99)
	if res.Settled < res.Accepted {
		fmt.Fprintf(stderr, "tally bench: only %d of %d accepted transactions settled within 120s of the load's end\n", res.Settled, res.Accepted)
	}

	// Raw JetStream on the same hub and disk, same payloads, no tally code.
	res.RawTxS, res.RawSeconds, err = rawJetStream(ctx, nc, load.samplePayloads(4096), *rawFor)
	if err != nil {
		return fmt.Errorf("raw jetstream: %w", err)
	}
	if res.RawTxS > 0 {
		res.RatioToRaw = res.SettledTxS / res.RawTxS
	}
	nc.Close()
	closed = true
	if err := node.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	// Disk after the raw stream is gone (rawJetStream deletes it).
	res.DiskBytes = map[string]int64{
		"hub": diskBytes(cfg.HubDir()), "wal": diskBytes(cfg.WALDir()),
		"index": diskBytes(cfg.IndexDir()), "ledger": diskBytes(cfg.LedgerDir()),
	}
	var total int64
	for _, v := range res.DiskBytes {
		total += v
	}
	if res.Settled > 0 {
		res.DiskBytesPerTx = float64(total) / float64(res.Settled)
	}
	rep, verr := store.Verify(cfg.LedgerDir(), "", nil)
	res.Verified, res.VerifiedEntries = verr == nil, rep.Entries
	if verr != nil {
		fmt.Fprintf(stderr, "tally bench: the ledger does not verify: %v\n", verr)
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		benchTable(stdout, res)
	}
	if verr != nil {
		return fmt.Errorf("ledger verification failed: %w", verr)
	}
	return nil
}

func fsyncDescription(syncAlways bool) string {
	if syncAlways {
		return "Badger SyncWrites on WAL and index; JetStream sync_interval always (every PubAck is on disk); ledger segments fsynced before ack"
	}
	return "Badger SyncWrites on WAL and index; JetStream periodic sync (NOT power-loss safe for the hub); ledger segments fsynced before ack"
}

func benchTable(w io.Writer, r benchResult) {
	row := func(k, v string) { fmt.Fprintf(w, "  %-36s %s\n", k, v) }
	fmt.Fprintf(w, "\n== tally bench (%s, %d CPUs, %s)\n", r.OS, r.CPUs, r.GoVersion)
	row("load", fmt.Sprintf("%s, rate %s, %d providers, batch %d", r.Duration, r.Rate, r.Providers, r.Batch))
	row("fsync", r.FsyncDescription)
	row("offered", fmt.Sprintf("%.0f tx/s (%d sent, %d skipped by the generator)", r.OfferedTxS, r.Sent, r.Skipped*uint64(r.Batch)))
	row("accepted", fmt.Sprintf("%.0f tx/s (%d accepted, %d not accepted, %d unanswered)", r.AcceptedTxS, r.Accepted, r.NotAccepted, r.Unanswered))
	row("settled (sealed, signed segments)", fmt.Sprintf("%.0f tx/s (%d, drain %.1fs after the load)", r.SettledTxS, r.Settled, r.DrainSeconds))
	row("provider ack latency p50/p99/p99.9", fmt.Sprintf("%.2f / %.2f / %.2f ms (%d requests)", r.AckP50Ms, r.AckP99Ms, r.AckP999Ms, r.AckSamples))
	row("publish -> ledger p50/p99", fmt.Sprintf("%.1f / %.1f ms (%d sampled tx)", r.LedgerP50Ms, r.LedgerP99Ms, r.LedgerSamples))
	row("CPU per 1,000 settled tx", fmt.Sprintf("%.3f s (%.1f s total, load generator included)", r.CPUSecondsPer1k, r.CPUSeconds))
	row("disk per settled tx", fmt.Sprintf("%.0f bytes (hub %s, wal %s, index %s, ledger %s)", r.DiskBytesPerTx,
		byteSize(uint64(r.DiskBytes["hub"])), byteSize(uint64(r.DiskBytes["wal"])), byteSize(uint64(r.DiskBytes["index"])), byteSize(uint64(r.DiskBytes["ledger"]))))
	row("raw JetStream async publish", fmt.Sprintf("%.0f tx/s (per record, same payloads, %.1fs)", r.RawTxS, r.RawSeconds))
	row("settled / raw", fmt.Sprintf("%.2f", r.RatioToRaw))
	row("ledger verified", fmt.Sprintf("%v (%d entries)", r.Verified, r.VerifiedEntries))
	if r.DataDir != "" {
		row("data", r.DataDir)
	}
}

func byteSize(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%dB", b)
}

// pctMs is the q-quantile (nearest rank) of latencies in nanoseconds, in ms.
func pctMs(ns []int64, q float64) float64 {
	if len(ns) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(ns)))) - 1
	return float64(ns[min(max(i, 0), len(ns)-1)]) / 1e6
}

// benchLoad is the simulated providers plus the ledger watcher.
type benchLoad struct {
	nc        *nats.Conn
	providers []*benchProvider
	skipped   atomic.Uint64

	ledgerSub  *nats.Subscription
	ledgerMu   sync.Mutex
	ledgerLat  []int64
	lastSample time.Time
}

// ringSize bounds how many requests' send times each provider remembers; the
// generator stops sending (counting skipped) rather than overwrite a send time
// whose answer is still outstanding.
const ringSize = 1 << 20

type benchProvider struct {
	idx      int
	name     string
	subject  string
	inbox    string
	batch    int
	rng      *rand.Rand
	load     *benchLoad
	sub      *nats.Subscription
	sentAt   []atomic.Int64 // by request number % ringSize: unix nanos
	reqs     atomic.Uint64  // requests sent
	answered atomic.Uint64  // requests answered
	accepted atomic.Uint64  // transactions accepted
	txs      atomic.Uint64  // transactions with an answer
	sem      chan struct{}  // closed loop: outstanding requests
	mu       sync.Mutex
	acks     []int64 // request latencies, ns (appended by the subscription goroutine)
	buf      []byte
}

func newBenchLoad(nc *nats.Conn, s wire.Subjects, n, batch int) *benchLoad {
	l := &benchLoad{nc: nc}
	for i := range n {
		name := fmt.Sprintf("bench-%d", i+1)
		l.providers = append(l.providers, &benchProvider{
			idx: i, name: name, subject: s.In(name), inbox: nats.NewInbox(), batch: batch,
			rng: rand.New(rand.NewPCG(uint64(i), 42)), load: l, sentAt: make([]atomic.Int64, ringSize),
		})
	}
	return l
}

func (l *benchLoad) sent() (n uint64) {
	for _, p := range l.providers {
		n += p.reqs.Load() * uint64(p.batch)
	}
	return n
}

func (l *benchLoad) accepted() (n uint64) {
	for _, p := range l.providers {
		n += p.accepted.Load()
	}
	return n
}

func (l *benchLoad) answered() (n uint64) {
	for _, p := range l.providers {
		n += p.txs.Load()
	}
	return n
}

func (l *benchLoad) outstanding() (n int) {
	for _, p := range l.providers {
		n += int(p.reqs.Load() - p.answered.Load())
	}
	return n
}

func (l *benchLoad) ackLatencies() []int64 {
	var all []int64
	for _, p := range l.providers {
		p.mu.Lock()
		all = append(all, p.acks...)
		p.mu.Unlock()
	}
	slices.Sort(all)
	return all
}

func (l *benchLoad) ledgerLatencies() []int64 {
	l.ledgerMu.Lock()
	defer l.ledgerMu.Unlock()
	out := slices.Clone(l.ledgerLat)
	slices.Sort(out)
	return out
}

// watchLedger samples sealed segments as the settle node publishes them to the
// ledger stream (after they are fsynced and signed) and measures, for every
// transaction in a sampled segment, publish → ledger. At most ten segments a
// second are decoded so the measurement costs little CPU.
func (l *benchLoad) watchLedger(s wire.Subjects) error {
	for _, p := range l.providers {
		p.start()
	}
	sub, err := l.nc.Subscribe(s.LedgerAll(), func(m *nats.Msg) {
		now := time.Now()
		if now.Sub(l.lastSample) < 100*time.Millisecond {
			return
		}
		l.lastSample = now
		_, entries, err := store.DecodeSegment(m.Data)
		if err != nil {
			return
		}
		lat := make([]int64, 0, len(entries))
		for _, e := range entries {
			p, req, ok := parseBenchID(e.Tx.ID)
			if !ok || p >= len(l.providers) {
				continue
			}
			if at := l.providers[p].sentAt[req%ringSize].Load(); at > 0 {
				lat = append(lat, now.UnixNano()-at)
			}
		}
		l.ledgerMu.Lock()
		l.ledgerLat = append(l.ledgerLat, lat...)
		l.ledgerMu.Unlock()
	})
	if err != nil {
		return err
	}
	l.ledgerSub = sub
	return sub.SetPendingLimits(1024, 256<<20)
}

func (l *benchLoad) stopLedger() {
	if l.ledgerSub != nil {
		l.ledgerSub.Unsubscribe()
	}
}

// samplePayloads returns up to n single-transaction payloads of the kind the
// providers sent, for the raw JetStream comparison.
func (l *benchLoad) samplePayloads(n int) [][]byte {
	p := &benchProvider{idx: 0, rng: rand.New(rand.NewPCG(7, 7))}
	out := make([][]byte, n)
	for i := range out {
		out[i] = p.appendTx(nil, uint64(i), 0)
	}
	return out
}

// start subscribes the provider's reply inbox.
func (p *benchProvider) start() {
	sub, err := p.load.nc.Subscribe(p.inbox+".*", p.onAnswer)
	if err != nil {
		return
	}
	sub.SetPendingLimits(-1, -1) // open loop: answers must never be dropped client-side
	p.sub = sub
}

var acceptedTag = []byte(`"status":"accepted"`)

func (p *benchProvider) onAnswer(m *nats.Msg) {
	now := time.Now().UnixNano()
	i := strings.LastIndexByte(m.Subject, '.')
	req, err := strconv.ParseUint(m.Subject[i+1:], 10, 64)
	if err != nil {
		return
	}
	at := p.sentAt[req%ringSize].Load()
	n := uint64(bytes.Count(m.Data, acceptedTag))
	p.accepted.Add(n)
	p.txs.Add(uint64(max(bytes.Count(m.Data, []byte(`"status":`)), 1)))
	p.mu.Lock()
	p.acks = append(p.acks, now-at)
	p.mu.Unlock()
	p.answered.Add(1)
	if p.sem != nil {
		select {
		case <-p.sem:
		default:
		}
	}
}

// send publishes request number req. It returns false when too many
// requests are outstanding to remember another send time.
func (p *benchProvider) send(req uint64) bool {
	if req-p.answered.Load() >= ringSize {
		p.load.skipped.Add(1)
		return false
	}
	p.buf = p.buf[:0]
	if p.batch > 1 {
		p.buf = append(p.buf, '[')
	}
	for i := range p.batch {
		if i > 0 {
			p.buf = append(p.buf, ',')
		}
		p.buf = p.appendTx(p.buf, req, i)
	}
	if p.batch > 1 {
		p.buf = append(p.buf, ']')
	}
	p.sentAt[req%ringSize].Store(time.Now().UnixNano())
	if err := p.load.nc.PublishRequest(p.subject, p.inbox+"."+strconv.FormatUint(req, 10), p.buf); err != nil {
		return false
	}
	p.reqs.Add(1)
	return true
}

// openLoop offers perSec transactions a second regardless of answers.
func (p *benchProvider) openLoop(ctx context.Context, perSec float64, start time.Time) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	var req uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := uint64(time.Since(start).Seconds() * perSec / float64(p.batch))
		for req < due && ctx.Err() == nil {
			p.send(req)
			req++ // a skipped request stays skipped: the offered rate is fixed
		}
	}
}

// closedLoop keeps `window` requests outstanding: the pipeline's peak.
func (p *benchProvider) closedLoop(ctx context.Context, window int) {
	p.sem = make(chan struct{}, window)
	var req uint64
	for ctx.Err() == nil {
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
			// An answer was lost (it never is on a healthy loopback): free a slot.
			select {
			case <-p.sem:
			default:
			}
			continue
		}
		if !p.send(req) {
			<-p.sem
			time.Sleep(time.Millisecond)
			continue
		}
		req++
	}
}

var benchGames = []string{"book-of-x", "star-reels", "live-roulette", "blackjack-vip"}

// appendTx writes one canonical transaction; its id encodes the provider and
// request number so the ledger watcher can find the send time.
func (p *benchProvider) appendTx(b []byte, req uint64, i int) []byte {
	typ := "bet"
	if p.rng.IntN(100) < 35 {
		typ = "win"
	}
	b = append(b, `{"id":"b`...)
	b = strconv.AppendInt(b, int64(p.idx), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, req, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","type":"`...)
	b = append(b, typ...)
	b = append(b, `","amount":"`...)
	b = strconv.AppendInt(b, int64(1+p.rng.IntN(500)), 10)
	b = append(b, '.')
	c := p.rng.IntN(100)
	b = append(b, byte('0'+c/10), byte('0'+c%10))
	b = append(b, `","currency":"EUR","occurred_at":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","game":"`...)
	b = append(b, benchGames[p.rng.IntN(len(benchGames))]...)
	b = append(b, `","jurisdiction":"MT","brand":"main"}`...)
	return b
}

// parseBenchID reads "b<provider>-<request>-<i>".
func parseBenchID(id string) (provider int, req uint64, ok bool) {
	if len(id) < 2 || id[0] != 'b' {
		return 0, 0, false
	}
	a, rest, ok1 := strings.Cut(id[1:], "-")
	r, _, ok2 := strings.Cut(rest, "-")
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	pi, err1 := strconv.Atoi(a)
	ri, err2 := strconv.ParseUint(r, 10, 64)
	if err1 != nil || err2 != nil || pi < 0 {
		return 0, 0, false
	}
	return pi, ri, true
}

// rawJetStream publishes payloads round-robin, one message per record, with
// PublishAsync to a fresh file stream on the same hub for d, and returns the
// acknowledged rate. The stream is deleted afterwards.
func rawJetStream(ctx context.Context, nc *nats.Conn, payloads [][]byte, d time.Duration) (float64, float64, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, 0, err
	}
	const name, subj = "BENCH_RAW", "bench.raw"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Storage: jetstream.FileStorage}); err != nil {
		return 0, 0, err
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), name)
	var acked, failed atomic.Uint64
	start := time.Now()
	end := start.Add(d)
	var futures []jetstream.PubAckFuture
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		f, err := js.PublishAsync(subj, payloads[i%len(payloads)])
		if err != nil {
			failed.Add(1)
			continue
		}
		futures = append(futures, f)
		if len(futures) >= 8192 {
			for _, f := range futures[:4096] {
				countFuture(f, &acked, &failed)
			}
			futures = append(futures[:0], futures[4096:]...)
		}
	}
	for _, f := range futures {
		countFuture(f, &acked, &failed)
	}
	secs := time.Since(start).Seconds()
	if failed.Load() > 0 && acked.Load() == 0 {
		return 0, secs, errors.New("no publish was acknowledged")
	}
	return float64(acked.Load()) / secs, secs, nil
}

func countFuture(f jetstream.PubAckFuture, acked, failed *atomic.Uint64) {
	select {
	case <-f.Ok():
		acked.Add(1)
	case <-f.Err():
		failed.Add(1)
	case <-time.After(30 * time.Second):
		failed.Add(1)
	}
}
