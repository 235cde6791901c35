// Package badgermem sizes the memory a Badger database of tally holds: its
// memtables and its two caches. That memory is the part of a node's
// resident set that grows with load and with the store's size unless it is
// bounded, so every store sets it explicitly, from configuration
// (docs/config.md: ingest.wal_* and settle.index_*).
//
// What is not counted here: Badger mmaps its SST and value-log files, so
// the pages of them the process touched show as file-backed resident memory
// (RssFile). The kernel can drop those pages at any time; they are page
// cache, not heap.
package badgermem

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Memory is one Badger database's memory budget.
type Memory struct {
	// MemTableBytes is one memtable (a skiplist arena, allocated whole).
	// It also bounds one commit: a Badger transaction may hold 15% of it.
	MemTableBytes int64
	// MemTables is how many memtables may be in memory at once: the one
	// being written and the full ones waiting for their flush to L0.
	MemTables int
	// BlockCacheBytes caches decompressed (and decrypted) SST blocks; Badger
	// needs one because tally's stores are compressed.
	BlockCacheBytes int64
	// IndexCacheBytes caches SST indices and bloom filters. Badger's 0
	// ("keep every index in memory") grows with the store; tally never uses it.
	IndexCacheBytes int64
}

// Bytes is the most the budget lets Badger hold (the caches may hold
// somewhat more while an entry is being evicted).
func (m Memory) Bytes() int64 {
	return m.MemTableBytes*int64(m.MemTables) + m.BlockCacheBytes + m.IndexCacheBytes
}

// Limits of a budget: below them Badger stalls or refuses to open.
const (
	MinMemTableBytes = 4 << 20
	MaxMemTableBytes = 1 << 30
	MinCacheBytes    = 1 << 20
	MaxMemTables     = 16
)

// Check reports the first field outside its limits, named after the
// Or fills the zero (or negative) fields of m from d: a store's defaults
// under what its config leaves unset.
func (m Memory) Or(d Memory) Memory {
	if m.MemTableBytes <= 0 {
		m.MemTableBytes = d.MemTableBytes
	}
	if m.MemTables <= 0 {
		m.MemTables = d.MemTables
	}
	if m.BlockCacheBytes <= 0 {
		m.BlockCacheBytes = d.BlockCacheBytes
	}
	if m.IndexCacheBytes <= 0 {
		m.IndexCacheBytes = d.IndexCacheBytes
	}
	return m
}

// configuration key prefix (e.g. "settle.index_").
func (m Memory) Check(prefix string) error {
	switch {
	case m.MemTableBytes < MinMemTableBytes || m.MemTableBytes > MaxMemTableBytes:
		return fmt.Errorf("%smemtable_bytes %d: use %d bytes (4MiB) to 1GiB", prefix, m.MemTableBytes, int64(MinMemTableBytes))
	case m.MemTables < 2 || m.MemTables > MaxMemTables:
		return fmt.Errorf("%smemtables %d: use 2 to %d (one is written while another flushes)", prefix, m.MemTables, MaxMemTables)
	case m.BlockCacheBytes < MinCacheBytes:
		return fmt.Errorf("%sblock_cache_bytes %d: use at least 1MiB (the store is compressed, Badger needs a block cache)", prefix, m.BlockCacheBytes)
	case m.IndexCacheBytes < MinCacheBytes:
		return fmt.Errorf("%sindex_cache_bytes %d: use at least 1MiB (0, Badger's unbounded default, is not offered)", prefix, m.IndexCacheBytes)
	}
	return nil
}

// Apply sets the budget on o.
func (m Memory) Apply(o badger.Options) badger.Options {
	return o.WithMemTableSize(m.MemTableBytes).
		WithNumMemtables(m.MemTables).
		WithBlockCacheSize(m.BlockCacheBytes).
		WithIndexCacheSize(m.IndexCacheBytes)
}
