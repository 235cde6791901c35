package ingest

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// migrateGroupMax bounds the records of one migrated group.
const migrateGroupMax = 1000

// migrate brings the WAL to layoutVersion at open, before anything reads it.
//
//   - m/layout = layoutVersion: nothing to do.
//   - m/layout above it: written by a newer tally; refused with a clear error
//     rather than misread.
//   - m/layout = 2: its groups are all plain, which layout 3 reads as they
//     are (groupcodec.go); the q/ scan below finds nothing and only m/layout
//     is rewritten.
//   - no m/layout: layout 1 (or a new WAL). Every q/<provider>/<seq> record
//     is repacked into g/ groups (records of one provider with consecutive
//     sequences and the same accept time, at most migrateGroupMax), in key
//     order. Each Badger transaction writes one group, deletes its q/ keys
//     and corrects m/bytes, so a crash in the middle leaves groups for a
//     prefix of each provider's records and q/ keys for the rest, and the
//     next open carries on. Dedup keys, counters, cursors and floors do not
//     change. m/layout is written last.
func (w *wal) migrate() error {
	var layout uint64
	err := w.db.View(func(tx *badger.Txn) error {
		v, ok, err := get(tx, []byte(keyLayout))
		if err != nil || !ok {
			return err
		}
		layout, err = readU64([]byte(keyLayout), v)
		return err
	})
	if err != nil {
		return fmt.Errorf("read wal layout: %w", err)
	}
	switch {
	case layout == layoutVersion:
		return nil
	case layout > layoutVersion:
		return fmt.Errorf("%w: the WAL has key layout %d, this tally reads layout %d: run the tally version that wrote it (or a newer one)", ErrCorrupt, layout, layoutVersion)
	}
	groups, records := 0, 0
	from := []byte(pfxOldRec)
	for {
		g, next, err := w.migrateOne(from)
		if err != nil {
			return fmt.Errorf("migrate wal to layout %d: %w", layoutVersion, err)
		}
		if next == nil {
			break
		}
		groups++
		records += g
		from = next
	}
	if err := w.db.Update(func(tx *badger.Txn) error {
		return tx.Set([]byte(keyLayout), u64(layoutVersion))
	}); err != nil {
		return fmt.Errorf("write wal layout: %w", err)
	}
	if records > 0 {
		w.log.Info("wal migrated to the packed-group layout", "layout", layoutVersion, "records", records, "groups", groups)
	}
	return nil
}

// migrateOne repacks the layout-1 records from key from on into one group
// and returns how many it moved and the key to continue from (nil: none left).
func (w *wal) migrateOne(from []byte) (int, []byte, error) {
	var (
		provider    string
		first, last uint64
		at          int64
		val         []byte
		oldKeys     [][]byte
		oldBytes    int64
		next        []byte
	)
	err := w.db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxOldRec)})
		defer it.Close()
		for it.Seek(from); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			rest := k[len(pfxOldRec):]
			slash := bytes.LastIndexByte(rest, '/')
			if slash < 0 || len(rest)-slash-1 != 8 {
				return fmt.Errorf("%w: layout-1 record key %q", ErrCorrupt, k)
			}
			p, seq := string(rest[:slash]), binary.BigEndian.Uint64(rest[slash+1:])
			var stop bool
			err := it.Item().Value(func(v []byte) error {
				if len(v) < 8 {
					return fmt.Errorf("%w: layout-1 record %q too short", ErrCorrupt, k)
				}
				a, canon := int64(binary.BigEndian.Uint64(v)), v[8:]
				if val != nil && (p != provider || seq != last+1 || a != at || len(oldKeys) >= migrateGroupMax ||
					int64(len(val)+len(canon)) > w.txnBytesMax/2 || int64(len(oldKeys)+2) > w.txnEntriesMax/2) {
					stop = true
					return nil
				}
				if val == nil {
					provider, first, at = p, seq, a
					val = groupStart(seq, a)
				}
				val = appendGroupRecord(val, canon)
				last = seq
				oldKeys = append(oldKeys, k)
				oldBytes += int64(len(k) + len(v))
				return nil
			})
			if err != nil {
				return err
			}
			if stop {
				break
			}
		}
		return nil
	})
	if err != nil || val == nil {
		return 0, nil, err
	}
	next = append(oldRecordPrefix(provider), u64(last+1)...)
	val = w.packGroup(val)
	err = w.db.Update(func(tx *badger.Txn) error {
		gk := groupKey(provider, last)
		if err := tx.Set(gk, val); err != nil {
			return err
		}
		for _, k := range oldKeys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		var bytesNow uint64
		if v, ok, err := get(tx, []byte(keyBytes)); err != nil {
			return err
		} else if ok {
			if bytesNow, err = readU64([]byte(keyBytes), v); err != nil {
				return err
			}
		}
		n := int64(bytesNow) - oldBytes + int64(len(gk)+len(val))
		return tx.Set([]byte(keyBytes), u64(uint64(max(n, 0))))
	})
	if err != nil {
		return 0, nil, fmt.Errorf("provider %s records %d-%d: %w", provider, first, last, err)
	}
	return len(oldKeys), next, nil
}
