package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// splitRequest cuts a request body into transaction payloads. A body whose
// first non-space byte is '[' is a batch: a JSON array of at most batchMax
// elements, each returned as its raw bytes (txn.Decode judges each one). Any
// other body is one transaction, returned whole. A batch that is not valid
// JSON, is empty, or has more than batchMax elements is rejected as a whole.
func splitRequest(body []byte, batchMax int) (items [][]byte, batch bool, rej *txn.Error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return [][]byte{body}, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // the '['
		return nil, true, &txn.Error{Code: txn.CodeMalformed, Reason: fmt.Sprintf("batch is not a JSON array: %v", err)}
	}
	for dec.More() {
		if len(items) == batchMax {
			return nil, true, &txn.Error{Code: txn.CodeBatchTooLarge, Reason: fmt.Sprintf("batch has more than %d transactions", batchMax)}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, true, &txn.Error{Code: txn.CodeMalformed, Reason: fmt.Sprintf("batch element %d: %v", len(items), err)}
		}
		items = append(items, raw)
	}
	if _, err := dec.Token(); err != nil { // the ']'
		return nil, true, &txn.Error{Code: txn.CodeMalformed, Reason: fmt.Sprintf("batch is not a JSON array: %v", err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, true, &txn.Error{Code: txn.CodeMalformed, Reason: "trailing data after the batch array"}
	}
	if len(items) == 0 {
		return nil, true, &txn.Error{Code: txn.CodeMalformed, Reason: "empty batch"}
	}
	return items, true, nil
}

// encodeAnswers renders the reply: one object for a single transaction (or a
// request rejected as a whole), an array in input order for a batch.
func encodeAnswers(answers []wire.Answer, batch bool) []byte {
	var b []byte
	var err error
	if batch {
		b, err = json.Marshal(answers)
	} else {
		b, err = json.Marshal(answers[0])
	}
	if err != nil {
		panic("ingest: encoding answers: " + err.Error()) // strings and ints only: cannot fail
	}
	return b
}
