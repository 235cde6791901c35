// Package packaging_test checks the Dockerfile and the systemd unit in this
// directory: the machine that runs the tests may have no Docker daemon, so
// the Dockerfile is checked for what matters (multi-stage, static build of
// ./cmd/tally, small non-root final image); the unit is checked for its
// required keys and, where systemd-analyze exists, verified by systemd.
package packaging_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, runs []string
	var user string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "FROM "):
			froms = append(froms, l)
			user = "" // USER applies per stage
		case strings.HasPrefix(l, "RUN "):
			runs = append(runs, l)
		case strings.HasPrefix(l, "USER "):
			user = strings.TrimPrefix(l, "USER ")
		}
	}
	if len(froms) < 2 {
		t.Fatalf("%d FROM lines: want a multi-stage build", len(froms))
	}
	final := froms[len(froms)-1]
	if !strings.Contains(final, "distroless/static") && !strings.HasPrefix(final, "FROM scratch") {
		t.Errorf("final stage %q: want distroless/static or scratch", final)
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Errorf("final stage USER %q: want a non-root user", user)
	}
	build := regexp.MustCompile(`CGO_ENABLED=0 go build .*\./cmd/tally$`)
	found := false
	for _, r := range runs {
		found = found || build.MatchString(r)
	}
	if !found {
		t.Errorf("no RUN line matching %s in %q", build, runs)
	}
	// The build image's Go is at least go.mod's.
	mod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	img := regexp.MustCompile(`FROM golang:(\d+\.\d+)`).FindStringSubmatch(froms[0])
	if want == nil || img == nil || !versionAtLeast(img[1], string(want[1])) {
		t.Errorf("build stage %q: want golang:%s or later (go.mod)", froms[0], want[1])
	}
}

func versionAtLeast(have, want string) bool {
	var h1, h2, w1, w2 int
	if _, err := fmtSscan(have, &h1, &h2); err != nil {
		return false
	}
	if _, err := fmtSscan(want, &w1, &w2); err != nil {
		return false
	}
	return h1 > w1 || h1 == w1 && h2 >= w2
}

// unit parses a systemd unit into section → key → values.
func unit(t *testing.T, b []byte) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	sec := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			sec = l[1 : len(l)-1]
			out[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || sec == "" {
				t.Fatalf("tally.service:%d: %q is not key=value in a section", n, l)
			}
			out[sec][k] = append(out[sec][k], v)
		}
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("tally.service")
	if err != nil {
		t.Fatal(err)
	}
	u := unit(t, b)
	for _, k := range []struct{ sec, key string }{
		{"Unit", "Description"}, {"Service", "ExecStart"}, {"Service", "User"},
		{"Service", "Restart"}, {"Service", "TimeoutStopSec"}, {"Install", "WantedBy"},
	} {
		if len(u[k.sec][k.key]) == 0 {
			t.Errorf("[%s] %s missing", k.sec, k.key)
		}
	}
	if es := u["Service"]["ExecStart"]; len(es) != 1 || !strings.HasPrefix(es[0], "/usr/local/bin/tally node --config ") {
		t.Errorf("ExecStart %q: want /usr/local/bin/tally node --config FILE", es)
	}
	if us := u["Service"]["User"]; len(us) == 1 && (us[0] == "root" || us[0] == "0") {
		t.Error("the unit runs as root")
	}
	if ks := u["Service"]["KillSignal"]; len(ks) == 1 && ks[0] != "SIGTERM" && ks[0] != "SIGINT" {
		t.Errorf("KillSignal %s: tally drains on SIGTERM or SIGINT", ks[0])
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze on this machine: keys checked, unit not verified by systemd")
	}
	// systemd-analyze verify checks that the executables exist: point them
	// at /bin/true, as tally is not installed here.
	dir := t.TempDir()
	p := filepath.Join(dir, "tally.service")
	if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("/usr/local/bin/tally"), []byte("/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", p).CombinedOutput()
	// It exits 0 on unknown keys but prints them: any output is a finding.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func fmtSscan(s string, a, b *int) (int, error) { return fmt.Sscanf(s, "%d.%d", a, b) }
