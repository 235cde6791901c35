package natstest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/wire"
)

// DropTxBatch deletes the forwarded batch of the default-prefix TALLY_TX
// stream whose first edge sequence is first (the stream must allow deletes)
// and returns the last edge sequence it held: a batch the hub lost, for
// gap and replay tests.
func DropTxBatch(t testing.TB, js jetstream.JetStream, first uint64) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, wire.NewSubjects("").TxStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if f, _ := strconv.ParseUint(m.Header.Get(wire.HdrFirstSeq), 10, 64); f == first {
			if err := st.DeleteMsg(ctx, seq); err != nil {
				t.Fatal(err)
			}
			last, _ := strconv.ParseUint(m.Header.Get(wire.HdrLastSeq), 10, 64)
			return last
		}
	}
	t.Fatalf("no batch starting at edge seq %d in TALLY_TX", first)
	return 0
}
