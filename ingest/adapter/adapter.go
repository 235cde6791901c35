package adapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"sort"
	"strings"

	"github.com/tally-mesh/tally/txn"
)

// Adapter is one provider dialect.
type Adapter interface {
	// Name is the dialect's name in config (provider "x" { dialect = "..." }).
	Name() string
	// Split cuts a request body into one payload per transaction. contentType
	// is the HTTP Content-Type, or the NATS Content-Type header ("" when
	// absent). batch reports whether the request is a batch (answered with an
	// array) or one transaction (answered with one object). A request that
	// cannot be split (bad framing, more than max items, a media type the
	// dialect does not read) is rejected as a whole with rej set.
	Split(body []byte, contentType string, max int) (items [][]byte, batch bool, rej *txn.Error)
	// Decode turns one payload returned by Split into a validated transaction.
	Decode(payload []byte, lim txn.Limits) (txn.Tx, *txn.Error)
}

// Default is the dialect of providers that name none.
const Default = "canonical"

var registry = map[string]Adapter{}

func register(a Adapter) {
	if _, dup := registry[a.Name()]; dup {
		panic("adapter: dialect registered twice: " + a.Name())
	}
	registry[a.Name()] = a
}

// Lookup returns the dialect called name.
func Lookup(name string) (Adapter, bool) {
	a, ok := registry[name]
	return a, ok
}

// Names lists every registered dialect, sorted.
func Names() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Media types the JSON dialects read.
const (
	MediaJSON   = "application/json"
	MediaNDJSON = "application/x-ndjson"
	MediaCSV    = "text/csv"
)

// mediaType returns the lower-case media type of a Content-Type value, without
// parameters ("" for an empty value).
func mediaType(contentType string) string {
	if strings.TrimSpace(contentType) == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(contentType))
	}
	return mt
}

func unsupported(contentType string, want ...string) *txn.Error {
	return &txn.Error{Code: txn.CodeUnsupportedMedia, Reason: fmt.Sprintf("content type %q is not read by this provider's dialect; use %s", clip(contentType), strings.Join(want, " or "))}
}

// SplitJSON is Split for the JSON dialects:
//   - no content type or application/json: a body whose first non-space byte
//     is '[' is a batch, a JSON array of at most max elements, each returned
//     as its raw bytes; any other body is one transaction, returned whole;
//   - application/x-ndjson (also application/jsonl, application/x-jsonlines):
//     a batch with one transaction per non-blank line.
//
// A batch that does not parse, is empty, or has more than max elements is
// rejected as a whole.
func SplitJSON(body []byte, contentType string, max int) ([][]byte, bool, *txn.Error) {
	switch mediaType(contentType) {
	case "", MediaJSON, "text/json":
		return splitArray(body, max)
	case MediaNDJSON, "application/jsonl", "application/x-jsonlines", "application/ndjson":
		return splitLines(body, max)
	default:
		return nil, false, unsupported(contentType, MediaJSON, MediaNDJSON)
	}
}

func splitArray(body []byte, max int) (items [][]byte, batch bool, rej *txn.Error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return [][]byte{body}, false, nil
	}
	items, rej = splitElements(trimmed, max)
	if rej != nil && rej.Code == txn.CodeMalformed {
		// A bad byte between the elements: name it. Bad bytes inside an
		// element's strings are that element's own invalid_utf8 answer.
		if e := txn.CheckUTF8(body); e != nil {
			return nil, true, e
		}
	}
	return items, true, rej
}

func splitElements(trimmed []byte, max int) (items [][]byte, rej *txn.Error) {
	if items, ok := splitFast(trimmed, max); ok {
		return items, nil
	}
	return splitStrict(trimmed, max)
}

// splitStrict is splitElements through encoding/json: every body splitFast
// does not take, with the definite rejection and its reason.
func splitStrict(trimmed []byte, max int) (items [][]byte, rej *txn.Error) {
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // the '['
		return nil, &txn.Error{Code: txn.CodeMalformed, Reason: "batch is not a JSON array: " + syntaxMsg(err)}
	}
	for dec.More() {
		if len(items) == max {
			return nil, &txn.Error{Code: txn.CodeBatchTooLarge, Reason: fmt.Sprintf("batch has more than %d transactions", max)}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, &txn.Error{Code: txn.CodeMalformed, Reason: fmt.Sprintf("batch element %d: %s", len(items), syntaxMsg(err))}
		}
		items = append(items, raw)
	}
	if _, err := dec.Token(); err != nil { // the ']'
		return nil, &txn.Error{Code: txn.CodeMalformed, Reason: "batch is not a JSON array: " + syntaxMsg(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &txn.Error{Code: txn.CodeMalformed, Reason: "trailing data after the batch array"}
	}
	if len(items) == 0 {
		return nil, &txn.Error{Code: txn.CodeMalformed, Reason: "empty batch"}
	}
	return items, nil
}

// splitLines cuts NDJSON: every non-blank line is one item (a trailing "\r" is
// dropped). Lines are not parsed here; Decode judges each.
func splitLines(body []byte, max int) (items [][]byte, batch bool, rej *txn.Error) {
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(items) == max {
			return nil, true, &txn.Error{Code: txn.CodeBatchTooLarge, Reason: fmt.Sprintf("batch has more than %d transactions", max)}
		}
		items = append(items, line)
	}
	if len(items) == 0 {
		return nil, true, &txn.Error{Code: txn.CodeMalformed, Reason: "empty batch: no non-blank NDJSON line"}
	}
	return items, true, nil
}

// syntaxMsg is an encoding/json syntax error in plain words, with its
// offset; never a Go type or a package prefix.
func syntaxMsg(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (offset %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "the body ends early"
	}
	return "not valid JSON"
}

// clip keeps echoed input short in reasons.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
