package sla

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tally-mesh/tally/ingest"
)

// DefaultWindow is the measuring window; DefaultMinRequests the requests a
// window needs before its ack p99 and reject rate are judged.
const (
	DefaultWindow      = time.Minute
	DefaultMinRequests = 20
)

// AckBoundsMs are the upper bounds of the ack latency buckets, in
// milliseconds (0.25 ms doubling to about 16 s; the last bucket is +Inf).
var AckBoundsMs = func() []float64 {
	b := make([]float64, 17)
	for i := range b {
		b[i] = 0.25 * math.Pow(2, float64(i))
	}
	return b
}()

// Target is one partner's service level (config sla "<party>" {…}). A zero
// field is not a target.
type Target struct {
	Party         string        `json:"party"`
	AckP99        time.Duration `json:"ack_p99_ns,omitempty"`
	Availability  float64       `json:"availability,omitempty"`    // e.g. 0.999
	MaxRejectRate float64       `json:"max_reject_rate,omitempty"` // e.g. 0.01
	MinRequests   int           `json:"min_requests,omitempty"`    // 0 = DefaultMinRequests
}

// Window is one party's figures over one window: the record kept in TALLY_SLA.
type Window struct {
	Party      string    `json:"party"`
	Node       string    `json:"node"`
	Start      time.Time `json:"start"`
	Seconds    float64   `json:"seconds"`
	Up         bool      `json:"up"`
	Requests   uint64    `json:"requests"`
	Accepted   uint64    `json:"accepted"`
	Duplicates uint64    `json:"duplicates"`
	Rejected   uint64    `json:"rejected"`
	AckCounts  []uint64  `json:"ack_counts"` // per AckBoundsMs bucket, then +Inf
	Target     Target    `json:"target"`
}

// Transactions answered in the window.
func (w Window) Transactions() uint64 { return w.Accepted + w.Duplicates + w.Rejected }

// AckP99 of the window (0 without requests).
func (w Window) AckP99() time.Duration { return quantile(w.AckCounts, 0.99) }

// Breaches lists the targets the window missed, as human reasons.
func (w Window) Breaches() []string {
	t := w.Target
	var out []string
	if t.Availability > 0 && !w.Up {
		out = append(out, "endpoint unavailable")
	}
	min := t.MinRequests
	if min <= 0 {
		min = DefaultMinRequests
	}
	if w.Requests < uint64(min) {
		return out
	}
	if t.AckP99 > 0 {
		if p := w.AckP99(); p > t.AckP99 {
			out = append(out, fmt.Sprintf("ack p99 %s above %s", p, t.AckP99))
		}
	}
	if t.MaxRejectRate > 0 {
		if r := float64(w.Rejected) / float64(w.Transactions()); r > t.MaxRejectRate {
			out = append(out, fmt.Sprintf("reject rate %.4f above %.4f", r, t.MaxRejectRate))
		}
	}
	return out
}

func quantile(counts []uint64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var cum uint64
	for i, c := range counts {
		cum += c
		if cum >= rank {
			if i >= len(AckBoundsMs) {
				return time.Duration(2 * AckBoundsMs[len(AckBoundsMs)-1] * float64(time.Millisecond)) // beyond the last bound
			}
			return time.Duration(AckBoundsMs[i] * float64(time.Millisecond))
		}
	}
	return 0
}

// Recorder accumulates the current window per party. It is an
// ingest.Observer: cheap, non-blocking, safe for concurrent use.
type Recorder struct {
	node    string
	window  time.Duration
	mu      sync.Mutex
	start   time.Time
	targets map[string]Target
	cur     map[string]*Window
}

var _ ingest.Observer = (*Recorder)(nil)

// NewRecorder measures the given parties in windows of length window
// (0 = DefaultWindow) from now.
func NewRecorder(node string, window time.Duration, targets []Target, now time.Time) *Recorder {
	if window <= 0 {
		window = DefaultWindow
	}
	r := &Recorder{node: node, window: window, targets: map[string]Target{}, cur: map[string]*Window{}}
	for _, t := range targets {
		r.targets[t.Party] = t
	}
	r.reset(now.Truncate(window))
	return r
}

func (r *Recorder) reset(start time.Time) {
	r.start = start
	for p, t := range r.targets {
		r.cur[p] = &Window{Party: p, Node: r.node, Start: start, Up: true, AckCounts: make([]uint64, len(AckBoundsMs)+1), Target: t}
	}
}

// Answered implements ingest.Observer.
func (r *Recorder) Answered(provider string, accepted, duplicates, rejected int, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.cur[provider]
	if !ok {
		return
	}
	w.Requests++
	w.Accepted += uint64(accepted)
	w.Duplicates += uint64(duplicates)
	w.Rejected += uint64(rejected)
	ms := float64(took) / float64(time.Millisecond)
	w.AckCounts[sort.SearchFloat64s(AckBoundsMs, ms)]++
}

// WALSynced implements ingest.Observer.
func (r *Recorder) WALSynced(time.Duration) {}

// Down marks the current windows down (the endpoint refused work: WAL
// closed or at its budget).
func (r *Recorder) Down() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.cur {
		w.Up = false
	}
}

// Close returns the windows that ended at or before now (one per party) and
// starts the next. Windows skipped while the process could not call Close
// are not invented: they are missing, and count as down in a report.
func (r *Recorder) Close(now time.Time) []Window {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.start.Add(r.window)
	if now.Before(end) {
		return nil
	}
	out := make([]Window, 0, len(r.cur))
	for _, w := range r.cur {
		w.Seconds = r.window.Seconds()
		out = append(out, *w)
	}
	slices.SortFunc(out, func(a, b Window) int { return compareStr(a.Party, b.Party) })
	next := end
	if !now.Before(end.Add(r.window)) {
		next = now.Truncate(r.window)
	}
	r.reset(next)
	return out
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Figures are one party's figures over a period against its targets.
type Figures struct {
	Party        string        `json:"party"`
	From         time.Time     `json:"from"` // first window (or the period start, if earlier windows exist)
	To           time.Time     `json:"to"`   // period end or now
	Windows      int           `json:"windows"`
	Availability float64       `json:"availability"`
	Requests     uint64        `json:"requests"`
	Transactions uint64        `json:"transactions"`
	Rejected     uint64        `json:"rejected"`
	RejectRate   float64       `json:"reject_rate"`
	AckP99       time.Duration `json:"ack_p99_ns"`
	BreachWins   int           `json:"breach_windows"`
	Target       Target        `json:"target"`
	Met          bool          `json:"met"`
	Missed       []string      `json:"missed,omitempty"`
}

// Aggregate computes each party's figures over [from, to) from its windows
// (any order; a window stored twice counts once). to is clipped to now.
func Aggregate(windows []Window, from, to, now time.Time) []Figures {
	if now.Before(to) {
		to = now
	}
	type key struct {
		party string
		start int64
	}
	seen := map[key]bool{}
	by := map[string]*Figures{}
	acks := map[string][]uint64{}
	upSecs := map[string]float64{}
	latest := map[string]time.Time{}
	for _, w := range windows {
		if w.Start.Before(from) || !w.Start.Before(to) {
			continue
		}
		k := key{w.Party, w.Start.UnixNano()}
		if seen[k] {
			continue
		}
		seen[k] = true
		f, ok := by[w.Party]
		if !ok {
			f = &Figures{Party: w.Party, From: w.Start, To: to}
			by[w.Party] = f
			acks[w.Party] = make([]uint64, len(AckBoundsMs)+1)
		}
		if w.Start.Before(f.From) {
			f.From = w.Start
		}
		f.Windows++
		f.Requests += w.Requests
		f.Transactions += w.Transactions()
		f.Rejected += w.Rejected
		for i, c := range w.AckCounts {
			if i < len(acks[w.Party]) {
				acks[w.Party][i] += c
			}
		}
		if w.Up {
			upSecs[w.Party] += w.Seconds
		}
		if len(w.Breaches()) > 0 {
			f.BreachWins++
		}
		if !w.Start.Before(latest[w.Party]) {
			latest[w.Party] = w.Start
			f.Target = w.Target
		}
	}
	out := make([]Figures, 0, len(by))
	for p, f := range by {
		if span := f.To.Sub(f.From).Seconds(); span > 0 {
			f.Availability = math.Min(1, upSecs[p]/span)
		}
		if f.Transactions > 0 {
			f.RejectRate = float64(f.Rejected) / float64(f.Transactions)
		}
		f.AckP99 = quantile(acks[p], 0.99)
		t := f.Target
		if t.Availability > 0 && f.Availability < t.Availability {
			f.Missed = append(f.Missed, "availability")
		}
		if t.AckP99 > 0 && f.AckP99 > t.AckP99 {
			f.Missed = append(f.Missed, "ack_p99")
		}
		if t.MaxRejectRate > 0 && f.RejectRate > t.MaxRejectRate {
			f.Missed = append(f.Missed, "reject_rate")
		}
		f.Met = len(f.Missed) == 0
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b Figures) int { return compareStr(a.Party, b.Party) })
	return out
}

// Period parses "2026-11" into the month's bounds (UTC).
func Period(s string) (from, to time.Time, err error) {
	from, err = time.Parse("2006-01", s)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("period %q: use YYYY-MM such as 2026-11", s)
	}
	return from, from.AddDate(0, 1, 0), nil
}
