package settle

import "testing"

// TestFetchSize: fetches are sized so a segment ends near SegmentMaxEntries
// even when every message carries a full forward batch (a backlog), never
// FetchBatch messages of 500 records into one segment.
func TestFetchSize(t *testing.T) {
	n := &Node{cfg: Config{SegmentMaxEntries: 2000, FetchBatch: 256}}
	for _, tc := range []struct {
		name       string
		recsPerMsg int
		entries    int
		want       int
	}{
		{"first fetch assumes full batches", 0, 0, 4},
		{"full batches", 500, 0, 4},
		{"full batches, segment half full", 500, 1000, 2},
		{"segment full: still one", 500, 2500, 1},
		{"single records", 1, 0, 256},
		{"single records near the end", 1, 1990, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &worker{n: n, recsPerMsg: tc.recsPerMsg}
			if got := w.fetchSize(tc.entries); got != tc.want {
				t.Errorf("fetchSize(%d) with %d records per message = %d, want %d", tc.entries, tc.recsPerMsg, got, tc.want)
			}
		})
	}
	w := &worker{n: n}
	for range 20 {
		w.noteRecords(1)
	}
	if w.recsPerMsg != 1 {
		t.Errorf("estimate after single-record messages = %d, want 1", w.recsPerMsg)
	}
}
