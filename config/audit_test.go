package config

import (
	"strings"
	"testing"
)

func TestAuditListen(t *testing.T) {
	tests := []struct {
		name, src, want string // want: "" = valid, else a substring of the error
	}{
		{"default off", "settle {\n  rules = \"r.hcl\"\n}\n", ""},
		{"loopback", "settle {\n  rules = \"r.hcl\"\n  audit_listen = \"127.0.0.1:7380\"\n}\n", ""},
		{"no port", "settle {\n  rules = \"r.hcl\"\n  audit_listen = \"localhost\"\n}\n", "settle.audit_listen"},
		{"max entries zero", "settle {\n  rules = \"r.hcl\"\n  audit_max_entries = 0\n}\n", "settle.audit_max_entries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.src), "node.hcl")
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Parse = %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Parse = %v, want an error naming %s", err, tc.want)
			}
			if tc.want == "" && c.Settle.AuditMaxEntries != 1000 {
				t.Fatalf("audit_max_entries default = %d, want 1000", c.Settle.AuditMaxEntries)
			}
		})
	}
}
