package anomaly

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// stream simulates one provider: per window, volume transactions spread over
// the window with lognormal amounts, rollbacks with probability rb, and
// rejects with probability rej, then a Tick at the window's end.
type stream struct {
	d    *Detector
	rng  *rand.Rand
	now  time.Time
	dets []Detection
}

func newStream(cfg Config, seed uint64) *stream {
	return &stream{d: New(cfg), rng: rand.New(rand.NewPCG(seed, seed+1)), now: t0}
}

func (s *stream) window(volume int, rb, rej float64, amount func() float64) {
	w := s.d.Config().Window
	for i := range volume {
		at := s.now.Add(time.Duration(i) * w / time.Duration(volume+1))
		if s.rng.Float64() < rej {
			s.dets = append(s.dets, s.d.Rejected("p1", at, 1)...)
			continue
		}
		s.dets = append(s.dets, s.d.Accepted("p1", at, amount(), s.rng.Float64() < rb)...)
	}
	s.now = s.now.Add(w)
	s.dets = append(s.dets, s.d.Tick(s.now)...)
}

// normal is a steady stream's window: about 100 transactions (σ 10), 2%
// rollbacks, 0.5% rejects, amounts lognormal around 20.
func (s *stream) normal() {
	v := int(math.Round(100 + 10*s.rng.NormFloat64()))
	s.window(v, 0.02, 0.005, s.amount)
}

func (s *stream) amount() float64 { return math.Round(20*math.Exp(0.5*s.rng.NormFloat64())*100) / 100 }

func (s *stream) warm(n int) {
	for range n {
		s.normal()
	}
	if len(s.dets) != 0 {
		panic("detections during warm-up")
	}
}

func find(dets []Detection, series, dir string) *Detection {
	for i := range dets {
		if dets[i].Series == series && (dir == "" || dets[i].Direction == dir) {
			return &dets[i]
		}
	}
	return nil
}

// TestSteadyStreamRaisesNothing: a week of one-minute windows of ordinary
// noisy traffic (about a million transactions) raises nothing.
func TestSteadyStreamRaisesNothing(t *testing.T) {
	s := newStream(Config{}, 1)
	days := 7
	if testing.Short() {
		days = 1
	}
	for range days * 24 * 60 {
		s.normal()
	}
	if len(s.dets) != 0 {
		t.Fatalf("%d detections on a steady stream, first %+v", len(s.dets), s.dets[0])
	}
}

func TestVolumeSpike(t *testing.T) {
	s := newStream(Config{}, 2)
	s.warm(60)
	s.window(400, 0.02, 0.005, s.amount)
	d := find(s.dets, SeriesVolume, "spike")
	if d == nil {
		t.Fatalf("no volume spike detected: %+v", s.dets)
	}
	if d.Provider != "p1" || !d.At.Equal(s.now) || d.Score < 6 {
		t.Fatalf("detection %+v", d)
	}
}

func TestDropToZero(t *testing.T) {
	s := newStream(Config{}, 3)
	s.warm(60)
	// The provider goes silent: no observation at all, only the clock.
	s.now = s.now.Add(time.Minute)
	s.dets = append(s.dets, s.d.Tick(s.now)...)
	d := find(s.dets, SeriesVolume, "drop_to_zero")
	if d == nil || d.Value != 0 {
		t.Fatalf("no drop to zero detected: %+v", s.dets)
	}
}

func TestRollbackStorm(t *testing.T) {
	s := newStream(Config{}, 4)
	s.warm(60)
	s.window(100, 0.4, 0.005, s.amount)
	if d := find(s.dets, SeriesRollback, "high"); d == nil {
		t.Fatalf("no rollback storm detected: %+v", s.dets)
	}
	if d := find(s.dets, SeriesVolume, ""); d != nil {
		t.Fatalf("volume flagged in a window of normal volume: %+v", d)
	}
}

func TestRejectStorm(t *testing.T) {
	s := newStream(Config{}, 5)
	s.warm(60)
	s.window(100, 0.02, 0.3, s.amount)
	if d := find(s.dets, SeriesReject, "high"); d == nil {
		t.Fatalf("no reject storm detected: %+v", s.dets)
	}
}

func TestAmountOutlier(t *testing.T) {
	s := newStream(Config{}, 6)
	s.warm(60)
	sent := false
	s.window(100, 0.02, 0, func() float64 {
		if !sent {
			sent = true
			return 250000
		}
		return s.amount()
	})
	d := find(s.dets, SeriesAmount, "high")
	if d == nil || d.Value != 250000 {
		t.Fatalf("no amount outlier detected: %+v", s.dets)
	}
	if len(s.dets) != 1 {
		t.Fatalf("want only the outlier, got %+v", s.dets)
	}
}

// TestWarmup: nothing is judged before Warmup windows, however odd.
func TestWarmup(t *testing.T) {
	s := newStream(Config{Warmup: 10}, 7)
	for range 9 {
		s.normal()
	}
	s.window(1000, 0.5, 0.5, s.amount)
	for _, d := range s.dets {
		if d.Series != SeriesAmount {
			t.Fatalf("window series judged during warm-up: %+v", d)
		}
	}
}

// TestSensitivity: a lower sensitivity flags a moderate spike a higher one
// lets pass.
func TestSensitivity(t *testing.T) {
	for _, c := range []struct {
		k    float64
		want bool
	}{{4, true}, {12, false}} {
		s := newStream(Config{Sensitivity: c.k}, 8)
		for range 60 {
			s.normal()
		}
		s.dets = nil // a low sensitivity may flag ordinary noise too; judge the last window only
		s.window(180, 0.02, 0.005, s.amount)
		if got := find(s.dets, SeriesVolume, "spike") != nil; got != c.want {
			t.Errorf("sensitivity %g: spike detected %v, want %v", c.k, got, c.want)
		}
	}
}
