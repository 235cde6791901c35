package metrics

import "testing"

func TestAlertsFiring(t *testing.T) {
	m := New()
	set := m.AlertsFiring()
	set("gap", 2)
	set("disk_low", 0)
	m.AlertsFiring()("gap", 3) // a second setter shares the family
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "tally_alerts_firing" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			got[mt.GetLabel()[0].GetValue()] = mt.GetGauge().GetValue()
		}
	}
	if len(got) != 2 || got["gap"] != 3 || got["disk_low"] != 0 {
		t.Fatalf("tally_alerts_firing %v", got)
	}
	var nilM *Metrics
	if nilM.AlertsFiring() != nil {
		t.Fatal("a nil Metrics has no gauge")
	}
}
