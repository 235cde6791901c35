package badgermem

import (
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func TestApplyAndCheck(t *testing.T) {
	m := Memory{MemTableBytes: 8 << 20, MemTables: 3, BlockCacheBytes: 2 << 20, IndexCacheBytes: 4 << 20}
	if err := m.Check("x."); err != nil {
		t.Fatal(err)
	}
	o := m.Apply(badger.DefaultOptions(""))
	if o.MemTableSize != 8<<20 || o.NumMemtables != 3 || o.BlockCacheSize != 2<<20 || o.IndexCacheSize != 4<<20 {
		t.Errorf("options %+v", o)
	}
	if got := m.Bytes(); got != 30<<20 {
		t.Errorf("Bytes() = %d, want 30 MiB", got)
	}
	for _, bad := range []Memory{
		{MemTableBytes: 1 << 20, MemTables: 3, BlockCacheBytes: 2 << 20, IndexCacheBytes: 4 << 20},
		{MemTableBytes: 8 << 20, MemTables: 1, BlockCacheBytes: 2 << 20, IndexCacheBytes: 4 << 20},
		{MemTableBytes: 8 << 20, MemTables: 3, BlockCacheBytes: 0, IndexCacheBytes: 4 << 20},
		{MemTableBytes: 8 << 20, MemTables: 3, BlockCacheBytes: 2 << 20, IndexCacheBytes: 0},
	} {
		if bad.Check("x.") == nil {
			t.Errorf("Check(%+v) = nil, want an error", bad)
		}
	}
}
