package ingest

import (
	"encoding/json"

	"github.com/tally-mesh/tally/ingest/adapter"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// splitRequest is the canonical dialect's splitter without a content type
// (adapter.SplitJSON): one JSON object, or a JSON array of at most batchMax.
func splitRequest(body []byte, batchMax int) (items [][]byte, batch bool, rej *txn.Error) {
	return adapter.SplitJSON(body, "", batchMax)
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
