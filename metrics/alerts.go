package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// AlertsFiring registers tally_alerts_firing{kind} and returns the setter
// the alert manager calls after each change; nil on a nil Metrics.
func (m *Metrics) AlertsFiring() func(kind string, n int) {
	if m == nil {
		return nil
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tally_alerts_firing",
		Help: "Alert states firing on this node, by kind (docs/alerts.md).",
	}, []string{"kind"})
	if err := m.reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err) // a programming error: a conflicting family
		}
		g = are.ExistingCollector.(*prometheus.GaugeVec)
	}
	return func(kind string, n int) { g.WithLabelValues(kind).Set(float64(n)) }
}
