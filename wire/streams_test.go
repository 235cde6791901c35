package wire_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

var subj = wire.NewSubjects("")

func streamNames() []string {
	return []string{subj.TxStream(), subj.LedgerStream(), subj.OplogStream()}
}

func compressionOf(t testing.TB, js jetstream.JetStream, name string) jetstream.StoreCompression {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().Config.Compression
}

// TestEnsureStreamsCompression: new streams are S2 by default; an existing
// stream is switched to the setting asked for (and back) with its messages
// intact; a partitioning mismatch is refused before anything is changed; an
// unknown value is refused before anything is created.
func TestEnsureStreamsCompression(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := natstest.Run(t)
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.EnsureStreams(ctx, js, subj, wire.StreamOptions{Partitions: 2, Compression: "zstd"}); err == nil || !strings.Contains(err.Error(), `"zstd"`) {
		t.Fatalf("EnsureStreams(compression zstd) = %v, want an error naming it", err)
	}
	if _, err := js.Stream(ctx, subj.TxStream()); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("after a refused EnsureStreams: stream lookup = %v, want not found", err)
	}

	o := wire.StreamOptions{Partitions: 2, MaxMsgBytes: 1 << 20}
	if err := wire.EnsureStreams(ctx, js, subj, o); err != nil {
		t.Fatal(err)
	}
	for _, n := range streamNames() {
		if got := compressionOf(t, js, n); got != jetstream.S2Compression {
			t.Errorf("%s created with compression %v, want S2 (the default)", n, got)
		}
	}
	body := []byte("segment bytes " + strings.Repeat("x", 512))
	ack, err := js.Publish(ctx, subj.Ledger(0), body)
	if err != nil {
		t.Fatal(err)
	}

	for _, want := range []struct {
		opt string
		alg jetstream.StoreCompression
	}{{wire.CompressionNone, jetstream.NoCompression}, {wire.CompressionS2, jetstream.S2Compression}} {
		o.Compression = want.opt
		if err := wire.EnsureStreams(ctx, js, subj, o); err != nil {
			t.Fatalf("EnsureStreams(compression %s) on existing streams: %v", want.opt, err)
		}
		for _, n := range streamNames() {
			if got := compressionOf(t, js, n); got != want.alg {
				t.Errorf("%s: compression %v after EnsureStreams(%s), want %v", n, got, want.opt, want.alg)
			}
		}
		st, err := js.Stream(ctx, subj.LedgerStream())
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetMsg(ctx, ack.Sequence)
		if err != nil || !bytes.Equal(m.Data, body) {
			t.Fatalf("ledger message after switching to %s: %v, equal %v", want.opt, err, err == nil && bytes.Equal(m.Data, body))
		}
	}

	o.Partitions, o.Compression = 3, wire.CompressionNone
	if err := wire.EnsureStreams(ctx, js, subj, o); err == nil || !strings.Contains(err.Error(), "partitioning") {
		t.Fatalf("EnsureStreams(partitions 3) = %v, want the partitioning refusal", err)
	}
	if got := compressionOf(t, js, subj.TxStream()); got != jetstream.S2Compression {
		t.Errorf("a refused EnsureStreams changed TALLY_TX's compression to %v", got)
	}
}

// blockFiles lists a stream's message block sizes in block order.
func blockFiles(t testing.TB, storeDir, stream string) []int64 {
	t.Helper()
	dir := filepath.Join(storeDir, "jetstream", server.DEFAULT_GLOBAL_ACCOUNT, "streams", stream, "msgs")
	var out []int64
	for i := 1; ; i++ {
		fi, err := os.Stat(filepath.Join(dir, strconv.Itoa(i)+".blk"))
		if errors.Is(err, os.ErrNotExist) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fi.Size())
	}
}

// TestCompressionOnDiskAfterSwitch pins down what ensure's comment says the
// server does with a changed setting, on real block files: a block sealed
// before the server reloads the stream keeps the old form, one sealed after
// a restart is compressed, and every message reads back byte-exact.
func TestCompressionOnDiskAfterSwitch(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 20 MiB")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	start := func() (*server.Server, jetstream.JetStream) {
		s := natstest.RunWith(t, natstest.Options(dir))
		js, err := jetstream.New(natstest.Connect(t, s))
		if err != nil {
			t.Fatal(err)
		}
		return s, js
	}
	// Compressible like a ledger segment: hex digests between repeated text.
	msg := func(i int) []byte {
		var b bytes.Buffer
		for b.Len() < 16<<10 {
			var r [16]byte
			_, _ = rand.Read(r[:])
			b.WriteString(`{"party":"casino","currency":"EUR","digest":"` + hex.EncodeToString(r[:]) + `","n":` + strconv.Itoa(i) + "}\n")
		}
		return b.Bytes()
	}
	var sent [][]byte
	fill := func(js jetstream.JetStream, mib int) {
		for i := 0; i < mib*64; i++ {
			m := msg(len(sent))
			if _, err := js.Publish(ctx, subj.Ledger(0), m); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, m)
		}
	}
	o := wire.StreamOptions{Partitions: 1, MaxMsgBytes: 1 << 20, Compression: wire.CompressionNone}
	s, js := start()
	if err := wire.EnsureStreams(ctx, js, subj, o); err != nil {
		t.Fatal(err)
	}
	fill(js, 9) // seals block 1 (8 MiB blocks for limits streams)
	o.Compression = wire.CompressionS2
	if err := wire.EnsureStreams(ctx, js, subj, o); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.WaitForShutdown()
	_, js = start()
	fill(js, 9) // seals block 2 under S2
	var sizes []int64
	natstest.Eventually(t, 20*time.Second, func() error {
		sizes = blockFiles(t, dir, subj.LedgerStream())
		if len(sizes) < 3 || sizes[1] > 6<<20 {
			return fmt.Errorf("block sizes %v: block 2 not compressed yet", sizes)
		}
		return nil
	})
	if sizes[0] < 8<<20-(64<<10) {
		t.Errorf("block 1 (sealed before the switch) is %d bytes: it was not expected to change", sizes[0])
	}
	t.Logf("block sizes %v", sizes)
	st, err := js.Stream(ctx, subj.LedgerStream())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range sent {
		m, err := st.GetMsg(ctx, uint64(i+1))
		if err != nil || !bytes.Equal(m.Data, want) {
			t.Fatalf("message %d after the switch: %v (equal %v)", i+1, err, err == nil && bytes.Equal(m.Data, want))
		}
	}
}
