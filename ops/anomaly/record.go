package anomaly

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/wire"
)

// StreamName is <PREFIX>_ANOMALIES: one record per detection, for the
// console's exception queue.
func StreamName(s wire.Subjects) string { return strings.ToUpper(s.Prefix) + "_ANOMALIES" }

// Subject is where a provider's detections are recorded.
func Subject(s wire.Subjects, provider string) string { return s.Prefix + ".anomaly." + provider }

// EnsureStream creates TALLY_ANOMALIES (90 days, oldest discarded).
func EnsureStream(ctx context.Context, js jetstream.JetStream, s wire.Subjects, replicas int) error {
	if replicas <= 0 {
		replicas = 1
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: StreamName(s), Subjects: []string{s.Prefix + ".anomaly.*"}, Storage: jetstream.FileStorage, Replicas: replicas,
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld, MaxAge: 90 * 24 * time.Hour, MaxBytes: 256 << 20,
		Duplicates: 10 * time.Minute, AllowDirect: true,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamName(s), err)
	}
	return nil
}

// Record is the stored detection.
type Record struct {
	Node string `json:"node"`
	Detection
}

// Publish records d (stored once per node, provider, series and time).
func Publish(ctx context.Context, js jetstream.JetStream, s wire.Subjects, node string, d Detection) error {
	b, err := json.Marshal(Record{Node: node, Detection: d})
	if err != nil {
		return err
	}
	m := nats.NewMsg(Subject(s, d.Provider))
	m.Data = b
	_, err = js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprintf("%s.%s.%s.%d", node, d.Provider, d.Series, d.At.UnixNano())))
	return err
}
