package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	httppprof "net/http/pprof"
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

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

func init() {
	register(command{"bench", "[--duration 60s] [--rate N|max] [--providers 8] [--batch 100] [--soak 10m] [--json]",
		"measure publish-to-ledger throughput and latency next to raw JetStream", 60, cmdBench})
}

// benchPhase is what one load phase measured.
type benchPhase struct {
	Name    string  `json:"name"`    // peak, half (open loop at half the peak), single (one transaction per request)
	Rate    string  `json:"rate"`    // offered tx/s, or "max" (closed loop)
	Batch   int     `json:"batch"`   // transactions per request
	Window  int     `json:"window"`  // closed loop: requests each provider keeps outstanding
	Seconds float64 `json:"seconds"` // load window

	Sent          uint64  `json:"sent"`     // transactions published by the providers
	Answered      uint64  `json:"answered"` // transactions with an answer
	Accepted      uint64  `json:"accepted"`
	NotAccepted   uint64  `json:"not_accepted"` // rejected (e.g. buffer_full) or duplicate
	Unanswered    uint64  `json:"unanswered"`   // transactions without an answer by the end
	Skipped       uint64  `json:"skipped"`      // transactions the generator did not send: too many outstanding
	Settled       uint64  `json:"settled"`
	OfferedTxS    float64 `json:"offered_tx_s"`
	AcceptedTxS   float64 `json:"accepted_tx_s"`
	SettledTxS    float64 `json:"settled_tx_s"` // settled / (load window + drain)
	DrainSeconds  float64 `json:"drain_s"`      // after the load stopped, until all accepted were settled
	AckP50Ms      float64 `json:"ack_p50_ms"`
	AckP99Ms      float64 `json:"ack_p99_ms"`
	AckP999Ms     float64 `json:"ack_p999_ms"`
	AckSamples    int     `json:"ack_samples"` // requests
	LedgerP50Ms   float64 `json:"ledger_p50_ms"`
	LedgerP99Ms   float64 `json:"ledger_p99_ms"`
	LedgerSamples int     `json:"ledger_samples"` // transactions in sampled segments

	CPUSeconds      float64 `json:"cpu_s"`             // whole process, load window + drain: tally and the load generator
	CPUSecondsPer1k float64 `json:"cpu_s_per_1000_tx"` // per 1,000 settled transactions
}

// benchSoakMinute is one minute of the --soak phase.
type benchSoakMinute struct {
	Minute      int     `json:"minute"`
	Rate        string  `json:"rate"`
	AcceptedTxS float64 `json:"accepted_tx_s"`
	NotAccepted uint64  `json:"not_accepted"`
	Settled     uint64  `json:"settled"`
	AckP50Ms    float64 `json:"ack_p50_ms"`
	AckP99Ms    float64 `json:"ack_p99_ms"`
	LedgerP50Ms float64 `json:"ledger_p50_ms"`
	LedgerP99Ms float64 `json:"ledger_p99_ms"`
	WALBytes    int64   `json:"wal_bytes"`   // allocated on disk at the end of the minute
	IndexBytes  int64   `json:"index_bytes"` // settle index, same
	HubBytes    int64   `json:"hub_bytes"`   // the hub's JetStream store, same
	MaxRSSBytes int64   `json:"max_rss_bytes"`
	// Mechanism measures, less sensitive to a busy machine than latency:
	// the whole process's CPU and bytes written to disk (Linux
	// /proc/self/io write_bytes: stores, compactions, logs) per settled
	// transaction this minute, and the resident set at its end split into
	// anonymous memory and mmapped file pages (RssAnon, RssFile).
	CPUSecondsPer1k   float64 `json:"cpu_s_per_1000_tx"`
	WrittenBytesPerTx float64 `json:"written_bytes_per_tx"`
	RSSAnonBytes      int64   `json:"rss_anon_bytes"`
	RSSFileBytes      int64   `json:"rss_file_bytes"`
}

// benchTarget is one DESIGN.md §11 target next to what this run measured.
type benchTarget struct {
	Target   string  `json:"target"`
	Measured string  `json:"measured"`
	Value    float64 `json:"value"`
	Met      bool    `json:"met"`
}

// benchResult is what `tally bench` measured; --json prints it as is. The
// top-level load figures are the peak phase's (the main run).
type benchResult struct {
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	CPUs      int    `json:"cpus"`
	StartedAt string `json:"started_at"`

	Hubs     int `json:"hubs"`     // 1 embedded hub, or 3 with --cluster
	Replicas int `json:"replicas"` // of TALLY_TX and TALLY_LEDGER

	Duration  string `json:"duration"`
	Rate      string `json:"rate"` // offered tx/s, or "max"
	Providers int    `json:"providers"`
	Batch     int    `json:"batch"`

	benchPhase
	Half   *benchPhase `json:"half,omitempty"`   // open loop at half the peak's accepted rate
	Single *benchPhase `json:"single,omitempty"` // one transaction per request

	DiskBytes      map[string]int64 `json:"disk_bytes"`           // allocated blocks per store
	DiskBytesPerTx float64          `json:"disk_bytes_per_tx"`    // all stores / settled (all phases)
	HubStreamBytes map[string]int64 `json:"hub_stream_bytes"`     // part of disk_bytes.hub: allocated blocks per stream (TALLY_TX, TALLY_LEDGER, TALLY_OPLOG)
	SettledTotal   uint64           `json:"settled_total"`        // all phases
	RawTxS         float64          `json:"raw_jetstream_tx_s"`   // per-record async publish, same payloads, same hub
	RawSeconds     float64          `json:"raw_jetstream_s"`      // how long the raw run lasted
	RatioToRaw     float64          `json:"ratio_settled_to_raw"` // peak settled_tx_s / raw_jetstream_tx_s
	// Raw JetStream as a user who picks it plainly would run it: a separate
	// embedded server, same disk, sync_interval unset (JetStream's default:
	// periodic fsync, not every PubAck on disk), same payloads, per-record
	// async publish.
	RawDefaultTxS     float64           `json:"raw_jetstream_default_tx_s"`
	RawDefaultSeconds float64           `json:"raw_jetstream_default_s"`
	RatioToRawDefault float64           `json:"ratio_settled_to_raw_default"` // peak settled_tx_s / raw_jetstream_default_tx_s
	MaxRSSBytes       int64             `json:"max_rss_bytes"`                // getrusage ru_maxrss of the whole process (tally and load generator) at the end
	Soak              []benchSoakMinute `json:"soak,omitempty"`               // --soak: one row per minute
	Verified          bool              `json:"verified"`                     // tally verify passed on the ledger
	VerifiedEntries   uint64            `json:"verified_entries"`
	Targets           []benchTarget     `json:"targets"`
	DataDir           string            `json:"data_dir,omitempty"` // kept with --keep
	FsyncDescription  string            `json:"fsync"`
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stdout, stderr)
	duration := fs.Duration("duration", 60*time.Second, "how long the providers offer load in the peak phase")
	rateFlag := fs.String("rate", "max", "offered transactions per second in total (open loop), or max (each provider keeps --window requests outstanding)")
	providers := fs.Int("providers", 8, "simulated providers")
	batch := fs.Int("batch", 100, "transactions per request (1 = single-transaction requests)")
	window := fs.Int("window", 8, "with --rate max: requests each provider keeps outstanding")
	halfFor := fs.Duration("half", -1, "open-loop phase at half the peak's accepted rate, for ack latency (default: duration/4, 3s-20s; 0 skips)")
	singleFor := fs.Duration("single", -1, "phase with one transaction per request, closed loop (default: duration/4, 3s-20s; 0 skips)")
	singleWindow := fs.Int("single-window", 64, "single phase: requests each provider keeps outstanding")
	rawFor := fs.Duration("raw", 0, "how long to run each raw JetStream publish (default: duration/4, 3s-20s)")
	soakFor := fs.Duration("soak", 0, "after the other phases: open loop at half of the peak for this long, reporting ack and publish→ledger p50/p99 and WAL/index sizes per minute (0 skips)")
	soakRate := fs.Int("soak-rate", 0, "offered tx/s in the --soak phase (default 0: half of the peak's accepted rate); fixed, so runs on a busy machine stay comparable")
	cluster := fs.Bool("cluster", false, "run on a 3-hub loopback NATS cluster (all in this process) with R3 streams instead of one embedded hub")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of a table")
	data := fs.String("data", "", "data directory (default: a new temporary directory, removed at the end)")
	keep := fs.Bool("keep", false, "keep the data directory")
	logLevel := fs.String("log-level", "error", "trace, debug, info, warn, error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the peak phase (load window and drain) to this file (go tool pprof)")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060) for the whole run, to profile a soak minute")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pprofAddr != "" {
		stop, err := servePprof(*pprofAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	rate := 0
	if *rateFlag != "max" {
		r, err := strconv.Atoi(*rateFlag)
		if err != nil || r < 1 || r > 10_000_000 {
			return usageError{"--rate is a number of transactions per second (1-10000000) or max"}
		}
		rate = r
	}
	if *providers < 1 || *providers > 256 || *batch < 1 || *batch > 1000 || *window < 1 || *window > 1024 || *singleWindow < 1 || *singleWindow > 1024 || *duration <= 0 || *duration > 24*time.Hour || *soakFor < 0 || *soakFor > 24*time.Hour || *soakRate < 0 || *soakRate > 10_000_000 {
		return usageError{"--providers 1-256, --batch 1-1000, --window and --single-window 1-1024 and --duration up to 24h, please"}
	}
	quarter := min(max(*duration/4, 3*time.Second), 20*time.Second)
	for _, d := range []*time.Duration{halfFor, singleFor} {
		if *d < 0 {
			*d = quarter
		}
	}
	if *rawFor <= 0 {
		*rawFor = quarter
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
	var peers []config.Config // --cluster: the other two hubs
	if *cluster {
		if cfg, peers, err = benchCluster(cfg, abs, *logLevel); err != nil {
			return err
		}
	}
	res := benchResult{
		GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(),
		StartedAt: time.Now().UTC().Format(time.RFC3339),
		Duration:  duration.String(), Rate: *rateFlag, Providers: *providers, Batch: *batch,
		FsyncDescription: fsyncDescription(cfg.Hub.SyncAlways),
		Hubs:             1 + len(peers), Replicas: cfg.Streams.Replicas,
	}
	if *keep {
		res.DataDir = abs
	}
	progressTo := stdout
	if *asJSON {
		progressTo = stderr
	}
	fmt.Fprintf(progressTo, "tally bench: %s, rate %s, %d providers, batch %d, data %s\n", duration, *rateFlag, *providers, *batch, abs)

	node, stopPeers, err := startBenchNodes(ctx, cfg, peers, newLogger(*logLevel, stderr))
	if err != nil {
		return err
	}
	defer stopPeers()
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
	run := benchRunner{node: node, load: load, out: progressTo, stderr: stderr}

	// Peak: the configured load, profiled on request.
	var stopProfile func()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		stopProfile = sync.OnceFunc(pprof.StopCPUProfile)
		defer stopProfile()
	}
	peak, err := run.phase(ctx, "peak", *duration, rate, *batch, *window)
	if err != nil {
		return err
	}
	if stopProfile != nil {
		stopProfile()
	}
	res.benchPhase = peak
	// Half: open loop at half of what the peak accepted, where ack latency is judged.
	if *halfFor > 0 && peak.AcceptedTxS >= 2 {
		half, err := run.phase(ctx, "half", *halfFor, int(peak.AcceptedTxS/2), *batch, *window)
		if err != nil {
			return err
		}
		res.Half = &half
	}
	// Single: one transaction per request.
	if *singleFor > 0 {
		single, err := run.phase(ctx, "single", *singleFor, 0, 1, *singleWindow)
		if err != nil {
			return err
		}
		res.Single = &single
	}
	// Soak: half of the peak, minute by minute, so a stall or a drift as the
	// stores grow shows. Each minute is its own phase (it ends by waiting for
	// its answers and settlement, a pause of well under a second at this load).
	if *soakFor > 0 && (peak.AcceptedTxS >= 2 || *soakRate > 0) {
		rate := int(peak.AcceptedTxS / 2)
		if *soakRate > 0 {
			rate = *soakRate
		}
		for m, left := 1, *soakFor; left > 0; m++ {
			d := min(left, time.Minute)
			left -= d
			proc0 := readProc()
			ph, err := run.phase(ctx, fmt.Sprintf("soak%d", m), d, rate, *batch, *window)
			if err != nil {
				return err
			}
			proc := readProc()
			row := benchSoakMinute{Minute: m, Rate: ph.Rate, AcceptedTxS: ph.AcceptedTxS, NotAccepted: ph.NotAccepted, Settled: ph.Settled,
				AckP50Ms: ph.AckP50Ms, AckP99Ms: ph.AckP99Ms, LedgerP50Ms: ph.LedgerP50Ms, LedgerP99Ms: ph.LedgerP99Ms,
				WALBytes: diskBytes(cfg.WALDir()), IndexBytes: diskBytes(cfg.IndexDir()), HubBytes: diskBytes(cfg.HubDir()), MaxRSSBytes: maxRSSBytes(),
				CPUSecondsPer1k: ph.CPUSecondsPer1k, RSSAnonBytes: proc.RSSAnon, RSSFileBytes: proc.RSSFile}
			if ph.Settled > 0 {
				row.WrittenBytesPerTx = float64(proc.WriteBytes-proc0.WriteBytes) / float64(ph.Settled)
			}
			res.Soak = append(res.Soak, row)
			fmt.Fprintf(progressTo, "soak minute %d: accepted %.0f/s (%d not accepted)  ack p50 %.2f p99 %.2f ms  ledger p50 %.1f p99 %.1f ms  wal %s  index %s  hub %s  max rss %s (anon %s, file %s)  cpu %.3f s/1k tx  written %.0f B/tx\n",
				m, row.AcceptedTxS, row.NotAccepted, row.AckP50Ms, row.AckP99Ms, row.LedgerP50Ms, row.LedgerP99Ms,
				byteSize(uint64(row.WALBytes)), byteSize(uint64(row.IndexBytes)), byteSize(uint64(row.HubBytes)), byteSize(uint64(row.MaxRSSBytes)),
				byteSize(uint64(row.RSSAnonBytes)), byteSize(uint64(row.RSSFileBytes)), row.CPUSecondsPer1k, row.WrittenBytesPerTx)
		}
	}
	res.SettledTotal = node.Stats().Settle.Entries
	load.stopLedger()

	// Raw JetStream on the same hub and disk (same sync setting), same
	// payloads, one message per record, no tally code.
	fmt.Fprintf(progressTo, "raw JetStream: per-record async publish for %s\n", *rawFor)
	res.RawTxS, res.RawSeconds, err = rawJetStream(ctx, nc, load.samplePayloads(4096), *rawFor)
	if err != nil {
		return fmt.Errorf("raw jetstream: %w", err)
	}
	if res.RawTxS > 0 {
		res.RatioToRaw = res.SettledTxS / res.RawTxS
	}
	fmt.Fprintf(progressTo, "raw JetStream, default fsync (sync_interval unset): per-record async publish for %s\n", *rawFor)
	res.RawDefaultTxS, res.RawDefaultSeconds, err = rawJetStreamDefault(ctx, filepath.Join(abs, "raw-default"), load.samplePayloads(4096), *rawFor)
	if err != nil {
		return fmt.Errorf("raw jetstream (default fsync): %w", err)
	}
	if res.RawDefaultTxS > 0 {
		res.RatioToRawDefault = res.SettledTxS / res.RawDefaultTxS
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
	res.HubStreamBytes = hubStreamBytes(cfg.HubDir(), subjects)
	if res.SettledTotal > 0 {
		res.DiskBytesPerTx = float64(total) / float64(res.SettledTotal)
	}
	rep, verr := store.Verify(cfg.LedgerDir(), "", nil)
	res.Verified, res.VerifiedEntries = verr == nil, rep.Entries
	if verr != nil {
		fmt.Fprintf(stderr, "tally bench: the ledger does not verify: %v\n", verr)
	}
	res.MaxRSSBytes = maxRSSBytes()
	res.Targets = benchTargets(res)

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

// benchRunner runs load phases one after another against one node.
type benchRunner struct {
	node   *nodes.Node
	load   *benchLoad
	out    io.Writer
	stderr io.Writer
}

// phase offers load for d (open loop at rate tx/s, or closed loop with
// window requests per provider when rate is 0), waits for every answer and
// for everything accepted to be settled, and reports what it measured.
func (r benchRunner) phase(ctx context.Context, name string, d time.Duration, rate, batch, window int) (benchPhase, error) {
	ph := benchPhase{Name: name, Rate: "max", Batch: batch}
	if rate > 0 {
		ph.Rate = strconv.Itoa(rate)
	} else {
		ph.Window = window
	}
	load, node := r.load, r.node
	fmt.Fprintf(r.out, "phase %s: %s, rate %s, batch %d\n", name, d, ph.Rate, batch)
	load.reset(batch)
	settled0 := node.Stats().Settle.Entries
	sent0, acc0, ans0, skip0 := load.sent(), load.accepted(), load.answered(), load.skipped.Load()
	cpu0 := cpuSeconds()
	start := time.Now()
	runCtx, stop := context.WithTimeout(ctx, d)
	defer stop()
	var wg sync.WaitGroup
	for _, p := range load.providers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rate > 0 {
				p.openLoop(runCtx, float64(rate)/float64(len(load.providers)), start)
			} else {
				p.closedLoop(runCtx, window)
			}
		}()
	}

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastSent, lastAcc, lastSettled := sent0, acc0, settled0
	lastAt := start
	progress := func() {
		st := node.Stats()
		sent, acc := load.sent(), load.accepted()
		settled := st.Settle.Entries
		dt := time.Since(lastAt).Seconds()
		fmt.Fprintf(r.out, "%-6s %5.0fs offered %7.0f/s  accepted %7.0f/s  settled %7.0f/s  unanswered %d  lag %d  buffered %s\n",
			name, time.Since(start).Seconds(), float64(sent-lastSent)/dt, float64(acc-lastAcc)/dt, float64(settled-lastSettled)/dt,
			load.outstanding(), st.Ingest.Committed-st.Ingest.Forwarded+st.Settle.Lag, byteSize(uint64(max(st.Ingest.BufferedBytes, 0))))
		lastSent, lastAcc, lastSettled, lastAt = sent, acc, settled, time.Now()
	}
	var failed error
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-node.Failed():
			failed = fmt.Errorf("node stopped: %w", node.Err())
			stop()
			break loop
		case <-tick.C:
			progress()
		}
	}
	wg.Wait()
	if failed != nil {
		return ph, failed
	}
	loadEnd := time.Now()
	ph.Seconds = loadEnd.Sub(start).Seconds()

	// Answers still in flight, then everything accepted into the ledger.
	deadline := time.Now().Add(30 * time.Second)
	for load.outstanding() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	accepted := load.accepted() - acc0
	deadline = time.Now().Add(120 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if node.Stats().Settle.Entries-settled0 >= accepted {
			break
		}
		select {
		case <-tick.C:
			progress()
		case <-time.After(5 * time.Millisecond):
		}
	}
	settledAt := time.Now()
	ph.Settled = node.Stats().Settle.Entries - settled0
	ph.CPUSeconds = cpuSeconds() - cpu0
	ph.DrainSeconds = settledAt.Sub(loadEnd).Seconds()

	ph.Sent, ph.Accepted, ph.Answered = load.sent()-sent0, accepted, load.answered()-ans0
	ph.Skipped = (load.skipped.Load() - skip0) * uint64(batch)
	ph.NotAccepted = ph.Answered - ph.Accepted
	ph.Unanswered = uint64(load.outstanding()) * uint64(batch)
	ph.OfferedTxS = float64(ph.Sent) / ph.Seconds
	ph.AcceptedTxS = float64(ph.Accepted) / ph.Seconds
	ph.SettledTxS = float64(ph.Settled) / settledAt.Sub(start).Seconds()
	if ph.Settled > 0 {
		ph.CPUSecondsPer1k = ph.CPUSeconds / float64(ph.Settled) * 1000
	}
	acks := load.ackLatencies()
	ph.AckSamples = len(acks)
	ph.AckP50Ms, ph.AckP99Ms, ph.AckP999Ms = pctMs(acks, 0.50), pctMs(acks, 0.99), pctMs(acks, 0.999)
	led := load.ledgerLatencies()
	ph.LedgerSamples = len(led)
	ph.LedgerP50Ms, ph.LedgerP99Ms = pctMs(led, 0.50), pctMs(led, 0.99)
	if ph.Settled < ph.Accepted {
		fmt.Fprintf(r.stderr, "tally bench: phase %s: only %d of %d accepted transactions settled within 120s of the load's end\n", name, ph.Settled, ph.Accepted)
	}
	return ph, nil
}

func fsyncDescription(syncAlways bool) string {
	if syncAlways {
		return "Badger SyncWrites on WAL and index; JetStream sync_interval always (every PubAck is on disk), records batched per message; ledger segments and checkpoints fsynced before ack"
	}
	return "Badger SyncWrites on WAL and index; JetStream periodic sync (NOT power-loss safe for the hub); ledger segments fsynced before ack"
}

// benchTargets holds the run against DESIGN.md §11.
func benchTargets(r benchResult) []benchTarget {
	var out []benchTarget
	add := func(target, measured string, v float64, met bool) {
		out = append(out, benchTarget{Target: target, Measured: measured, Value: v, Met: met})
	}
	add("≥ 100,000 tx/s settled end to end", fmt.Sprintf("%.0f tx/s (peak, batch %d)", r.SettledTxS, r.Batch), r.SettledTxS, r.SettledTxS >= 100_000)
	if r.Half != nil {
		add("ack p99 ≤ 10 ms at half of peak", fmt.Sprintf("%.2f ms at %s tx/s", r.Half.AckP99Ms, r.Half.Rate), r.Half.AckP99Ms, r.Half.AckP99Ms <= 10)
		add("publish → ledger p99 ≤ 250 ms", fmt.Sprintf("%.1f ms at half of peak (%.1f ms at peak)", r.Half.LedgerP99Ms, r.LedgerP99Ms), r.Half.LedgerP99Ms, r.Half.LedgerP99Ms <= 250)
	} else {
		add("publish → ledger p99 ≤ 250 ms", fmt.Sprintf("%.1f ms at peak", r.LedgerP99Ms), r.LedgerP99Ms, r.LedgerP99Ms <= 250)
	}
	add("settled ≥ 0.5 × raw per-record JetStream", fmt.Sprintf("%.2f × (%.0f vs %.0f tx/s)", r.RatioToRaw, r.SettledTxS, r.RawTxS), r.RatioToRaw, r.RatioToRaw >= 0.5)
	add("settled ≥ 0.5 × raw JetStream, default fsync", fmt.Sprintf("%.2f × (%.0f vs %.0f tx/s)", r.RatioToRawDefault, r.SettledTxS, r.RawDefaultTxS), r.RatioToRawDefault, r.RatioToRawDefault >= 0.5)
	add("≤ 1 KiB disk per settled tx", fmt.Sprintf("%.0f bytes", r.DiskBytesPerTx), r.DiskBytesPerTx, r.DiskBytesPerTx > 0 && r.DiskBytesPerTx <= 1024)
	add("≤ 512 bytes disk per settled tx (issue 14)", fmt.Sprintf("%.0f bytes", r.DiskBytesPerTx), r.DiskBytesPerTx, r.DiskBytesPerTx > 0 && r.DiskBytesPerTx <= 512)
	return out
}

func benchTable(w io.Writer, r benchResult) {
	row := func(k, v string) { fmt.Fprintf(w, "  %-36s %s\n", k, v) }
	fmt.Fprintf(w, "\n== tally bench (%s, %d CPUs, %s, started %s)\n", r.OS, r.CPUs, r.GoVersion, r.StartedAt)
	row("fsync", r.FsyncDescription)
	row("hubs", fmt.Sprintf("%d (streams R%d)", r.Hubs, r.Replicas))
	phase := func(p benchPhase) {
		fmt.Fprintf(w, "-- phase %s: %.0fs, rate %s, %d providers, batch %d\n", p.Name, p.Seconds, p.Rate, r.Providers, p.Batch)
		row("offered", fmt.Sprintf("%.0f tx/s (%d sent, %d skipped by the generator)", p.OfferedTxS, p.Sent, p.Skipped))
		row("accepted", fmt.Sprintf("%.0f tx/s (%d accepted, %d not accepted, %d unanswered)", p.AcceptedTxS, p.Accepted, p.NotAccepted, p.Unanswered))
		row("settled (sealed, signed segments)", fmt.Sprintf("%.0f tx/s (%d, drain %.1fs after the load)", p.SettledTxS, p.Settled, p.DrainSeconds))
		row("provider ack latency p50/p99/p99.9", fmt.Sprintf("%.2f / %.2f / %.2f ms (%d requests)", p.AckP50Ms, p.AckP99Ms, p.AckP999Ms, p.AckSamples))
		row("publish -> in sealed segment p50/p99", fmt.Sprintf("%.1f / %.1f ms (%d sampled tx)", p.LedgerP50Ms, p.LedgerP99Ms, p.LedgerSamples))
		row("CPU per 1,000 settled tx", fmt.Sprintf("%.3f s (%.1f s total, load generator included)", p.CPUSecondsPer1k, p.CPUSeconds))
	}
	phase(r.benchPhase)
	if r.Half != nil {
		phase(*r.Half)
	}
	if r.Single != nil {
		phase(*r.Single)
	}
	fmt.Fprintf(w, "-- whole run\n")
	row("disk per settled tx (all stores)", fmt.Sprintf("%.0f bytes over %d tx (hub %s, wal %s, index %s, ledger %s)", r.DiskBytesPerTx, r.SettledTotal,
		byteSize(uint64(r.DiskBytes["hub"])), byteSize(uint64(r.DiskBytes["wal"])), byteSize(uint64(r.DiskBytes["index"])), byteSize(uint64(r.DiskBytes["ledger"]))))
	if len(r.HubStreamBytes) > 0 {
		names := slices.Sorted(maps.Keys(r.HubStreamBytes))
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s %s (%.0f B/tx)", n, byteSize(uint64(r.HubStreamBytes[n])), float64(r.HubStreamBytes[n])/float64(max(r.SettledTotal, 1)))
		}
		row("hub by stream", strings.Join(parts, ", "))
	}
	row("raw JetStream async publish", fmt.Sprintf("%.0f tx/s (one message per record, same payloads and hub, %.1fs)", r.RawTxS, r.RawSeconds))
	row("settled (peak) / raw", fmt.Sprintf("%.2f", r.RatioToRaw))
	row("raw JetStream, default fsync", fmt.Sprintf("%.0f tx/s (sync_interval unset, own embedded server, same disk, %.1fs)", r.RawDefaultTxS, r.RawDefaultSeconds))
	row("settled (peak) / raw default", fmt.Sprintf("%.2f", r.RatioToRawDefault))
	row("max RSS (whole process)", byteSize(uint64(r.MaxRSSBytes)))
	for _, m := range r.Soak {
		row(fmt.Sprintf("soak minute %d", m.Minute), fmt.Sprintf("%.0f tx/s, ack p50/p99 %.2f/%.2f ms, ledger p50/p99 %.1f/%.1f ms, wal %s, index %s, rss anon %s file %s, %.3f cpu-s/1k tx, %.0f written B/tx",
			m.AcceptedTxS, m.AckP50Ms, m.AckP99Ms, m.LedgerP50Ms, m.LedgerP99Ms, byteSize(uint64(m.WALBytes)), byteSize(uint64(m.IndexBytes)),
			byteSize(uint64(m.RSSAnonBytes)), byteSize(uint64(m.RSSFileBytes)), m.CPUSecondsPer1k, m.WrittenBytesPerTx))
	}
	row("ledger verified", fmt.Sprintf("%v (%d entries)", r.Verified, r.VerifiedEntries))
	if r.DataDir != "" {
		row("data", r.DataDir)
	}
	fmt.Fprintf(w, "-- DESIGN.md §11 targets\n")
	for _, t := range r.Targets {
		mark := "MISSED"
		if t.Met {
			mark = "met"
		}
		row(t.Target, fmt.Sprintf("%-6s %s", mark, t.Measured))
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
	sentAt   []atomic.Int64                // by request number % ringSize: unix nanos
	reqs     atomic.Uint64                 // requests sent
	sentTx   atomic.Uint64                 // transactions sent
	answered atomic.Uint64                 // requests answered
	accepted atomic.Uint64                 // transactions accepted
	txs      atomic.Uint64                 // transactions with an answer
	sem      atomic.Pointer[chan struct{}] // closed loop: outstanding requests (nil in open loop); set per phase
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
		n += p.sentTx.Load()
	}
	return n
}

// reset starts a phase: requests of batch transactions, latency samples
// cleared. Request numbers and send times carry on, so ids stay unique.
// Called while no provider goroutine runs and nothing is outstanding.
func (l *benchLoad) reset(batch int) {
	for _, p := range l.providers {
		p.batch = batch
		p.mu.Lock()
		p.acks = p.acks[:0]
		p.mu.Unlock()
	}
	l.ledgerMu.Lock()
	l.ledgerLat = l.ledgerLat[:0]
	l.ledgerMu.Unlock()
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
		_, entries, err := store.DecodeSegment(settle.SegmentOf(m.Header, m.Data)) // the segment, without the state record after it
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
	if sp := p.sem.Load(); sp != nil {
		select {
		case <-*sp:
		default:
		}
	}
}

// send publishes the provider's next request. It returns false when too
// many requests are outstanding to remember another send time. Request
// numbers run on across phases, so transaction ids never repeat.
func (p *benchProvider) send() bool {
	req := p.reqs.Load()
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
	p.sentTx.Add(uint64(p.batch))
	p.reqs.Add(1)
	return true
}

// openLoop offers perSec transactions a second regardless of answers.
func (p *benchProvider) openLoop(ctx context.Context, perSec float64, start time.Time) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	var n uint64 // requests due so far, sent or skipped
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := uint64(time.Since(start).Seconds() * perSec / float64(p.batch))
		for n < due && ctx.Err() == nil {
			p.send()
			n++ // a skipped request stays skipped: the offered rate is fixed
		}
	}
}

// closedLoop keeps `window` requests outstanding: the pipeline's peak.
func (p *benchProvider) closedLoop(ctx context.Context, window int) {
	sem := make(chan struct{}, window)
	p.sem.Store(&sem)
	defer p.sem.Store(nil)
	for ctx.Err() == nil {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
			// An answer was lost (it never is on a healthy loopback): free a slot.
			select {
			case <-sem:
			default:
			}
			continue
		}
		if !p.send() {
			<-sem
			time.Sleep(time.Millisecond)
			continue
		}
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

// rawJetStreamDefault runs rawJetStream against its own embedded nats-server
// with JetStream defaults (sync_interval unset: periodic fsync) storing in
// dir, on the same disk as the bench; the server and dir are removed after.
func rawJetStreamDefault(ctx context.Context, dir string, payloads [][]byte, d time.Duration) (float64, float64, error) {
	defer os.RemoveAll(dir)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		return 0, 0, err
	}
	go s.Start()
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if !s.ReadyForConnections(10 * time.Second) {
		return 0, 0, errors.New("embedded nats-server not ready")
	}
	nc, err := nats.Connect(s.ClientURL(), nats.Name("tally bench raw default"))
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	return rawJetStream(ctx, nc, payloads, d)
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

// benchCluster turns cfg (hub-1, with ingest and settle) into one of three
// hubs of a loopback NATS cluster with R3 streams, and returns the configs of
// the other two (hub role only, data under dir/hub-2 and dir/hub-3).
func benchCluster(cfg config.Config, dir, logLevel string) (config.Config, []config.Config, error) {
	var ports []int
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return cfg, nil, err
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	cl := func(i int) *config.Cluster {
		return &config.Cluster{Name: "tally-bench", Host: "127.0.0.1", Port: ports[i], Routes: routes}
	}
	cfg.Hub.Cluster = cl(0)
	cfg.Streams.Replicas = 3
	var peers []config.Config
	for i := 1; i < 3; i++ {
		p := config.Default()
		p.NodeID = fmt.Sprintf("bench-hub-%d", i+1)
		p.DataDir = filepath.Join(dir, fmt.Sprintf("hub-%d", i+1))
		p.LogLevel = logLevel
		p.Roles = []string{config.RoleHub}
		p.Hub.Port = 0
		p.Hub.Cluster = cl(i)
		p.Streams.Replicas = 3
		if err := p.Validate(); err != nil {
			return cfg, nil, err
		}
		peers = append(peers, p)
	}
	return cfg, peers, cfg.Validate()
}

// startBenchNodes starts the bench node and its cluster peers together: a
// hub of a cluster waits for the others before its streams can be placed.
func startBenchNodes(ctx context.Context, cfg config.Config, peers []config.Config, log hclog.Logger) (*nodes.Node, func(), error) {
	type started struct {
		n   *nodes.Node
		err error
	}
	results := make([]chan started, len(peers))
	for i, p := range peers {
		results[i] = make(chan started, 1)
		go func() {
			n, err := nodes.Start(ctx, p, log.Named(p.NodeID))
			results[i] <- started{n, err}
		}()
	}
	node, err := nodes.Start(ctx, cfg, log)
	var running []*nodes.Node
	var errs []error
	for _, r := range results {
		s := <-r
		if s.err != nil {
			errs = append(errs, s.err)
			continue
		}
		running = append(running, s.n)
	}
	stop := func() {
		for _, n := range running {
			n.Close()
		}
	}
	if err != nil || len(errs) > 0 {
		if node != nil {
			node.Close()
		}
		stop()
		return nil, func() {}, errors.Join(append(errs, err)...)
	}
	return node, stop, nil
}

// servePprof serves the runtime profiles (CPU, heap, goroutines) on addr, a
// loopback address only: the bench's --pprof, for profiling a soak minute.
func servePprof(addr string) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || (host != "127.0.0.1" && host != "::1" && host != "localhost") {
		return nil, usageError{"--pprof takes a loopback address, e.g. 127.0.0.1:6060"}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

// hubStreamBytes is the space each of the three streams' directories takes
// in the hub's JetStream store (under every account directory).
func hubStreamBytes(hubDir string, s wire.Subjects) map[string]int64 {
	out := map[string]int64{}
	for _, name := range []string{s.TxStream(), s.LedgerStream(), s.OplogStream()} {
		dirs, _ := filepath.Glob(filepath.Join(hubDir, "jetstream", "*", "streams", name))
		for _, d := range dirs {
			out[name] += diskBytes(d)
		}
	}
	return out
}
