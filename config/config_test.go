package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExamplesLoad(t *testing.T) {
	// rules.hcl is a rule set (settle/rules parses it), not a node config.
	files := []string{"examples/single-node.hcl", "examples/edge.hcl", "examples/settle.hcl"}
	all, _ := filepath.Glob("examples/*.hcl")
	if len(all) != len(files)+1 {
		t.Errorf("examples/ has %v: a new example needs a case here", all)
	}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Errorf("Load(%s) = %v", f, err)
			continue
		}
		if len(c.Roles) == 0 || c.Streams.Partitions == 0 {
			t.Errorf("Load(%s) gave empty roles or partitions: %+v", f, c)
		}
	}
}

func TestLoadValues(t *testing.T) {
	src := `
node_id = "n1"
data_dir = "d"
roles = ["hub", "settle"]
hub {
  listen = "127.0.0.1:0"
  sync_interval = "10s"
}
ingest {
  group_wait = "5ms"
  budget_bytes = "2MiB"
  pending_bytes = "256KiB"
}
settle {
  rules = "r.hcl"
  partitions = [1, 2]
}
streams { partitions = 3 }
`
	c, err := Parse([]byte(src), "/etc/tally/x.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/etc/tally/d" || c.Settle.Rules != "/etc/tally/r.hcl" {
		t.Errorf("paths not resolved against the file: data_dir=%q rules=%q", c.DataDir, c.Settle.Rules)
	}
	if c.Hub.SyncAlways || c.Hub.SyncInterval != 10*time.Second || c.Hub.Port != 0 {
		t.Errorf("hub = %+v", c.Hub)
	}
	if c.Ingest.GroupWait != 5*time.Millisecond || c.Ingest.BudgetBytes != 2<<20 || c.Ingest.PendingBytes != 256<<10 {
		t.Errorf("ingest = %+v", c.Ingest)
	}
	if got := c.SettlePartitions(); len(got) != 2 || got[0] != 1 {
		t.Errorf("SettlePartitions() = %v, want [1 2]", got)
	}
	if c.Has("ingest") || !c.Has("hub") {
		t.Errorf("roles = %v", c.Roles)
	}
}

func TestLoadReportsEveryProblemWithLine(t *testing.T) {
	src := `node_id = "bad id"
roles = ["hub", "mystery"]
ingest {
  group_wait = "soon"
  batch_max = 0
}
settle {
  rules = "r.hcl"
  partitions = [9]
}
`
	_, err := Parse([]byte(src), "bad.hcl")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse = %v, want config.Errors", err)
	}
	want := []string{"bad.hcl:1: node_id", "bad.hcl:2: roles = mystery", "bad.hcl:4: ingest.group_wait", "bad.hcl:5: ingest.batch_max", "bad.hcl:9: settle.partitions = 9"}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not mention %q:\n%s", w, msg)
		}
	}
}

func TestUnknownKeyIsAnError(t *testing.T) {
	_, err := Parse([]byte("node_id = \"a\"\nfrobnicate = 1\n"), "u.hcl")
	if err == nil || !strings.Contains(err.Error(), "u.hcl:2") {
		t.Fatalf("Parse with unknown key = %v, want error at u.hcl:2", err)
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.hcl")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want ErrNotExist", err)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{{"1GiB", 1 << 30, true}, {"512MiB", 512 << 20, true}, {"64KB", 64000, true}, {"100", 100, true}, {"-1", 0, false}, {"x", 0, false}} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestLimits: the size limits are one set; max_payload derives from the
// request limit, and a request limit that cannot carry one forwarded record
// of a full-size payload, or passes NATS's 64 MiB, is refused at load.
func TestLimits(t *testing.T) {
	c := Default()
	c.Settle.Rules = "rules.hcl"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.MaxPayload(), c.Ingest.RequestBytes+4<<10; got != want {
		t.Errorf("max payload %d, want request_bytes + 4KiB = %d", got, want)
	}
	for _, tc := range []struct {
		name string
		src  string
		bad  string // key of the problem, "" = valid
	}{
		{"default", ``, ""},
		{"old name", `ingest { http_body_bytes = "1MiB" }`, ""},
		{"both names", `ingest {
  http_body_bytes = "1MiB"
  request_bytes = "1MiB"
}`, "ingest.http_body_bytes"},
		{"below one record", `ingest {
  payload_bytes = 65536
  request_bytes = "256KiB"
}`, "ingest.request_bytes"},
		{"above nats", `ingest { request_bytes = "64MiB" }`, "ingest.request_bytes"},
		{"too small", `ingest { request_bytes = "1KiB" }`, "ingest.request_bytes"},
	} {
		src := "settle { rules = \"rules.hcl\" }\n" + tc.src
		c, err := Parse([]byte(src), "limits.hcl")
		if tc.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if tc.name == "old name" && c.Ingest.RequestBytes != 1<<20 {
				t.Errorf("%s: request bytes %d", tc.name, c.Ingest.RequestBytes)
			}
			continue
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 || errs[0].Key != tc.bad {
			t.Errorf("%s: %v, want a problem with %s", tc.name, err, tc.bad)
		}
	}
}

// TestConsoleDualApprovalAbove: the default, a configured value, and the
// refusals of a negative or malformed one.
func TestConsoleDualApprovalAbove(t *testing.T) {
	base := "roles = [\"hub\", \"settle\"]\nsettle {\n  rules = \"r.hcl\"\n%s}\n"
	c, err := Parse([]byte(fmt.Sprintf(base, "")), "a.hcl")
	if err != nil || c.Settle.ConsoleDualApprovalAbove.String() != "10000" {
		t.Fatalf("default %v, %v", c.Settle.ConsoleDualApprovalAbove, err)
	}
	c, err = Parse([]byte(fmt.Sprintf(base, "  console_dual_approval_above = \"2500.50\"\n")), "a.hcl")
	if err != nil || c.Settle.ConsoleDualApprovalAbove.String() != "2500.5" {
		t.Fatalf("2500.50: %v, %v", c.Settle.ConsoleDualApprovalAbove, err)
	}
	for _, bad := range []string{"-1", "ten", "1e3x"} {
		_, err := Parse([]byte(fmt.Sprintf(base, "  console_dual_approval_above = \""+bad+"\"\n")), "a.hcl")
		if err == nil || !strings.Contains(err.Error(), "settle.console_dual_approval_above") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestBadgerMemoryKeys: the stores' Badger memory is read from the file,
// defaults apply to what is not set, and a value outside the limits is a
// problem named by its key.
func TestBadgerMemoryKeys(t *testing.T) {
	c, err := Parse([]byte(`
ingest {
  wal_memtable_bytes = "64MiB"
  wal_memtables = 4
}
settle {
  rules = "r.hcl"
  index_block_cache_bytes = "32MiB"
  index_index_cache_bytes = "48MiB"
}
`), "m.hcl")
	if err != nil {
		t.Fatal(err)
	}
	w, x := c.Ingest.WALMemory, c.Settle.IndexMemory
	if w.MemTableBytes != 64<<20 || w.MemTables != 4 || w.BlockCacheBytes != 16<<20 || w.IndexCacheBytes != 16<<20 {
		t.Errorf("ingest WAL memory %+v", w)
	}
	if x.MemTableBytes != 16<<20 || x.MemTables != 5 || x.BlockCacheBytes != 32<<20 || x.IndexCacheBytes != 48<<20 {
		t.Errorf("settle index memory %+v", x)
	}
	_, err = Parse([]byte(`
ingest {
  wal_memtable_bytes = "8MiB"
}
settle {
  rules = "r.hcl"
  index_memtables = 1
  index_index_cache_bytes = "0"
}
`), "bad.hcl")
	for _, k := range []string{"ingest.wal_memtable_bytes", "settle.index_memtables", "settle.index_index_cache_bytes"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("Parse = %v, want a problem with %s", err, k)
		}
	}
}

// TestStreamsCompression: s2 unless the file says none; anything else is
// refused with the key, its line and the values that work.
func TestStreamsCompression(t *testing.T) {
	base := "node_id = \"n1\"\nroles = [\"hub\"]\n"
	c, err := Parse([]byte(base), "c.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Streams.Compression != "s2" {
		t.Errorf("default streams.compression = %q, want s2", c.Streams.Compression)
	}
	c, err = Parse([]byte(base+"streams { compression = \"none\" }\n"), "c.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Streams.Compression != "none" {
		t.Errorf("streams.compression = %q, want none", c.Streams.Compression)
	}
	_, err = Parse([]byte(base+"streams {\n  compression = \"zstd\"\n}\n"), "c.hcl")
	if err == nil || !strings.Contains(err.Error(), `c.hcl:4: streams.compression = "zstd"`) || !strings.Contains(err.Error(), `"none"`) {
		t.Errorf("streams.compression = zstd: %v, want a line-numbered error naming the values", err)
	}
}

// TestSettlePipelineKey: settle.pipeline is on by default and can be turned off.
func TestSettlePipelineKey(t *testing.T) {
	base := "roles = [\"hub\", \"settle\"]\nsettle {\n  rules = \"r.hcl\"\n%s}\n"
	c, err := Parse([]byte(fmt.Sprintf(base, "")), "a.hcl")
	if err != nil || !c.Settle.Pipeline {
		t.Fatalf("default pipeline %v, %v", c.Settle.Pipeline, err)
	}
	c, err = Parse([]byte(fmt.Sprintf(base, "  pipeline = false\n")), "a.hcl")
	if err != nil || c.Settle.Pipeline {
		t.Fatalf("pipeline = false: %v, %v", c.Settle.Pipeline, err)
	}
}

// TestWALCompression: ingest.wal_compression is s2 unless the file says
// none; anything else is refused with the key, its line and the values that
// work.
func TestWALCompression(t *testing.T) {
	base := "node_id = \"n1\"\nroles = [\"ingest\"]\n"
	c, err := Parse([]byte(base), "c.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Ingest.WALCompression != "s2" {
		t.Errorf("default ingest.wal_compression = %q, want s2", c.Ingest.WALCompression)
	}
	c, err = Parse([]byte(base+"ingest { wal_compression = \"none\" }\n"), "c.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Ingest.WALCompression != "none" {
		t.Errorf("ingest.wal_compression = %q, want none", c.Ingest.WALCompression)
	}
	_, err = Parse([]byte(base+"ingest {\n  wal_compression = \"zstd\"\n}\n"), "c.hcl")
	if err == nil || !strings.Contains(err.Error(), `c.hcl:4: ingest.wal_compression = "zstd"`) || !strings.Contains(err.Error(), `"none"`) {
		t.Errorf("ingest.wal_compression = zstd: %v, want a line-numbered error naming the values", err)
	}
}
