package config

import (
	"strings"
	"testing"
)

// TestConsoleKeys: settle.console_tls and settle.console_max_upload load,
// default and are checked.
func TestConsoleKeys(t *testing.T) {
	c, err := Parse([]byte(`settle {
  rules              = "rules.hcl"
  console_listen     = "127.0.0.1:7390"
  console_max_upload = "2MiB"
  console_tls {
    cert_file = "/etc/tally/console.crt"
    key_file  = "/etc/tally/console.key"
  }
}
`), "t.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Settle.ConsoleMaxUpload != 2<<20 || c.Settle.ConsoleTLS.Cert != "/etc/tally/console.crt" || !c.Settle.ConsoleTLS.On() {
		t.Fatalf("console keys: %+v", c.Settle)
	}
	if d := Default(); d.Settle.ConsoleMaxUpload != DefaultConsoleMaxUpload || d.Settle.ConsoleTLS.On() {
		t.Fatalf("defaults: %+v", d.Settle)
	}
	for _, body := range []string{
		`console_max_upload = "10"`,
		`console_max_upload = "2GiB"`,
		`console_max_upload = "lots"`,
		"console_tls {\n key_file = \"k\"\n}",
		"console_tls {\n cert_file = \"c\"\n key_file = \"k\"\n client_auth = \"verify\"\n}",
	} {
		src := "settle {\n rules = \"r.hcl\"\n " + body + "\n}\n"
		if _, err := Parse([]byte(src), "t.hcl"); err == nil || !strings.Contains(err.Error(), "settle.console_") {
			t.Errorf("%s: %v, want an error naming the key", body, err)
		}
	}
}
