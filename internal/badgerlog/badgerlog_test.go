package badgerlog

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestLevels: Badger's levels map one down (info is debug noise) and the
// trailing newline Badger writes is gone.
func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	l := New(hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace, DisableTime: true}))
	l.Errorf("e %d\n", 1)
	l.Warningf("w %d\n", 2)
	l.Infof("i %d\n", 3)
	l.Debugf("d %d\n", 4)
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"[ERROR] e 1", "[WARN]  w 2", "[DEBUG] i 3", "[TRACE] d 4"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %q, want %q", i, got[i], want[i])
		}
	}
}
