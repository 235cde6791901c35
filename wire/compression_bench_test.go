package wire_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// Payload shapes for BenchmarkStreamCompression. "bench" is what `tally
// bench` sends (short sequential ids, six games, whole-second times: very
// repetitive); "varied" is closer to a live casino feed: UUID ids, a round id,
// a player from a million, a session id in meta, millisecond times, 300 games.
var benchGames = []string{"live-roulette", "blackjack-vip", "book-of-x", "star-reels", "baccarat-1", "mega-wheel"}

func payload(shape string, r *rand.Rand, i int, at time.Time) []byte {
	typ := []string{"bet", "win"}[r.IntN(2)]
	amount := fmt.Sprintf("%d.%02d", 1+r.IntN(500), r.IntN(100))
	if shape == "bench" {
		return fmt.Appendf(nil, `{"id":"b7-%d-%d","type":"%s","amount":"%s","currency":"EUR","occurred_at":"%s","game":"%s","jurisdiction":"MT","brand":"main"}`,
			i/100, i%100, typ, amount, at.Format(time.RFC3339), benchGames[r.IntN(len(benchGames))])
	}
	u := func(n int) string {
		const hexd = "0123456789abcdef"
		b := make([]byte, n)
		for k := range b {
			b[k] = hexd[r.IntN(16)]
		}
		return string(b)
	}
	return fmt.Appendf(nil, `{"id":"%s-%s-4%s-a%s-%s","type":"%s","amount":"%s","currency":"EUR","occurred_at":"%s","round":"r-%s","game":"game-%03d","category":"slots","jurisdiction":"MT","brand":"brand-%d","player":"p-%07d","meta":{"session":"%s"}}`,
		u(8), u(4), u(3), u(3), u(12), typ, amount, at.Format("2006-01-02T15:04:05.000Z"), u(16), r.IntN(300), r.IntN(5), r.IntN(1_000_000), u(12))
}

// ledgerBody is a TALLY_LEDGER message body without the segment header and
// the state record (a few hundred bytes per message): the entries settle
// would seal for these records, encoded as store encodes them.
func ledgerBody(tb testing.TB, recs []wire.Record, at time.Time) []byte {
	rs := sha256.Sum256([]byte("rule set"))
	var out []byte
	for _, rec := range recs {
		tx, terr := txn.Decode(rec.Payload, txn.DefaultLimits())
		if terr != nil {
			tb.Fatal(terr)
		}
		net := tx.Amount
		if tx.Type == txn.Type("win") {
			net = net.Neg()
		}
		op := net.Mul(decimal.RequireFromString("0.3")).Round(2)
		e := store.Entry{EdgeNode: "edge-eu-1", EdgeSeq: rec.Seq, Provider: "provider-1", Tx: tx, RuleSet: rs, Rule: "main",
			Net: net, Shares: []money.Share{{Party: "casino", Amount: net.Sub(op)}, {Party: "operator", Amount: op}}, SettledAt: at}
		b, err := e.MarshalBinary()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// blocks returns a stream's message block files' total size and the size of
// its last (open, never compressed) block.
func blocks(tb testing.TB, storeDir, stream string) (total, last int64) {
	dir := filepath.Join(storeDir, "jetstream", server.DEFAULT_GLOBAL_ACCOUNT, "streams", stream, "msgs")
	var lastName string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".blk") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		if n := d.Name(); len(n) > len(lastName) || (len(n) == len(lastName) && n > lastName) {
			lastName, last = n, fi.Size()
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return total, last
}

// BenchmarkStreamCompression publishes, per iteration, one forwarded batch
// of 100 records to TALLY_TX and the ledger entries of those records to
// TALLY_LEDGER, on an embedded server that fsyncs every message (the bench's
// hub setting), with streams.compression none or s2. It reports, per
// transaction: the stream bytes JetStream counts (logical), the block files
// on disk, and the ratio over sealed blocks only (the open 8 MiB block of
// each stream is never compressed), plus process CPU (server included).
// Sealed blocks need > 8 MiB per stream, i.e. -benchtime 1000x or more:
//
//	go test -run xxx -bench StreamCompression -benchtime 1500x ./wire
func BenchmarkStreamCompression(b *testing.B) {
	for _, shape := range []string{"bench", "varied"} {
		for _, mode := range []string{wire.CompressionNone, wire.CompressionS2} {
			b.Run(shape+"/"+mode, func(b *testing.B) { benchCompression(b, shape, mode) })
		}
	}
}

func benchCompression(b *testing.B, shape, mode string) {
	ctx := context.Background()
	dir := b.TempDir()
	o := natstest.Options(dir)
	o.SyncAlways = true
	s := natstest.RunWith(b, o)
	js, err := jetstream.New(natstest.Connect(b, s))
	if err != nil {
		b.Fatal(err)
	}
	if err := wire.EnsureStreams(ctx, js, subj, wire.StreamOptions{Partitions: 1, MaxMsgBytes: 1 << 20, Compression: mode}); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	type pair struct{ tx, led *nats.Msg }
	msgs := make([]pair, b.N)
	seq := uint64(1)
	for i := range msgs {
		recs := make([]wire.Record, 100)
		for k := range recs {
			recs[k] = wire.Record{Seq: seq, Payload: payload(shape, r, int(seq), at.Add(time.Duration(seq)*time.Millisecond*3))}
			seq++
		}
		tx := nats.NewMsg(subj.Tx("edge-eu-1", "provider-1"))
		tx.Data = wire.AppendBatch(nil, recs)
		led := nats.NewMsg(subj.Ledger(0))
		led.Data = ledgerBody(b, recs, at)
		msgs[i] = pair{tx, led}
	}
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := js.PublishMsg(ctx, msgs[i].tx); err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, msgs[i].led); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// Sealed blocks are compressed by a goroutine of the server: wait
	// (bounded) until no block file shrinks any more.
	var prev int64 = -1
	for k := 0; k < 100; k++ {
		t1, _ := blocks(b, dir, subj.TxStream())
		t2, _ := blocks(b, dir, subj.LedgerStream())
		if t1+t2 == prev {
			break
		}
		prev = t1 + t2
		time.Sleep(100 * time.Millisecond)
	}
	cpu := processCPU() - cpu0
	n := float64(b.N * 100)
	var logical, disk, sealedLogical, sealedDisk int64
	for _, name := range []string{subj.TxStream(), subj.LedgerStream()} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		in, err := st.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		total, last := blocks(b, dir, name)
		logical += int64(in.State.Bytes)
		disk += total
		sealedLogical += int64(in.State.Bytes) - last
		sealedDisk += total - last
		b.ReportMetric(float64(total)/n, strings.ToLower(strings.TrimPrefix(name, "TALLY_"))+"-disk-B/tx")
	}
	b.ReportMetric(float64(logical)/n, "logical-B/tx")
	b.ReportMetric(float64(disk)/n, "disk-B/tx")
	if sealedDisk > 0 {
		b.ReportMetric(float64(sealedLogical)/float64(sealedDisk), "sealed-ratio")
	}
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/tx")
}
