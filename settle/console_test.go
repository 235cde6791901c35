package settle

import (
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
)

// TestRecentExceptions: the newest exceptions across partitions, newest
// first, also when a later partition holds more than max of them.
func TestRecentExceptions(t *testing.T) {
	idx, err := OpenIndex(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// Partition 0: exceptions at minutes 10..14 (the newest); partition 3:
	// minutes 0..19 except 10..14 (many, mostly older); partition 1: none.
	put := func(p uint32, minute int) {
		e := Exception{Kind: "conflict", ID: fmt.Sprintf("p%d-m%d", p, minute), At: t0.Add(time.Duration(minute) * time.Minute), Partition: p}
		if err := idx.db.Update(func(txn *badger.Txn) error { return setJSON(txn, keyException(p, e.At, 0), e) }); err != nil {
			t.Fatal(err)
		}
	}
	for m := 10; m < 15; m++ {
		put(0, m)
	}
	for m := 0; m < 20; m++ {
		if m < 10 || m >= 15 {
			put(3, m)
		}
	}
	for _, c := range []struct {
		max  int
		want []string
	}{
		{0, nil},
		{3, []string{"p3-m19", "p3-m18", "p3-m17"}},
		{7, []string{"p3-m19", "p3-m18", "p3-m17", "p3-m16", "p3-m15", "p0-m14", "p0-m13"}},
		{100, nil}, // all 20, checked for order below
	} {
		got, err := idx.RecentExceptions(c.max)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range got {
			ids = append(ids, e.ID)
		}
		if c.max == 100 {
			if len(got) != 20 {
				t.Fatalf("max 100: %d exceptions, want 20", len(got))
			}
			for i := 1; i < len(got); i++ {
				if got[i].At.After(got[i-1].At) {
					t.Fatalf("max 100: not newest first: %v", ids)
				}
			}
			continue
		}
		if fmt.Sprint(ids) != fmt.Sprint(c.want) {
			t.Errorf("max %d: %v, want %v", c.max, ids, c.want)
		}
	}
}

// TestExceptionByID: an exception's id (RecentExceptionRefs) reads it back;
// malformed, non-canonical and unknown ids find nothing.
func TestExceptionByID(t *testing.T) {
	idx, err := OpenIndex(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	at := time.Date(2026, 11, 1, 0, 0, 0, 5, time.UTC)
	e := Exception{Kind: "conflict", ID: "tx-1", Provider: "p", At: at, Partition: 2}
	if err := idx.db.Update(func(txn *badger.Txn) error { return setJSON(txn, keyException(2, at, 1), e) }); err != nil {
		t.Fatal(err)
	}
	refs, err := idx.RecentExceptionRefs(10)
	if err != nil || len(refs) != 1 {
		t.Fatalf("refs %v, %v", refs, err)
	}
	want := fmt.Sprintf("x-2-%d-1", at.UnixNano())
	if refs[0].ID != want || refs[0].Exception.ID != "tx-1" {
		t.Fatalf("ref %+v, want id %s", refs[0], want)
	}
	got, found, err := idx.ExceptionByID(want)
	if err != nil || !found || got.ID != "tx-1" {
		t.Fatalf("ExceptionByID(%s) = %+v %v %v", want, got, found, err)
	}
	for _, bad := range []string{"", "x-2", "x-02-" + fmt.Sprint(at.UnixNano()) + "-1", want + "x", "x-2-1-1", "y-2-1-1"} {
		if _, found, err := idx.ExceptionByID(bad); found || err != nil {
			t.Fatalf("ExceptionByID(%q) found %v err %v", bad, found, err)
		}
	}
}
