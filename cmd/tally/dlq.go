package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tally-mesh/tally/ingest"
)

func init() {
	register(command{"dlq", "list --data DIR [--provider P] [--code C] [--limit N] [--json] | show --data DIR N", "rejected payloads kept by an ingest node (node stopped)", 45, cmdDLQ})
}

// dlqJSON is a dead letter as printed: the payload as text when it is
// UTF-8, else base64.
type dlqJSON struct {
	N             uint64 `json:"n"`
	At            string `json:"at"`
	Provider      string `json:"provider"`
	Code          string `json:"code"`
	Reason        string `json:"reason"`
	Payload       string `json:"payload,omitempty"`
	PayloadBase64 []byte `json:"payload_base64,omitempty"`
	Truncated     bool   `json:"truncated,omitempty"`
}

// cmdDLQ reads the bounded dead-letter store of a stopped ingest node:
// `tally dlq list` prints the newest first (filtered by provider and code),
// `tally dlq show N` prints one with its payload.
func cmdDLQ(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if err := helpOnly("dlq", args, stdout, stderr); err != nil {
		return err
	}
	if len(args) == 0 || (args[0] != "list" && args[0] != "show") {
		return usageError{"usage: tally dlq list|show --data DIR ..."}
	}
	sub := args[0]
	fs := newFlags("dlq "+sub, stdout, stderr)
	data := fs.String("data", "", "the ingest node's data directory (holds ingest/wal)")
	provider := fs.String("provider", "", "list: only this provider")
	code := fs.String("code", "", "list: only this rejection code")
	limit := fs.Int("limit", 50, "list: at most this many, newest first (0 = all)")
	asJSON := fs.Bool("json", false, "list: one JSON object per line")
	keyFile := atRestKeyFlag(fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *data == "" {
		return usageError{"dlq needs --data DIR"}
	}
	key, err := readAtRestKey(*keyFile)
	if err != nil {
		return err
	}
	d, err := ingest.OpenDeadLettersKey(filepath.Join(*data, "ingest", "wal"), key)
	if err != nil {
		return atRestHint(err, *keyFile)
	}
	defer d.Close()
	if sub == "show" {
		if fs.NArg() != 1 {
			return usageError{"usage: tally dlq show --data DIR N"}
		}
		n, err := strconv.ParseUint(fs.Arg(0), 10, 64)
		if err != nil {
			return usageError{"N must be a dead-letter number from tally dlq list"}
		}
		dl, err := d.Get(n)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(withText(dl))
	}
	var out []ingest.DeadLetter
	err = d.Each(func(dl ingest.DeadLetter) (bool, error) {
		if (*provider == "" || dl.Provider == *provider) && (*code == "" || dl.Code == *code) {
			out = append(out, dl)
			if *limit > 0 && len(out) > *limit {
				out = out[1:] // keep the newest
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	first, next := d.Range()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for i := len(out) - 1; i >= 0; i-- {
			if err := enc.Encode(withText(out[i])); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(stdout, "%d dead letters held (numbers %d-%d); showing %d, newest first\n", next-first, first, max(next, 1)-1, len(out))
	fmt.Fprintf(stdout, "%-8s %-24s %-16s %-20s %s\n", "n", "at", "provider", "code", "reason")
	for i := len(out) - 1; i >= 0; i-- {
		dl := out[i]
		fmt.Fprintf(stdout, "%-8d %-24s %-16s %-20s %s\n", dl.N, dl.At.Format("2006-01-02T15:04:05.000Z"), dl.Provider, dl.Code, clipLine(dl.Reason, 80))
	}
	return nil
}

func withText(dl ingest.DeadLetter) dlqJSON {
	j := dlqJSON{N: dl.N, At: dl.At.Format(time.RFC3339Nano), Provider: dl.Provider, Code: dl.Code, Reason: dl.Reason, Truncated: dl.Truncated}
	if utf8.Valid(dl.Payload) {
		j.Payload = string(dl.Payload)
	} else {
		j.PayloadBase64 = dl.Payload
	}
	return j
}

func clipLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
