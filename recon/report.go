package recon

import (
	"fmt"

	"github.com/tally-mesh/tally/ingest/adapter"
	"github.com/tally-mesh/tally/txn"
)

// Report formats: how the report file is framed. The dialect (adapter)
// decides how each transaction inside it is read.
const (
	FormatJSONL = "jsonl" // one transaction per line (canonical JSON, or a JSON dialect)
	FormatCSV   = "csv"   // RFC 4180 with a header row (the csv dialect)
)

// MaxReportRows bounds the transactions of one report.
const MaxReportRows = 2_000_000

// ReadReport splits and decodes a report with the ingest dialect called
// dialect ("" picks canonical for jsonl and csv for csv), exactly as ingest
// reads a batch of that dialect: the same Split and the same strict Decode
// with lim. A row the decoder refuses is returned as a Rejection (its code
// and reason), never repaired; a report that cannot be split at all is an
// error.
func ReadReport(body []byte, format, dialect string, lim txn.Limits) (rows []Row, rejected []Rejection, usedDialect string, err error) {
	var contentType string
	switch format {
	case FormatJSONL:
		contentType = adapter.MediaNDJSON
		if dialect == "" {
			dialect = adapter.Default
		}
	case FormatCSV:
		contentType = adapter.MediaCSV
		if dialect == "" {
			dialect = "csv"
		}
	default:
		return nil, nil, "", fmt.Errorf("report format %q: use %s or %s", format, FormatJSONL, FormatCSV)
	}
	a, ok := adapter.Lookup(dialect)
	if !ok {
		return nil, nil, "", fmt.Errorf("dialect %q: not one of %v", dialect, adapter.Names())
	}
	items, _, rej := a.Split(body, contentType, MaxReportRows)
	if rej != nil {
		return nil, nil, "", fmt.Errorf("report is not readable as %s in the %s dialect: %s: %s", format, dialect, rej.Code, rej.Reason)
	}
	for i, p := range items {
		tx, e := a.Decode(p, lim)
		if e != nil {
			rejected = append(rejected, Rejection{Row: i + 1, ID: e.ID, Code: string(e.Code), Reason: e.Reason})
			continue
		}
		rows = append(rows, Row{Row: i + 1, Tx: tx})
	}
	return rows, rejected, dialect, nil
}
