package config

import (
	"strings"
	"testing"
)

func TestMetricsListen(t *testing.T) {
	tests := []struct {
		name, src, want string // want: "" = valid (and the address), else a substring of the error
		addr            string
	}{
		{"default off", "", "", ""},
		{"loopback", "metrics_listen = \"127.0.0.1:9464\"\n", "", "127.0.0.1:9464"},
		{"port 0", "metrics_listen = \"127.0.0.1:0\"\n", "", "127.0.0.1:0"},
		{"no port", "metrics_listen = \"localhost\"\n", "metrics_listen", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "roles = [\"hub\", \"ingest\"]\n" + tc.src
			c, err := Parse([]byte(src), "node.hcl")
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Parse = %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Parse = %v, want an error naming %s", err, tc.want)
			}
			if tc.want == "" && c.MetricsListen != tc.addr {
				t.Fatalf("MetricsListen = %q, want %q", c.MetricsListen, tc.addr)
			}
		})
	}
}
