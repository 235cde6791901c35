package ingest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/internal/atrest"
	"github.com/tally-mesh/tally/internal/badgerlog"
)

// DeadLetter is one rejected payload kept for inspection: the dead-letter
// store holds the last Config.DLQMax of them (x/<n> keys, oldest trimmed).
type DeadLetter struct {
	N         uint64    `json:"n"` // its number; increasing, never reused
	At        time.Time `json:"at"`
	Provider  string    `json:"provider"`
	Code      string    `json:"code"`
	Reason    string    `json:"reason"`
	Payload   []byte    `json:"payload"`             // as received (clipped to payload_bytes)
	Truncated bool      `json:"truncated,omitempty"` // Payload was clipped
}

// ErrNoDeadLetter means the number is not (or no longer) in the store.
var ErrNoDeadLetter = errors.New("no such dead letter")

// DeadLetters reads the dead-letter store of a stopped node's WAL.
type DeadLetters struct {
	db          *badger.DB
	first, next uint64
}

// OpenDeadLetters opens the WAL in walDir read-only. Badger locks the
// directory: the node using it must be stopped.
func OpenDeadLetters(walDir string) (*DeadLetters, error) { return OpenDeadLettersKey(walDir, nil) }

// OpenDeadLettersKey is OpenDeadLetters for a WAL encrypted with key
// (Config.EncryptionKey).
func OpenDeadLettersKey(walDir string, key []byte) (*DeadLetters, error) {
	if _, err := os.Stat(walDir); err != nil {
		return nil, fmt.Errorf("open dead letters: %w", err)
	}
	opts := badger.DefaultOptions(walDir).
		WithReadOnly(true).           // inspection never writes
		WithNumVersionsToKeep(1).     // as the node opens it (openDB)
		WithValueThreshold(64 << 10). // idem
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(8 << 20).
		WithMetricsEnabled(false).
		WithLogger(badgerlog.New(hclog.NewNullLogger()))
	opts = atrest.Apply(opts, key, 0)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open wal %s read-only (is the node still running?): %w", walDir, err)
	}
	d := &DeadLetters{db: db}
	err = db.View(func(tx *badger.Txn) error {
		v, ok, err := get(tx, []byte(keyDLQ))
		if err != nil || !ok {
			return err
		}
		if len(v) != 16 {
			return fmt.Errorf("%w: %s holds %d bytes", ErrCorrupt, keyDLQ, len(v))
		}
		d.first, d.next = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read dead-letter range: %w", err)
	}
	return d, nil
}

// Range is the numbers held: first ≤ n < next.
func (d *DeadLetters) Range() (first, next uint64) { return d.first, d.next }

// Each calls fn for every dead letter from the oldest kept, in order, until fn
// returns false or an error.
func (d *DeadLetters) Each(fn func(DeadLetter) (bool, error)) error {
	return d.db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxDead), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(deadKey(d.first)); it.Valid(); it.Next() { // Seek past trimmed (deleted) numbers
			k := it.Item().Key()
			dl, err := decodeDead(k, it.Item())
			if err != nil {
				return err
			}
			more, err := fn(dl)
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}

// Get returns dead letter n.
func (d *DeadLetters) Get(n uint64) (DeadLetter, error) {
	var dl DeadLetter
	err := d.db.View(func(tx *badger.Txn) error {
		it, err := tx.Get(deadKey(n))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: %d (held: %d-%d)", ErrNoDeadLetter, n, d.first, max(d.next, 1)-1)
		}
		if err != nil {
			return err
		}
		dl, err = decodeDead(deadKey(n), it)
		return err
	})
	return dl, err
}

func decodeDead(k []byte, it *badger.Item) (DeadLetter, error) {
	var raw deadLetter
	if err := it.Value(func(v []byte) error { return json.Unmarshal(v, &raw) }); err != nil {
		return DeadLetter{}, fmt.Errorf("%w: dead letter %x: %v", ErrCorrupt, k, err)
	}
	return DeadLetter{N: binary.BigEndian.Uint64(k[len(pfxDead):]), At: raw.At, Provider: raw.Provider, Code: raw.Code,
		Reason: raw.Reason, Payload: raw.Payload, Truncated: raw.Truncated}, nil
}

// Close closes the WAL; idempotent.
func (d *DeadLetters) Close() error {
	if d.db == nil {
		return nil
	}
	err := d.db.Close()
	d.db = nil
	return err
}
