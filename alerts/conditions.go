package alerts

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Thresholds of the node conditions (config alerts {…}). A zero field
// disables its condition.
type Thresholds struct {
	WALBudgetRatio    float64       // wal_budget fires when the WAL holds this fraction of its budget
	ForwardOldest     time.Duration // forward_stalled fires when the oldest unforwarded record is older
	HubUnreachable    time.Duration // hub_unreachable fires when the hub link is down longer
	SettleLagBatches  uint64        // settle_lag fires when a partition has more unsettled batches
	ConflictsPerMin   float64       // conflict_rate fires at this many conflicts within a minute
	DeadLettersPerMin float64       // dead_letter_rate fires at this many rejections within a minute
	DiskFreeRatio     float64       // disk_low fires below this fraction of free space
	CertExpiry        time.Duration // cert_expiry fires when a certificate expires within this
}

// DefaultThresholds are the documented defaults (docs/alerts.md).
func DefaultThresholds() Thresholds {
	return Thresholds{
		WALBudgetRatio:    0.8,
		ForwardOldest:     5 * time.Minute,
		HubUnreachable:    30 * time.Second,
		SettleLagBatches:  1000,
		ConflictsPerMin:   1,
		DeadLettersPerMin: 100,
		DiskFreeRatio:     0.05,
		CertExpiry:        14 * 24 * time.Hour,
	}
}

// Snapshot is what the node evaluator reads each Interval.
type Snapshot struct {
	Ingest       bool
	WALBytes     int64
	WALBudget    int64
	WALHighWater int64 // 0 = none
	Oldest       time.Duration
	Rejected     uint64 // cumulative, this process

	Settle     bool
	Partitions []PartitionSnapshot

	HubUp     bool
	HubDetail string

	DataDir string // "" = no disk check
}

// PartitionSnapshot is one settle partition.
type PartitionSnapshot struct {
	Partition int
	Lag       uint64
	Conflicts uint64 // cumulative
}

// NodeEvaluator evaluates the node conditions from snapshots: WAL budget
// and high-water mark, forwarding stalled, hub unreachable, settle lag,
// conflict and dead-letter rates, and free disk space.
func NodeEvaluator(th Thresholds, snap func() Snapshot) Evaluator {
	e := &nodeEval{th: th, snap: snap}
	return Evaluator{
		Kinds: []string{KindWALBudget, KindWALHighWater, KindForwardStalled, KindHubUnreachable, KindSettleLag, KindConflictRate, KindDeadLetterRate, KindDiskLow},
		Eval:  e.eval,
	}
}

type nodeEval struct {
	th        Thresholds
	snap      func() Snapshot
	downSince time.Time
	rejected  rate
	conflicts rate
}

func (e *nodeEval) eval(now time.Time) []Condition {
	s := e.snap()
	var out []Condition
	th := e.th
	if s.Ingest {
		if th.WALBudgetRatio > 0 && s.WALBudget > 0 && float64(s.WALBytes) >= th.WALBudgetRatio*float64(s.WALBudget) {
			out = append(out, Condition{Kind: KindWALBudget,
				Summary: fmt.Sprintf("WAL holds %d of its %d-byte budget (%.0f%%); at the budget the edge answers buffer_full", s.WALBytes, s.WALBudget, 100*float64(s.WALBytes)/float64(s.WALBudget)),
				Details: map[string]any{"wal_bytes": s.WALBytes, "budget_bytes": s.WALBudget, "ratio": th.WALBudgetRatio}})
		}
		if s.WALHighWater > 0 && s.WALBytes > s.WALHighWater {
			out = append(out, Condition{Kind: KindWALHighWater,
				Summary: fmt.Sprintf("WAL holds %d bytes, above the retention high-water mark %d: forwarded records are deleted before their retention", s.WALBytes, s.WALHighWater),
				Details: map[string]any{"wal_bytes": s.WALBytes, "high_water_bytes": s.WALHighWater}})
		}
		if th.ForwardOldest > 0 && s.Oldest > th.ForwardOldest {
			out = append(out, Condition{Kind: KindForwardStalled,
				Summary: fmt.Sprintf("oldest record not yet in JetStream is %s old (threshold %s)", s.Oldest.Round(time.Second), th.ForwardOldest),
				Details: map[string]any{"oldest_seconds": s.Oldest.Seconds(), "threshold_seconds": th.ForwardOldest.Seconds()}})
		}
		if n, ok := e.rejected.add(now, s.Rejected); ok && th.DeadLettersPerMin > 0 && float64(n) >= th.DeadLettersPerMin {
			out = append(out, Condition{Kind: KindDeadLetterRate,
				Summary: fmt.Sprintf("%d transactions rejected (dead-lettered) in the last minute (threshold %g)", n, th.DeadLettersPerMin),
				Details: map[string]any{"per_minute": n, "threshold": th.DeadLettersPerMin}})
		}
	}
	if s.HubUp {
		e.downSince = time.Time{}
	} else if e.downSince.IsZero() {
		e.downSince = now
	}
	if th.HubUnreachable > 0 && !e.downSince.IsZero() && now.Sub(e.downSince) >= th.HubUnreachable {
		out = append(out, Condition{Kind: KindHubUnreachable,
			Summary: fmt.Sprintf("hub unreachable since %s: %s", e.downSince.UTC().Format(time.RFC3339), s.HubDetail),
			Details: map[string]any{"down_since": e.downSince.UTC(), "detail": s.HubDetail}})
	}
	if s.Settle {
		var conflicts uint64
		for _, p := range s.Partitions {
			conflicts += p.Conflicts
			if th.SettleLagBatches > 0 && p.Lag > th.SettleLagBatches {
				out = append(out, Condition{Kind: KindSettleLag, Labels: map[string]string{"partition": strconv.Itoa(p.Partition)},
					Summary: fmt.Sprintf("partition %d has %d forwarded batches not yet settled (threshold %d)", p.Partition, p.Lag, th.SettleLagBatches),
					Details: map[string]any{"lag_batches": p.Lag, "threshold": th.SettleLagBatches}})
			}
		}
		if n, ok := e.conflicts.add(now, conflicts); ok && th.ConflictsPerMin > 0 && float64(n) >= th.ConflictsPerMin {
			out = append(out, Condition{Kind: KindConflictRate,
				Summary: fmt.Sprintf("%d conflicting records (same provider and id, different payload) in the last minute (threshold %g)", n, th.ConflictsPerMin),
				Details: map[string]any{"per_minute": n, "threshold": th.ConflictsPerMin}})
		}
	}
	if s.DataDir != "" && th.DiskFreeRatio > 0 {
		free, total, err := DiskFree(s.DataDir)
		if err == nil && total > 0 && float64(free) < th.DiskFreeRatio*float64(total) {
			out = append(out, Condition{Kind: KindDiskLow, Labels: map[string]string{"path": s.DataDir},
				Summary: fmt.Sprintf("%d of %d bytes free (%.1f%%) where %s lives (threshold %.1f%%)", free, total, 100*float64(free)/float64(total), s.DataDir, 100*th.DiskFreeRatio),
				Details: map[string]any{"free_bytes": free, "total_bytes": total, "ratio": th.DiskFreeRatio}})
		}
	}
	return out
}

// rate counts how much a cumulative counter grew within the last minute,
// from samples taken at each evaluation (at most rateSamples kept).
type rate struct {
	samples []sample
}

type sample struct {
	at time.Time
	v  uint64
}

const rateSamples = 1024

// add records v at now and returns the growth since the newest sample at
// least a minute old (or the oldest one); ok false on the first sample.
func (r *rate) add(now time.Time, v uint64) (uint64, bool) {
	r.samples = append(r.samples, sample{now, v})
	// Drop samples older than the one that starts the window.
	i := 0
	for i+1 < len(r.samples) && now.Sub(r.samples[i+1].at) >= time.Minute {
		i++
	}
	if len(r.samples)-i > rateSamples {
		i = len(r.samples) - rateSamples
	}
	r.samples = r.samples[i:]
	if len(r.samples) < 2 {
		return 0, false
	}
	base := r.samples[0].v
	if v < base { // counter restarted
		return v, true
	}
	return v - base, true
}

// CertEvaluator fires cert_expiry for every PEM certificate in files that
// expires within `within` (or cannot be read). It is the hook for the TLS
// configuration: the node passes the certificate files it serves with.
func CertEvaluator(files func() []string, within time.Duration) Evaluator {
	return Evaluator{Kinds: []string{KindCertExpiry}, Eval: func(now time.Time) []Condition {
		var out []Condition
		for _, f := range files() {
			notAfter, subject, err := certExpiry(f)
			l := map[string]string{"file": f}
			switch {
			case err != nil:
				out = append(out, Condition{Kind: KindCertExpiry, Labels: l, Summary: "certificate unreadable: " + err.Error()})
			case notAfter.Sub(now) < within:
				out = append(out, Condition{Kind: KindCertExpiry, Labels: l,
					Summary: fmt.Sprintf("certificate %s expires %s (in %s)", subject, notAfter.UTC().Format(time.RFC3339), notAfter.Sub(now).Round(time.Minute)),
					Details: map[string]any{"not_after": notAfter.UTC(), "subject": subject}})
			}
		}
		return out
	}}
}

// certExpiry is the earliest NotAfter of the certificates in a PEM file.
func certExpiry(path string) (time.Time, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, "", err
	}
	var first time.Time
	var subject string
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return time.Time{}, "", fmt.Errorf("%s: %w", path, err)
		}
		if first.IsZero() || c.NotAfter.Before(first) {
			first, subject = c.NotAfter, c.Subject.String()
		}
	}
	if first.IsZero() {
		return time.Time{}, "", fmt.Errorf("%s: no PEM certificate", path)
	}
	return first, subject, nil
}
