package alerts

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

// TestStreamPublisher: transitions land in TALLY_ALERTS with the state
// header; a retried transition (same id) is stored once; one-shot events on
// the same subjects are told apart.
func TestStreamPublisher(t *testing.T) {
	s := natstest.Run(t)
	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj := wire.NewSubjects("")
	p := &StreamPublisher{JS: js, Subjects: subj}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	since := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	a := Alert{Kind: KindGap, State: Firing, Node: "s1", Labels: map[string]string{"partition": "2"}, Since: since, Summary: "held"}
	for range 2 {
		if err := p.Publish(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Publish(subj.Alert(wire.AlertGap), []byte(`{"partition":2}`)); err != nil { // settle's own event
		t.Fatal(err)
	}
	nc.Flush()
	st, err := js.Stream(ctx, StreamName(subj))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() error {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 2 {
			return context.DeadlineExceeded
		}
		return nil
	})
	m1, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := Decode(subj, m1.Subject, m1.Header, m1.Data)
	if err != nil || !ok || got.ID() != a.ID() || got.Summary != "held" {
		t.Fatalf("decoded %+v %v %v", got, ok, err)
	}
	m2, _ := st.GetMsg(ctx, 2)
	if got, ok, _ := Decode(subj, m2.Subject, m2.Header, m2.Data); ok || got.Kind != wire.AlertGap {
		t.Fatalf("event decoded as %+v %v", got, ok)
	}
}
