package settle

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// Never pay a statement twice, in the engine (docs/payouts.md).
//
// The index keeps p/<statement hash> → id of the payout_run entry paying it.
// The engine (settle/engine, Engine.operator) refuses a payout_run naming a
// statement found there — or paid earlier in the same batch, or in the
// previous batch still committing — as an exception paid_twice. The keys are
// not in the ledger message's state record: like an entry's own dedup
// record, they follow from the segment's payout_run entries, and
// applyLedger derives them from the entries (live commit and catch-up
// alike), so an index rebuilt from TALLY_LEDGER has them. An index built
// before them is completed once at the partition's start (derivePaid).
//
// The check is exact because every payout_run comes from (_tally, _tally):
// one provider, so one partition, whose single lease-fenced writer sees every
// earlier payout_run in its index or overlay. If payout_runs ever reached two
// partitions (a changed partition count moving provider _tally), the
// writers would not see each other's keys — the same limit as the (provider,
// id) dedup — and `tally verify` (audit.ErrPaidTwice) stays the check of
// the whole ledger.

// getPaid reads the payout_run paying statement through the overlay: this
// batch, the batch committing (prev), then the index snapshot. "" = unpaid.
func (b *batch) getPaid(db *badger.DB, statement string) (string, error) {
	if by, ok := b.paid[statement]; ok {
		return by, nil
	}
	if b.prev != nil {
		if by, ok := b.prev.paid[statement]; ok {
			return by, nil
		}
	}
	var by string
	err := b.view(db, func(t *badger.Txn) error {
		var e error
		by, e = getPaidKey(t, statement)
		return e
	})
	return by, err
}

func getPaidKey(t *badger.Txn, statement string) (string, error) {
	it, err := t.Get(keyPaid(statement))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	v, err := it.ValueCopy(nil)
	return string(v), err
}

// putPaid records in t the statements payout_run entry e pays; any other
// entry is ignored. A statement already recorded keeps its first payer: a
// ledger of an earlier build may pay one twice (tally verify says so), and
// the earlier payment is the one to name.
func putPaid(t *badger.Txn, e *store.Entry) error {
	if e.Tx.Type != txn.PayoutRun {
		return nil
	}
	p, err := txn.ParsePayoutRun(e.Tx) // store validation parsed it already
	if err != nil {
		return fmt.Errorf("payout_run %s: %w", e.Tx.ID, err)
	}
	for _, h := range p.Statements {
		by, err := getPaidKey(t, h)
		if err != nil {
			return err
		}
		if by == "" {
			if err := t.Set(keyPaid(h), []byte(e.Tx.ID)); err != nil {
				return err
			}
		}
	}
	return nil
}

// PaidBy returns the id of the payout_run entry that pays statement (its
// hex SHA-256) according to the index, or "".
func (x *Index) PaidBy(statement string) (string, error) {
	var by string
	err := x.db.View(func(t *badger.Txn) error {
		var e error
		by, e = getPaidKey(t, statement)
		return e
	})
	return by, err
}

// derivePaid completes the p/ keys of partition p from its local ledger
// when they may be incomplete: y/<p> holds the applied ledger sequence
// (l/<p>) up to which they are complete, written by every applyLedger of
// this build in the same transaction as l/<p>. An index built before the p/
// keys has no y/<p>; an index a build without them applied to since (a
// rollback, then this build again) has y/<p> behind l/<p>. Either way the
// local ledger is scanned. It runs at the partition's start, after Recover
// (the local segments are the ones the index covers) and before catch-up,
// which derives the rest through applyLedger. An index that holds nothing of
// p yet needs no scan: every entry will reach it through applyLedger. A
// crash in the middle repeats the scan, which writes the same keys (the
// first payer is kept).
func (x *Index) derivePaid(led *store.Ledger, p uint32, fresh bool) (int, error) {
	done := false
	var applied uint64
	if err := x.db.View(func(t *badger.Txn) error {
		var err error
		if applied, err = getU64(t, keyApplied(p)); err != nil {
			return err
		}
		it, err := t.Get(keyPaidDone(p))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			// A one-byte value is this check's first form (no sequence): scan.
			done = len(v) == 8 && binary.BigEndian.Uint64(v) == applied
			return nil
		})
	}); err != nil || done {
		return 0, err
	}
	runs := 0
	if !fresh {
		size := led.Head(p).Size
		const chunk = 4096
		for start := uint64(0); start < size; start += chunk {
			es, err := led.Entries(p, start, min(start+chunk, size), 0)
			if err != nil {
				return runs, fmt.Errorf("derive paid statements of partition %d: %w", p, err)
			}
			for i := range es {
				if es[i].Tx.Type != txn.PayoutRun {
					continue
				}
				runs++
				if err := x.db.Update(func(t *badger.Txn) error { return putPaid(t, &es[i].Entry) }); err != nil {
					return runs, fmt.Errorf("derive paid statements of partition %d: %w", p, err)
				}
			}
		}
	}
	return runs, x.db.Update(func(t *badger.Txn) error { return t.Set(keyPaidDone(p), be64(applied)) })
}
