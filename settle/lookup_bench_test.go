package settle

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
)

// BenchmarkDedupLookup compares two ways to look up one fetched message's
// 100 dedup keys in an index of 600,000 records, all in tables: one
// Txn.Get per key (what batchState.Dedup does; bloom filters skip the
// tables that cannot hold a key) and the keys sorted and sought with one
// iterator (no bloom filters: every level's table is searched). new=100 are
// keys the index does not hold (the usual case: new transactions), new=0
// keys it does (redelivery). ns/op is per message.
func BenchmarkDedupLookup(b *testing.B) {
	dir := b.TempDir()
	idx, err := OpenIndex(dir, hclog.NewNullLogger())
	if err != nil {
		b.Fatal(err)
	}
	const n = 600_000
	wb := idx.db.NewWriteBatch()
	val := bytes.Repeat([]byte{7}, 60) // about a version-2 record
	for i := range n {
		if err := wb.Set(keyDedup("bench-1", fmt.Sprintf("b-%d", i*7919%n)), val); err != nil {
			b.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := idx.Close(); err != nil { // flushes the memtables: every record in a table
		b.Fatal(err)
	}
	if idx, err = OpenIndex(dir, hclog.NewNullLogger()); err != nil {
		b.Fatal(err)
	}
	defer idx.Close()
	b.Logf("%d records in %d tables", n, len(idx.db.Tables()))
	for _, fresh := range []int{0, 100} {
		keys := make([][]byte, 100)
		next := 0
		load := func() {
			for i := range keys {
				id := (next*101 + i*13) % n
				if i < fresh {
					keys[i] = keyDedup("bench-1", fmt.Sprintf("new-%d-%d", next, i))
				} else {
					keys[i] = keyDedup("bench-1", fmt.Sprintf("b-%d", id))
				}
			}
			next++
		}
		b.Run(fmt.Sprintf("new=%d/get", fresh), func(b *testing.B) {
			found := 0
			for b.Loop() {
				b.StopTimer()
				load()
				b.StartTimer()
				txn := idx.db.NewTransaction(false)
				for _, k := range keys {
					it, err := txn.Get(k)
					if err == nil {
						if err := it.Value(func([]byte) error { return nil }); err != nil {
							b.Fatal(err)
						}
						found++
					} else if err != badger.ErrKeyNotFound {
						b.Fatal(err)
					}
				}
				txn.Discard()
			}
			if want := (100 - fresh) * b.N; found != want {
				b.Fatalf("found %d, want %d", found, want)
			}
		})
		b.Run(fmt.Sprintf("new=%d/sorted-iterator", fresh), func(b *testing.B) {
			found := 0
			for b.Loop() {
				b.StopTimer()
				load()
				b.StartTimer()
				sorted := slices.Clone(keys)
				slices.SortFunc(sorted, bytes.Compare)
				txn := idx.db.NewTransaction(false)
				it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxDedup)})
				for _, k := range sorted {
					it.Seek(k)
					if it.Valid() && bytes.Equal(it.Item().Key(), k) {
						if err := it.Item().Value(func([]byte) error { return nil }); err != nil {
							b.Fatal(err)
						}
						found++
					}
				}
				it.Close()
				txn.Discard()
			}
			if want := (100 - fresh) * b.N; found != want {
				b.Fatalf("found %d, want %d", found, want)
			}
		})
	}
}
