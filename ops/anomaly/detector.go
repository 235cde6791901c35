package anomaly

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Series names.
const (
	SeriesVolume   = "volume"
	SeriesAmount   = "amount"
	SeriesRollback = "rollback_ratio"
	SeriesReject   = "reject_ratio"
)

// Defaults of Config.
const (
	DefaultWindow       = time.Minute
	DefaultHistory      = 60
	DefaultWarmup       = 30
	DefaultSensitivity  = 6.0
	DefaultMinVolume    = 10
	DefaultAmountWarmup = 200
	DefaultAmountAlpha  = 0.01
	MinRatioSpread      = 0.02 // the floor of a ratio's spread: 2 percentage points
	minAmountSpread     = 0.05 // log10 units: about 12%
	maxProviders        = 4096 // beyond this, new providers are not tracked
)

// Config tunes the detector (config anomaly {…}).
type Config struct {
	Window       time.Duration // 0 = DefaultWindow
	History      int           // windows in the baseline; 0 = DefaultHistory
	Warmup       int           // windows before a series is judged; 0 = DefaultWarmup
	Sensitivity  float64       // robust z-score that fires; 0 = DefaultSensitivity
	MinVolume    int           // 0 = DefaultMinVolume
	AmountWarmup int           // amounts before amounts are judged; 0 = DefaultAmountWarmup
	AmountAlpha  float64       // EWMA weight of a new amount; 0 = DefaultAmountAlpha
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.History <= 0 {
		c.History = DefaultHistory
	}
	if c.Warmup <= 0 {
		c.Warmup = DefaultWarmup
	}
	c.Warmup = min(c.Warmup, c.History)
	if c.Sensitivity <= 0 {
		c.Sensitivity = DefaultSensitivity
	}
	if c.MinVolume <= 0 {
		c.MinVolume = DefaultMinVolume
	}
	if c.AmountWarmup <= 0 {
		c.AmountWarmup = DefaultAmountWarmup
	}
	if c.AmountAlpha <= 0 || c.AmountAlpha >= 1 {
		c.AmountAlpha = DefaultAmountAlpha
	}
	return c
}

// Detection is one observation outside its baseline.
type Detection struct {
	Provider  string    `json:"provider"`
	Series    string    `json:"series"`
	At        time.Time `json:"at"`     // the window's end, or the transaction's time for amounts
	Window    time.Time `json:"window"` // the window's start (zero for amounts)
	Value     float64   `json:"value"`
	Baseline  float64   `json:"baseline"` // median (window series) or EWMA center, in the series' units
	Spread    float64   `json:"spread"`
	Score     float64   `json:"score"`
	Direction string    `json:"direction"` // spike, drop, drop_to_zero, high
	Summary   string    `json:"summary"`
}

// Detector holds the baselines of every provider. Not safe for concurrent
// use: one goroutine owns it.
type Detector struct {
	cfg       Config
	providers map[string]*provider
}

type provider struct {
	start              time.Time // current window's start; zero before the first observation
	accepted, rollback int
	rejected           int
	volume, rb, rej    ring
	amounts            amountBaseline
}

// New returns a detector.
func New(cfg Config) *Detector {
	return &Detector{cfg: cfg.withDefaults(), providers: map[string]*provider{}}
}

// Config is the effective configuration.
func (d *Detector) Config() Config { return d.cfg }

func (d *Detector) get(name string, at time.Time) (*provider, []Detection) {
	p, ok := d.providers[name]
	if !ok {
		if len(d.providers) >= maxProviders {
			return nil, nil
		}
		h := d.cfg.History
		p = &provider{volume: newRing(h), rb: newRing(h), rej: newRing(h)}
		d.providers[name] = p
	}
	var out []Detection
	if p.start.IsZero() {
		p.start = at.Truncate(d.cfg.Window)
	} else {
		out = d.roll(name, p, at)
	}
	return p, out
}

// Accepted observes one accepted transaction. rollback marks a reversal;
// amount is its absolute amount in major units. It returns an amount
// detection, and those of any window that closed before at.
func (d *Detector) Accepted(name string, at time.Time, amount float64, rollback bool) []Detection {
	p, out := d.get(name, at)
	if p == nil {
		return nil
	}
	p.accepted++
	if rollback {
		p.rollback++
	}
	if det, ok := p.amounts.observe(d.cfg, amount); ok {
		det.Provider, det.At = name, at
		out = append(out, det)
	}
	return out
}

// Rejected observes n rejected transactions.
func (d *Detector) Rejected(name string, at time.Time, n int) []Detection {
	p, out := d.get(name, at)
	if p == nil {
		return nil
	}
	p.rejected += n
	return out
}

// Tick closes every window that ended at or before now (empty windows
// included: a provider that went silent is judged) and returns what they
// show.
func (d *Detector) Tick(now time.Time) []Detection {
	var out []Detection
	for name, p := range d.providers {
		if !p.start.IsZero() {
			out = append(out, d.roll(name, p, now)...)
		}
	}
	slices.SortFunc(out, func(a, b Detection) int { return a.At.Compare(b.At) })
	return out
}

// roll closes p's windows that end at or before now.
func (d *Detector) roll(name string, p *provider, now time.Time) []Detection {
	var out []Detection
	w := d.cfg.Window
	closed := 0
	for !now.Before(p.start.Add(w)) {
		if closed >= d.cfg.History { // silent for longer than the baseline: skip ahead
			p.start = now.Truncate(w)
			break
		}
		out = append(out, d.close(name, p)...)
		p.start = p.start.Add(w)
		p.accepted, p.rollback, p.rejected = 0, 0, 0
		closed++
	}
	return out
}

func (d *Detector) close(name string, p *provider) []Detection {
	k := d.cfg.Sensitivity
	end := p.start.Add(d.cfg.Window)
	var out []Detection
	det := func(series, dir string, v, med, spread, score float64, format string) {
		out = append(out, Detection{Provider: name, Series: series, At: end, Window: p.start, Value: v, Baseline: med,
			Spread: spread, Score: score, Direction: dir, Summary: fmt.Sprintf(format, v, med)})
	}
	v := float64(p.accepted)
	if med, spread, ok := p.volume.baseline(d.cfg.Warmup, math.Max(1, math.Sqrt(p.volume.median()))); ok {
		score := (v - med) / spread
		switch {
		case v == 0 && med >= float64(d.cfg.MinVolume):
			det(SeriesVolume, "drop_to_zero", v, med, spread, score, "no transactions in the window (%g), baseline %g per window")
		case score > k:
			det(SeriesVolume, "spike", v, med, spread, score, "%g transactions in the window, baseline %g")
		case score < -k:
			det(SeriesVolume, "drop", v, med, spread, score, "%g transactions in the window, baseline %g")
		}
		p.volume.push(clamp(v, med, k*spread))
	} else {
		p.volume.push(v)
	}
	if p.accepted >= d.cfg.MinVolume {
		r := float64(p.rollback) / float64(p.accepted)
		ratio(&p.rb, r, d.cfg, func(med, spread, score float64) {
			det(SeriesRollback, "high", r, med, spread, score, "rollback ratio %.3f in the window, baseline %.3f")
		})
	}
	if tot := p.accepted + p.rejected; tot >= d.cfg.MinVolume {
		r := float64(p.rejected) / float64(tot)
		ratio(&p.rej, r, d.cfg, func(med, spread, score float64) {
			det(SeriesReject, "high", r, med, spread, score, "reject ratio %.3f in the window, baseline %.3f")
		})
	}
	return out
}

func ratio(r *ring, v float64, cfg Config, fire func(med, spread, score float64)) {
	med, spread, ok := r.baseline(cfg.Warmup, MinRatioSpread)
	if !ok {
		r.push(v)
		return
	}
	if score := (v - med) / spread; score > cfg.Sensitivity {
		fire(med, spread, score)
	}
	r.push(clamp(v, med, cfg.Sensitivity*spread))
}

func clamp(v, center, width float64) float64 {
	return math.Max(center-width, math.Min(center+width, v))
}

// ring is the last n values of a series.
type ring struct {
	v    []float64
	next int
	full bool
	tmp  []float64
}

func newRing(n int) ring { return ring{v: make([]float64, n), tmp: make([]float64, 0, n)} }

func (r *ring) push(x float64) {
	r.v[r.next] = x
	r.next++
	if r.next == len(r.v) {
		r.next, r.full = 0, true
	}
}

func (r *ring) len() int {
	if r.full {
		return len(r.v)
	}
	return r.next
}

func (r *ring) median() float64 {
	if r.len() == 0 {
		return 0
	}
	r.tmp = append(r.tmp[:0], r.v[:r.len()]...)
	return median(r.tmp)
}

// baseline is the median and spread (1.4826·MAD, at least floor) once the
// ring holds warmup values.
func (r *ring) baseline(warmup int, floor float64) (med, spread float64, ok bool) {
	if r.len() < warmup {
		return 0, 0, false
	}
	r.tmp = append(r.tmp[:0], r.v[:r.len()]...)
	med = median(r.tmp)
	for i := range r.tmp {
		r.tmp[i] = math.Abs(r.tmp[i] - med)
	}
	return med, math.Max(1.4826*median(r.tmp), floor), true
}

// median sorts xs in place.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// amountBaseline is the EWMA center and spread of log10(amount).
type amountBaseline struct {
	warm   []float64
	ready  bool
	center float64
	absDev float64
}

func (b *amountBaseline) observe(cfg Config, amount float64) (Detection, bool) {
	if !(amount > 0) || math.IsInf(amount, 0) {
		return Detection{}, false
	}
	x := math.Log10(amount)
	if !b.ready {
		b.warm = append(b.warm, x)
		if len(b.warm) >= cfg.AmountWarmup {
			b.center = median(b.warm)
			for i := range b.warm {
				b.warm[i] = math.Abs(b.warm[i] - b.center)
			}
			b.absDev = median(b.warm) // MAD ≈ 0.6745σ, mean abs dev ≈ 0.7979σ: close enough to seed
			b.warm, b.ready = nil, true
		}
		return Detection{}, false
	}
	spread := math.Max(1.2533*b.absDev, minAmountSpread)
	score := (x - b.center) / spread
	a := cfg.AmountAlpha
	xc := clamp(x, b.center, cfg.Sensitivity*spread)
	var det Detection
	fired := score > cfg.Sensitivity
	if fired {
		det = Detection{Series: SeriesAmount, Value: amount, Baseline: math.Pow(10, b.center), Spread: spread, Score: score, Direction: "high",
			Summary: fmt.Sprintf("amount %g, baseline about %.4g (score %.1f in log10 units)", amount, math.Pow(10, b.center), score)}
	}
	b.absDev = (1-a)*b.absDev + a*math.Abs(xc-b.center)
	b.center = (1-a)*b.center + a*xc
	return det, fired
}
