package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Kinds of alert. Each is the last token of its subject, <prefix>.alert.<kind>.
const (
	KindWALBudget      = "wal_budget"       // edge WAL at or above budget_ratio of ingest.budget_bytes
	KindWALHighWater   = "wal_high_water"   // edge WAL above ingest.retention_high_water: retention deletes early
	KindForwardStalled = "forward_stalled"  // oldest record not yet in JetStream older than the threshold
	KindHubUnreachable = "hub_unreachable"  // the node's link to the hub down longer than the threshold
	KindGap            = "gap"              // a settle partition holds batches behind an edge sequence gap
	KindFenced         = "fenced"           // another writer appended to a partition this node settles
	KindSettleLag      = "settle_lag"       // forwarded batches not yet settled above the threshold
	KindConflictRate   = "conflict_rate"    // conflicting records per minute above the threshold
	KindDeadLetterRate = "dead_letter_rate" // rejected (dead-lettered) transactions per minute above the threshold
	KindDiskLow        = "disk_low"         // free space of the data directory's file system below the threshold
	KindSLA            = "sla"              // a partner's SLA window missed a target (ops/sla)
	KindAnomaly        = "anomaly"          // a provider's stream left its baseline (ops/anomaly)
	KindCertExpiry     = "cert_expiry"      // a configured certificate expires within the threshold
)

// States of an alert.
const (
	Firing   = "firing"
	Resolved = "resolved"
)

// HdrState is the header carrying the state on a published transition. The
// one-shot events settle publishes on the same subjects have none.
const HdrState = "Tally-Alert-State"

// Alert is one state of one alert: what is published and sent to webhooks.
type Alert struct {
	Kind    string            `json:"kind"`
	State   string            `json:"state"` // firing | resolved
	Node    string            `json:"node"`
	Labels  map[string]string `json:"labels,omitempty"` // bounded: partition, provider, series, path
	Since   time.Time         `json:"since"`
	Until   *time.Time        `json:"until,omitempty"` // set when resolved
	Summary string            `json:"summary"`
	Details map[string]any    `json:"details,omitempty"`
}

// Key identifies the alert within its kind: its labels, sorted.
func (a Alert) Key() string { return labelKey(a.Labels) }

// ID is the transition's JetStream message id: the same transition published
// twice (a retry after a lost PubAck) is stored once.
func (a Alert) ID() string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s\x00%d", a.Node, a.Kind, a.Key(), a.State, a.Since.UnixNano()))
	return hex.EncodeToString(h[:16])
}

// Line is the alert as one human line (tally alerts tail).
func (a Alert) Line() string {
	var b strings.Builder
	at := a.Since
	if a.Until != nil {
		at = *a.Until
	}
	fmt.Fprintf(&b, "%s %-8s %-16s node=%s", at.UTC().Format(time.RFC3339), strings.ToUpper(a.State), a.Kind, a.Node)
	if k := a.Key(); k != "" {
		b.WriteString(" " + k)
	}
	if a.Until != nil {
		fmt.Fprintf(&b, " (fired %s, lasted %s)", a.Since.UTC().Format(time.RFC3339), a.Until.Sub(a.Since).Round(time.Second))
	}
	if a.Summary != "" {
		b.WriteString(": " + a.Summary)
	}
	return b.String()
}

func labelKey(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	ks := make([]string, 0, len(l))
	for k := range l {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, " ")
}
