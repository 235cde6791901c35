package adapter

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/tally-mesh/tally/txn"
)

// csvBatch is the dialect of providers that upload a CSV file (RFC 4180,
// comma-separated, a header row naming the columns) over HTTP:
//
//	id,type,amount,currency,occurred_at,round,game
//	c-1,bet,10.00,EUR,2026-11-01T10:00:00Z,R1,book-of-x
//	c-2,win,4.50,EUR,2026-11-01T10:00:05Z,R1,book-of-x
//
// Columns carry the canonical field names in any order (id, type, amount,
// currency and occurred_at are required; round, parent, seq, game, category,
// jurisdiction, brand, affiliate, player optional; meta.<key> for meta
// entries). An empty cell means "absent". Amounts are decimal strings, times
// RFC 3339. A request is always a batch (one answer per data row, in order).
//
// Split returns each row as a self-contained two-line CSV (the header and
// that row), so a rejected row is kept in the dead-letter store with its
// column names.
type csvBatch struct{}

func init() { register(csvBatch{}) }

func (csvBatch) Name() string { return "csv" }

var (
	csvRequired = []string{"id", "type", "amount", "currency", "occurred_at"}
	csvOptional = []string{"round", "parent", "seq", "game", "category", "jurisdiction", "brand", "affiliate", "player"}
)

func csvKnown(col string) bool {
	if strings.HasPrefix(col, "meta.") && len(col) > len("meta.") {
		return true
	}
	for _, c := range append(csvRequired, csvOptional...) {
		if c == col {
			return true
		}
	}
	return false
}

// checkHeader reports the first problem of a header row.
func checkHeader(h []string) *txn.Error {
	seen := map[string]bool{}
	for i, c := range h {
		if !utf8.ValidString(c) {
			return reject(txn.CodeInvalidUTF8, "header column %d is not valid UTF-8", i+1)
		}
		if !csvKnown(c) {
			return reject(txn.CodeUnknownField, "column %d %q is not a canonical field (id, type, amount, currency, occurred_at, %s, meta.<key>)", i+1, clip(c), strings.Join(csvOptional, ", "))
		}
		if seen[c] {
			return reject(txn.CodeDuplicateField, "column %q appears more than once in the header: each column may be given once", clip(c))
		}
		seen[c] = true
	}
	for _, c := range csvRequired {
		if !seen[c] {
			return reject(txn.CodeMissingField, "header has no %q column", c)
		}
	}
	return nil
}

func newCSVReader(b []byte) *csv.Reader {
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1 // a short or long row is that row's rejection, not the file's
	r.ReuseRecord = false
	return r
}

func (csvBatch) Split(body []byte, contentType string, max int) ([][]byte, bool, *txn.Error) {
	switch mediaType(contentType) {
	case "", MediaCSV, "application/csv":
	default:
		return nil, true, unsupported(contentType, MediaCSV)
	}
	// One byte-order mark at the very start is the UTF-8 signature that
	// spreadsheet programs write; it is not data. Anywhere else it is.
	r := newCSVReader(bytes.TrimPrefix(body, []byte("\ufeff")))
	header, err := r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true, reject(txn.CodeMalformed, "empty CSV: no header row")
		}
		return nil, true, reject(txn.CodeMalformed, "CSV header: %s", csvErr(err))
	}
	if e := checkHeader(header); e != nil {
		return nil, true, e
	}
	var items [][]byte
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, true, reject(txn.CodeMalformed, "CSV: %s", csvErr(err))
		}
		if len(row) == 1 && row[0] == "" {
			continue // a blank line
		}
		if len(items) == max {
			return nil, true, reject(txn.CodeBatchTooLarge, "batch has more than %d rows", max)
		}
		items = append(items, csvItem(header, row))
	}
	if len(items) == 0 {
		return nil, true, reject(txn.CodeMalformed, "CSV has a header but no data rows")
	}
	return items, true, nil
}

// csvItem renders header and row as one self-contained two-line CSV.
func csvItem(header, row []string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(header) // writes to a bytes.Buffer cannot fail
	w.Write(row)
	w.Flush()
	return b.Bytes()
}

// csvErr is an encoding/csv error in tally's words (no Go names).
func csvErr(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d, column %d: %s", pe.Line, pe.Column, strings.TrimPrefix(pe.Err.Error(), "csv: "))
	}
	return "unreadable"
}

func (csvBatch) Decode(p []byte, lim txn.Limits) (txn.Tx, *txn.Error) {
	var id string
	tx, e := decodeCSV(p, lim, &id)
	return tx, e.WithID(id, lim)
}

// decodeCSV decodes one item of Split; *id is set to the id cell as soon as
// the row is read, so a rejection can echo it.
func decodeCSV(p []byte, lim txn.Limits, id *string) (txn.Tx, *txn.Error) {
	lim = withPayloadDefault(lim)
	if len(p) > lim.PayloadBytes+4096 { // the item repeats the header
		return txn.Tx{}, reject(txn.CodePayloadTooLarge, "row is %d bytes, limit is %d", len(p), lim.PayloadBytes)
	}
	r := newCSVReader(p)
	header, err := r.Read()
	if err != nil {
		return txn.Tx{}, reject(txn.CodeMalformed, "CSV header: %s", csvErr(err))
	}
	if e := checkHeader(header); e != nil {
		return txn.Tx{}, e
	}
	row, err := r.Read()
	if err != nil {
		return txn.Tx{}, reject(txn.CodeMalformed, "CSV row: %s", csvErr(err))
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		return txn.Tx{}, reject(txn.CodeMalformed, "more than one CSV row in one transaction")
	}
	if len(row) != len(header) {
		return txn.Tx{}, reject(txn.CodeMalformed, "row has %d cells, the header %d", len(row), len(header))
	}
	for i, col := range header {
		if col == "id" && utf8.ValidString(row[i]) {
			*id = row[i]
		}
	}
	for i, v := range row {
		if e := txn.CheckUTF8([]byte(v)); e != nil { // before anything reads the cell
			return txn.Tx{}, reject(txn.CodeInvalidUTF8, "column %s: %s", clip(header[i]), strings.TrimPrefix(e.Reason, "payload "))
		}
	}
	c := canonicalMap{}
	meta := map[string]string{}
	for i, col := range header {
		v := row[i]
		if v == "" {
			continue
		}
		switch {
		case strings.HasPrefix(col, "meta."):
			meta[strings.TrimPrefix(col, "meta.")] = v
		case col == "seq":
			s, e := integer("seq", json.RawMessage(v), false)
			if e != nil {
				return txn.Tx{}, e
			}
			c["seq"] = json.RawMessage(s)
		default:
			c[col] = v
		}
	}
	if len(meta) > 0 {
		c["meta"] = meta
	}
	for _, f := range csvRequired {
		if _, ok := c[f]; !ok {
			return txn.Tx{}, reject(txn.CodeMissingField, "%s is empty", f)
		}
	}
	if len(p) > lim.PayloadBytes {
		// header + row over the limit: judge the row's own cells
		n := 0
		for _, v := range row {
			n += len(v) + 1
		}
		if n > lim.PayloadBytes {
			return txn.Tx{}, reject(txn.CodePayloadTooLarge, "row is %d bytes, limit is %d", n, lim.PayloadBytes)
		}
	}
	tx, e := c.decode(lim)
	if e != nil && e.Code == txn.CodeMalformed {
		e.Reason = fmt.Sprintf("row: %s", e.Reason)
	}
	return tx, e
}
