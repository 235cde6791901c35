package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/shopspring/decimal"
)

// Problem is one configuration error: where, which key, what value, how to fix it.
type Problem struct {
	Pos   string // file:line, "" when the value came from a default or a flag
	Key   string
	Value string
	Fix   string
}

func (p Problem) String() string {
	pos := ""
	if p.Pos != "" {
		pos = p.Pos + ": "
	}
	if p.Value == "" {
		return fmt.Sprintf("%s%s: %s", pos, p.Key, p.Fix)
	}
	return fmt.Sprintf("%s%s = %s: %s", pos, p.Key, p.Value, p.Fix)
}

// Errors is every problem found in one load.
type Errors []Problem

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return fmt.Sprintf("%d config problem(s):\n  %s", len(e), strings.Join(lines, "\n  "))
}

// Load reads an HCL config file over the defaults and validates the result.
// Relative paths in the file (data_dir, settle.rules, settle.signing_key)
// resolve against the file's directory.
func Load(path string) (Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(src, path)
}

// Parse is Load for config text already in memory; filename is used in messages
// and to resolve relative paths. On problems it returns all of them (Errors,
// in file order) with the config as far as it could be read, for diagnostics
// only: never run a node on it.
func Parse(src []byte, filename string) (Config, error) {
	// Collect every problem before answering: a syntax error or an unknown
	// key does not hide the rest. hclsyntax recovers after a syntax error
	// and returns the body it could read; gohcl decodes every argument it
	// knows even when some are unknown.
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, filename)
	errs := diagErrors(diags)
	if f == nil || f.Body == nil {
		return Config{}, errs
	}
	var file File
	errs = append(errs, diagErrors(gohcl.DecodeBody(f.Body, nil, &file))...)
	body, _ := f.Body.(*hclsyntax.Body)
	l := loader{body: body, base: filepath.Dir(filename), cfg: Default()}
	l.apply(&file)
	l.applyCluster(&file)
	l.applySecurity(&file) // config/security.go: TLS, secrets by reference, encryption, log format
	l.applyOps(&file)
	l.cfg.check(func(key, val, fix string) { l.bad(key, val, fix) })
	errs = append(errs, l.errs...)
	if len(errs) > 0 {
		// The partial config goes back with the problems, so that
		// --check-config can still check the files it names.
		return l.cfg, dedupe(errs)
	}
	return l.cfg, nil
}

// dedupe drops a problem reported twice (a syntax error is seen by the
// parser and again by the decoder).
func dedupe(errs Errors) Errors {
	sort.SliceStable(errs, func(i, j int) bool { return posLess(errs[i].Pos, errs[j].Pos) })
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		if k := e.String(); !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// posLess orders "file:line" positions by file, then line; problems
// without a position go last.
func posLess(a, b string) bool {
	if a == "" || b == "" {
		return a != "" && b == ""
	}
	ia, ib := strings.LastIndexByte(a, ':'), strings.LastIndexByte(b, ':')
	if a[:ia+1] != b[:ib+1] {
		return a[:ia+1] < b[:ib+1]
	}
	na, _ := strconv.Atoi(a[ia+1:])
	nb, _ := strconv.Atoi(b[ib+1:])
	return na < nb
}

type loader struct {
	body *hclsyntax.Body
	base string
	cfg  Config
	errs Errors
}

func (l *loader) bad(key, val, fix string) {
	l.errs = append(l.errs, Problem{Pos: l.pos(key), Key: key, Value: val, Fix: fix})
}

// pos finds file:line of a dotted key ("ingest.group_wait") in the syntax tree.
func (l *loader) pos(key string) string {
	if l.body == nil {
		return ""
	}
	parts := strings.Split(key, ".")
	b := l.body
	for i := 0; i < len(parts)-1; i++ {
		var next *hclsyntax.Block
		for _, x := range b.Blocks {
			if x.Type != parts[i] {
				continue
			}
			if len(x.Labels) == 1 { // labeled block ("provider.<name>.<attr>"); a label may hold dots
				j := labelEnd(parts, i+1, x.Labels[0])
				if j < 0 {
					continue
				}
				if j == len(parts) { // the key names the block itself
					return fmt.Sprintf("%s:%d", x.TypeRange.Filename, x.TypeRange.Start.Line)
				}
				i = j - 1
			}
			next = x
			break
		}
		if next == nil {
			return ""
		}
		b = next.Body
	}
	if a, ok := b.Attributes[parts[len(parts)-1]]; ok {
		return fmt.Sprintf("%s:%d", a.SrcRange.Filename, a.SrcRange.Start.Line)
	}
	return ""
}

// labelEnd returns j such that parts[from:j] joined by dots is label, or -1.
func labelEnd(parts []string, from int, label string) int {
	for j := from + 1; j <= len(parts); j++ {
		if strings.Join(parts[from:j], ".") == label {
			return j
		}
	}
	return -1
}

func (l *loader) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.base, p)
}

func (l *loader) dur(key string, s *string, dst *time.Duration) {
	if s == nil {
		return
	}
	d, err := time.ParseDuration(*s)
	if err != nil || d < 0 {
		l.bad(key, strconv.Quote(*s), `use a duration such as "250ms", "5s" or "2m"`)
		return
	}
	*dst = d
}

func (l *loader) size(key string, s *string, dst *int64) {
	if s == nil {
		return
	}
	n, err := ParseSize(*s)
	if err != nil {
		l.bad(key, strconv.Quote(*s), `use a size such as "512MiB", "10GiB" or a byte count`)
		return
	}
	*dst = n
}

func setInt(v *int, dst *int) {
	if v != nil {
		*dst = *v
	}
}

func setStr(v *string, dst *string) {
	if v != nil {
		*dst = *v
	}
}

func (l *loader) apply(f *File) {
	c := &l.cfg
	setStr(f.NodeID, &c.NodeID)
	if f.DataDir != nil {
		c.DataDir = l.path(*f.DataDir)
	}
	setStr(f.Prefix, &c.Prefix)
	setStr(f.LogLevel, &c.LogLevel)
	setStr(f.MetricsListen, &c.MetricsListen)
	switch strings.ToLower(c.LogLevel) {
	case "trace", "debug", "info", "warn", "error", "off":
	default:
		l.bad("log_level", strconv.Quote(c.LogLevel), "use trace, debug, info, warn, error or off")
	}
	if f.Roles != nil {
		c.Roles = f.Roles
	}
	if h := f.Hub; h != nil {
		if h.Listen != nil {
			host, port, err := splitHostPort(*h.Listen)
			if err != nil {
				l.bad("hub.listen", strconv.Quote(*h.Listen), `use host:port such as "127.0.0.1:4222" (port 0 picks a free one)`)
			} else {
				c.Hub.Host, c.Hub.Port = host, port
			}
		}
		if h.SyncInterval != nil {
			if *h.SyncInterval == "always" {
				c.Hub.SyncAlways, c.Hub.SyncInterval = true, 0
			} else {
				c.Hub.SyncAlways = false
				l.dur("hub.sync_interval", h.SyncInterval, &c.Hub.SyncInterval)
			}
		}
		l.size("hub.max_store", h.MaxStore, &c.Hub.MaxStore)
		for _, u := range h.NodeUsers {
			c.Hub.NodeUsers = append(c.Hub.NodeUsers, HubUser(u))
		}
	}
	if n := f.NATS; n != nil {
		setStr(n.URL, &c.NATS.URL)
		setStr(n.User, &c.NATS.User)
		setStr(n.Password, &c.NATS.Password)
		if n.Creds != nil {
			c.NATS.Creds = l.path(*n.Creds)
		}
	}
	if s := f.Streams; s != nil {
		if s.Create != nil {
			c.Streams.Create = *s.Create
		}
		setInt(s.Partitions, &c.Streams.Partitions)
		setInt(s.Replicas, &c.Streams.Replicas)
		l.dur("streams.duplicate_window", s.DuplicateWindow, &c.Streams.DuplicateWindow)
		l.dur("streams.tx_max_age", s.TxMaxAge, &c.Streams.TxMaxAge)
		setStr(s.Compression, &c.Streams.Compression)
	}
	if i := f.Ingest; i != nil {
		setInt(i.PayloadBytes, &c.Ingest.Limits.PayloadBytes)
		setInt(i.BatchMax, &c.Ingest.BatchMax)
		setInt(i.IDLen, &c.Ingest.Limits.IDLen)
		setInt(i.FieldLen, &c.Ingest.Limits.FieldLen)
		setInt(i.MetaKeys, &c.Ingest.Limits.MetaKeys)
		setInt(i.MetaBytes, &c.Ingest.Limits.MetaBytes)
		if i.AmountMax != nil {
			d, err := amount(*i.AmountMax)
			if err != nil {
				l.bad("ingest.amount_max", strconv.Quote(*i.AmountMax), `use a decimal string such as "1000000000000"`)
			} else {
				c.Ingest.Limits.AmountMax = d
			}
		}
		setInt(i.GroupMax, &c.Ingest.GroupMax)
		setInt(i.QueueMax, &c.Ingest.QueueMax)
		l.size("ingest.pending_bytes", i.PendingBytes, &c.Ingest.PendingBytes)
		l.dur("ingest.group_wait", i.GroupWait, &c.Ingest.GroupWait)
		l.size("ingest.budget_bytes", i.BudgetBytes, &c.Ingest.BudgetBytes)
		setInt(i.ForwardBatch, &c.Ingest.ForwardBatch)
		setInt(i.ForwardWindow, &c.Ingest.ForwardWindow)
		l.dur("ingest.publish_timeout", i.PublishTimeout, &c.Ingest.PublishTimeout)
		setInt(i.DLQMax, &c.Ingest.DLQMax)
		if i.HTTPListen != nil {
			if _, _, err := splitHostPort(*i.HTTPListen); err != nil && *i.HTTPListen != "" {
				l.bad("ingest.http_listen", strconv.Quote(*i.HTTPListen), `use host:port such as "127.0.0.1:8080" (port 0 picks a free one), or "" for none`)
			} else {
				c.Ingest.HTTPListen = *i.HTTPListen
			}
		}
		l.size("ingest.http_body_bytes", i.HTTPBodyBytes, &c.Ingest.RequestBytes) // old name of request_bytes
		l.size("ingest.request_bytes", i.RequestBytes, &c.Ingest.RequestBytes)
		if i.HTTPBodyBytes != nil && i.RequestBytes != nil {
			l.bad("ingest.http_body_bytes", strconv.Quote(*i.HTTPBodyBytes), "remove it: it is the old name of ingest.request_bytes, which is set too")
		}
		l.dur("ingest.retention", i.Retention, &c.Ingest.Retention)
		l.dur("ingest.gc_interval", i.GCInterval, &c.Ingest.GCInterval)
		setInt(i.GCBatch, &c.Ingest.GCBatch)
		l.size("ingest.retention_high_water", i.RetentionHighWater, &c.Ingest.RetentionHighWater)
		setInt(i.ReplayMax, &c.Ingest.ReplayMax)
		setInt(i.ReplayIDsMax, &c.Ingest.ReplayIDsMax)
		l.size("ingest.wal_memtable_bytes", i.WALMemtableBytes, &c.Ingest.WALMemory.MemTableBytes)
		setInt(i.WALMemtables, &c.Ingest.WALMemory.MemTables)
		l.size("ingest.wal_block_cache_bytes", i.WALBlockCacheBytes, &c.Ingest.WALMemory.BlockCacheBytes)
		l.size("ingest.wal_index_cache_bytes", i.WALIndexCacheBytes, &c.Ingest.WALMemory.IndexCacheBytes)
		setStr(i.WALCompression, &c.Ingest.WALCompression)
	}
	for _, p := range f.Providers {
		pr := Provider{Name: p.Name}
		setStr(p.Dialect, &pr.Dialect)
		setStr(p.NATSUser, &pr.NATSUser)
		setStr(p.NATSPassword, &pr.NATSPassword)
		setStr(p.NATSNkey, &pr.NATSNkey)
		setStr(p.HTTPToken, &pr.HTTPToken)
		c.Providers = append(c.Providers, pr)
	}
	if s := f.Settle; s != nil {
		if s.Rules != nil {
			c.Settle.Rules = l.path(*s.Rules)
		}
		if s.Partitions != nil {
			c.Settle.Partitions = s.Partitions
		}
		setInt(s.SegmentMaxEntries, &c.Settle.SegmentMaxEntries)
		l.dur("settle.segment_max_age", s.SegmentMaxAge, &c.Settle.SegmentMaxAge)
		setInt(s.FetchBatch, &c.Settle.FetchBatch)
		l.size("settle.index_memtable_bytes", s.IndexMemtableBytes, &c.Settle.IndexMemory.MemTableBytes)
		setInt(s.IndexMemtables, &c.Settle.IndexMemory.MemTables)
		l.size("settle.index_block_cache_bytes", s.IndexBlockCacheBytes, &c.Settle.IndexMemory.BlockCacheBytes)
		l.size("settle.index_index_cache_bytes", s.IndexIndexCacheBytes, &c.Settle.IndexMemory.IndexCacheBytes)
		l.dur("settle.orphan_timeout", s.OrphanTimeout, &c.Settle.OrphanTimeout)
		l.dur("settle.ack_wait", s.AckWait, &c.Settle.AckWait)
		setStr(s.Origin, &c.Settle.Origin)
		if s.SigningKey != nil {
			c.Settle.SigningKey = l.path(*s.SigningKey)
		}
		setStr(s.AuditListen, &c.Settle.AuditListen)
		setInt(s.AuditMaxEntries, &c.Settle.AuditMaxEntries)
		if s.Leases != nil {
			c.Settle.Leases = *s.Leases
		}
		l.dur("settle.lease_ttl", s.LeaseTTL, &c.Settle.LeaseTTL)
		if s.Pipeline != nil {
			c.Settle.Pipeline = *s.Pipeline
		}
		setStr(s.ConsoleListen, &c.Settle.ConsoleListen)
		if s.ConsoleUsers != nil {
			c.Settle.ConsoleUsers = l.path(*s.ConsoleUsers)
		}
		l.size("settle.console_max_upload", s.ConsoleMaxUpload, &c.Settle.ConsoleMaxUpload)
		l.dur("settle.console_replay_wait", s.ConsoleReplayWait, &c.Settle.ConsoleReplayWait)
		setInt(s.ConsoleQueueExceptions, &c.Settle.ConsoleQueueExceptions)
		setInt(s.ConsoleQueueAnomalies, &c.Settle.ConsoleQueueAnomalies)
		setInt(s.ConsoleQueueBreaks, &c.Settle.ConsoleQueueBreaks)
		l.dur("settle.oplog_ack_wait", s.OplogAckWait, &c.Settle.OplogAckWait)
		l.dur("settle.oplog_publish_timeout", s.OplogPublishTimeout, &c.Settle.OplogPublishTimeout)
		if s.ConsoleDualApprovalAbove != nil {
			d, err := decimal.NewFromString(*s.ConsoleDualApprovalAbove)
			if err != nil {
				l.bad("settle.console_dual_approval_above", *s.ConsoleDualApprovalAbove, `use a decimal string ≥ 0 such as "10000"`)
			} else {
				c.Settle.ConsoleDualApprovalAbove = d
			}
		}
	}
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", 0, fmt.Errorf("no port")
	}
	port, err := strconv.Atoi(s[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port")
	}
	return s[:i], port, nil
}

// ParseSize reads "512MiB", "10GiB", "64KB" or a plain byte count.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func diagErrors(diags hcl.Diagnostics) Errors {
	var out Errors
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		pos := ""
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d", d.Subject.Filename, d.Subject.Start.Line)
		}
		out = append(out, Problem{Pos: pos, Key: d.Summary, Value: "", Fix: d.Detail})
	}
	return out
}
