// Package atrest is tally's encryption at rest of its Badger stores (the
// edge WAL with its dead letters, the settle index): Badger's own AES
// encryption, turned on the same way everywhere, and the rotation of the
// master key (docs/security.md, "Encryption at rest").
//
// Badger encrypts SST blocks and value-log entries with data keys (AES-CTR).
// The data keys live in the KEYREGISTRY file, encrypted under the master key
// the operator gives (16, 24 or 32 bytes: AES-128/192/256). Badger makes a
// new data key every rotation duration by itself; older data keys stay in
// the registry while data encrypted with them remains. Changing the master
// key therefore needs no re-encryption of the data: RotateKey rewrites the
// registry under the new key (what the badger CLI's "rotate" does).
package atrest

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// indexCacheMin is the index cache set when a store has none: Badger requires
// one with encryption (decrypted table indexes are cached, not re-read).
const indexCacheMin = 16 << 20

// Apply turns on encryption in o when key is set (nil = plain, o
// unchanged). rotation is the data-key rotation (0 = Badger's 10 days).
// Opening an encrypted directory without its key or with another key
// fails with badger.ErrEncryptionKeyMismatch, and so does opening a plain
// directory with a key: a key can be added only to a new store.
func Apply(o badger.Options, key []byte, rotation time.Duration) badger.Options {
	if len(key) == 0 {
		return o
	}
	o = o.WithEncryptionKey(key)
	if rotation > 0 {
		o = o.WithEncryptionKeyRotationDuration(rotation)
	}
	if o.IndexCacheSize <= 0 {
		o = o.WithIndexCacheSize(indexCacheMin)
	}
	return o
}

// RotateKey re-encrypts the Badger store in dir from oldKey to newKey: it
// opens the store with oldKey (which proves the key and that no process has
// it open: Badger locks its directory), closes it, and rewrites the key
// registry under newKey (written to a temp file, fsynced, renamed, the
// directory fsynced). Data files are not rewritten: they are encrypted with
// data keys, which the registry holds. The node must stay stopped until
// RotateKey returns. Both keys must be 16, 24 or 32 bytes.
func RotateKey(dir string, oldKey, newKey []byte) error {
	if len(oldKey) == 0 || len(newKey) == 0 {
		return errors.New("rotate key: both keys are required (encrypting a plain store or decrypting one is not a rotation)")
	}
	o := badger.DefaultOptions(dir).WithLogger(nil)
	db, err := badger.Open(Apply(o, oldKey, 0))
	if err != nil {
		return fmt.Errorf("rotate key: open %s with the old key: %w", dir, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("rotate key: close %s: %w", dir, err)
	}
	ko := badger.KeyRegistryOptions{Dir: dir, ReadOnly: true, EncryptionKey: oldKey, EncryptionKeyRotationDuration: 10 * 24 * time.Hour}
	kr, err := badger.OpenKeyRegistry(ko)
	if err != nil {
		return fmt.Errorf("rotate key: read key registry: %w", err)
	}
	defer kr.Close()
	ko.EncryptionKey = newKey
	if err := badger.WriteKeyRegistry(kr, ko); err != nil {
		return fmt.Errorf("rotate key: write key registry: %w", err)
	}
	return nil
}
