package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Retention: records the hub has acknowledged stay in the WAL for
// Config.Retention, so the replay service can serve them when settlement
// finds a gap (a batch lost between the edge and TALLY_TX). Then the GC
// deletes them with their dedup keys, in bounded batches, from the
// provider's retention floor r/<p> upwards:
//
//   - only records at or below the *persisted* cursor c/<p> (read in the GC's
//     own transaction), so a crash can never leave the forwarder's restart
//     point below the floor;
//   - a dedup key only if it still points at the deleted record;
//   - the deletions, the new floor and m/freed in one Badger transaction;
//   - above RetentionHighWater buffered bytes, forwarded records go early,
//     oldest first, until the WAL is below the mark again (counted in
//     Stats.GCEarly and logged): the budget protects the disk before the
//     replay window.
//
// Records are stored packed per group (keys.go), so retention deletes
// whole groups: a group goes only when all of it is at or below the persisted
// cursor and (without pressure) older than the retention time.
//
// Group values live in Badger's value log (ValueThreshold, wal.go): after a
// pass that deleted anything, RunValueLogGC reclaims value-log space.

// vlogGCRounds bounds the value-log GC calls per pass (each rewrites at most one file).
const vlogGCRounds = 8

// loadFloors restores every provider's retention floor.
func (n *Node) loadFloors() error {
	return n.wal.db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxFloor), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() { // r/ keys are overwritten, never deleted: no tombstones
			k := it.Item().KeyCopy(nil)
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			f, err := readU64(k, v)
			if err != nil {
				return err
			}
			p := string(k[len(pfxFloor):])
			ps := n.provider(p)
			if f > ps.cursor.Load()+1 {
				return fmt.Errorf("%w: provider %s retention floor %d is past its cursor %d", ErrCorrupt, p, f, ps.cursor.Load())
			}
			ps.floor.Store(f)
		}
		return nil
	})
}

// first is the first sequence ps still holds.
func (ps *provState) first() uint64 { return max(ps.floor.Load(), 1) }

// gcPressureGap is the shortest time between two retention passes woken by
// the high-water mark (the GC interval still applies when it is shorter).
const gcPressureGap = time.Second

// runGC runs retention every GCInterval until stop is closed, and also when
// a commit leaves the WAL above the retention high-water mark (gcWake), at
// most every gcPressureGap: under pressure the GC deletes a little often
// instead of a minute's worth at once, which would compete with commits and,
// at a high rate, let the WAL reach its budget (buffer_full) in between.
func (n *Node) runGC(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(n.cfg.GCInterval)
	defer t.Stop()
	var failLog rateLimit
	var last time.Time
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-n.gcWake:
			if wait := min(gcPressureGap, n.cfg.GCInterval) - time.Since(last); wait > 0 {
				w := time.NewTimer(wait)
				select {
				case <-stop:
					w.Stop()
					return
				case <-w.C:
				}
			}
		}
		last = time.Now()
		if _, err := n.gc(time.Now(), stop); err != nil {
			if k, ok := failLog.allow(time.Now()); ok {
				n.log.Error("retention pass failed", "error", err, "failures", k)
			}
		}
	}
}

// gc runs one retention pass and returns how many records it deleted.
func (n *Node) gc(now time.Time, stop <-chan struct{}) (int, error) {
	cutoff := now.Add(-n.cfg.Retention).UnixNano()
	n.mu.Lock()
	provs := make([]*provState, 0, len(n.provs))
	for _, ps := range n.provs {
		provs = append(provs, ps)
	}
	n.mu.Unlock()
	total, early := 0, 0
	var firstErr error
	// Age first, for everyone; then, while above the high-water mark, early.
	for _, pressure := range []bool{false, true} {
		for progress := true; progress; {
			progress = false
			for _, ps := range provs {
				if pressure && n.wal.used() <= n.cfg.RetentionHighWater {
					break
				}
				select {
				case <-stop:
					return total, firstErr
				default:
				}
				k, err := n.gcBatch(ps, cutoff, pressure)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if k > 0 {
					progress = true
					total += k
					if pressure {
						early += k
					}
				}
			}
			if pressure && n.wal.used() <= n.cfg.RetentionHighWater {
				break
			}
		}
	}
	if early > 0 { // at most once per logEvery: under pressure the GC runs every second
		k := n.gcEarlyUnlogged.Add(int64(early))
		if last := n.gcEarlyLogged.Load(); now.UnixNano()-last >= int64(logEvery) && n.gcEarlyLogged.CompareAndSwap(last, now.UnixNano()) {
			n.gcEarlyUnlogged.Add(-k)
			n.log.Warn("above the retention high-water mark: deleted forwarded records before their retention time",
				"records", k, "buffered", n.wal.used(), "high_water", n.cfg.RetentionHighWater)
		}
	}
	if total > 0 {
		for range vlogGCRounds {
			if n.wal.db.RunValueLogGC(0.5) != nil { // ErrNoRewrite: nothing (more) to reclaim
				break
			}
		}
	}
	return total, firstErr
}

// gcBatch deletes ps's forwarded groups from its floor, whole groups of at
// most about GCBatch records together (at least one group), in one
// transaction. Without pressure it stops at the first group younger than
// cutoff (groups are in accept order); it never deletes a group that is not
// wholly at or below the persisted cursor.
func (n *Node) gcBatch(ps *provState, cutoff int64, pressure bool) (int, error) {
	n.replayMu.Lock() // a replay reads from the floor: never delete under it
	defer n.replayMu.Unlock()
	p := ps.name
	var deleted int
	var freed int64
	var floor uint64
	err := n.wal.db.Update(func(tx *badger.Txn) error {
		deleted, freed = 0, 0
		v, ok, err := get(tx, cursorKey(p))
		if err != nil || !ok {
			return err // nothing acknowledged and persisted yet: nothing to delete
		}
		cursor, err := readU64(cursorKey(p), v)
		if err != nil {
			return err
		}
		floor = ps.first()
		if floor > cursor {
			return nil
		}
		// Group values are in the value log: read them one at a time, in place.
		it := tx.NewIterator(badger.IteratorOptions{Prefix: recordPrefix(p)})
		type victim struct {
			key  []byte
			ids  []string
			size int64
		}
		var victims []victim
		want, records := floor, 0
		for it.Seek(groupKey(p, floor)); it.Valid() && records < n.cfg.GCBatch; it.Next() {
			k := it.Item().KeyCopy(nil)
			vc := victim{key: k, size: int64(len(k)) + it.Item().ValueSize()}
			var g group
			if err := it.Item().Value(func(v []byte) error {
				var err error
				if g, err = splitGroup(k, v); err != nil {
					return err
				}
				vc.ids = make([]string, len(g.payloads))
				for i, pl := range g.payloads {
					vc.ids[i] = recordID(pl)
				}
				return nil
			}); err != nil {
				it.Close()
				return err
			}
			if g.first != want {
				it.Close()
				return fmt.Errorf("%w: provider %s record %d missing above the retention floor (next group %d-%d)", ErrCorrupt, p, want, g.first, g.last)
			}
			if g.last > cursor || (!pressure && g.at >= cutoff) {
				break
			}
			victims = append(victims, vc)
			want = g.last + 1
			records += len(vc.ids)
		}
		it.Close()
		for _, vc := range victims {
			if err := tx.Delete(vc.key); err != nil {
				return err
			}
			freed += vc.size
			first := binary.BigEndian.Uint64(vc.key[len(vc.key)-8:]) - uint64(len(vc.ids)) + 1
			for i, id := range vc.ids {
				if id == "" {
					continue
				}
				dk := dedupKey(p, id)
				dv, ok, err := get(tx, dk)
				if err != nil {
					return err
				}
				if s, _, good := splitDedup(dv); ok && good && s == first+uint64(i) {
					if err := tx.Delete(dk); err != nil {
						return err
					}
					freed += int64(len(dk) + len(dv))
				}
			}
		}
		deleted = int(want - floor)
		if deleted == 0 {
			return nil
		}
		floor = want
		if err := tx.Set(floorKey(p), u64(floor)); err != nil {
			return err
		}
		return tx.Set([]byte(keyFreed), u64(uint64(n.wal.freed.Load()+freed)))
	})
	if err != nil {
		return 0, fmt.Errorf("retention of provider %s: %w", p, err)
	}
	if deleted > 0 {
		ps.floor.Store(floor)
		n.wal.freed.Add(freed)
		n.gcDeleted.Add(uint64(deleted))
		if pressure {
			n.gcEarly.Add(uint64(deleted))
		}
	}
	return deleted, nil
}

// recordID extracts "id" from a canonical payload ("" if it has none, which
// a stored record always has).
func recordID(canonical []byte) string {
	// The canonical form starts with {"id":"…", (txn.Tx.Canonical); decode
	// just that field rather than the whole transaction.
	var v struct {
		ID string `json:"id"`
	}
	if !bytes.HasPrefix(canonical, []byte(`{"id":`)) || json.Unmarshal(canonical, &v) != nil {
		return ""
	}
	return v.ID
}

// retainStats fills the retention and replay figures of s.
func (n *Node) retainStats(s *Stats) {
	s.GCDeleted, s.GCEarly = n.gcDeleted.Load(), n.gcEarly.Load()
	s.Replays, s.Replayed = n.replays.Load(), n.replayed.Load()
	s.RetainedFrom = map[string]uint64{}
	n.mu.Lock()
	for p, ps := range n.provs {
		s.RetainedFrom[p] = ps.first()
	}
	n.mu.Unlock()
}
