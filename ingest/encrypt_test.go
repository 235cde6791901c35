package ingest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/internal/atrest"
)

// secretMarker is a payload string the test looks for in the WAL's raw files.
const secretMarker = "player-7f3e-secret-marker"

// commitMarked writes records carrying secretMarker into a WAL at dir
// opened with key, and closes it.
func commitMarked(t *testing.T, dir, id string, key []byte, rotation time.Duration) {
	t.Helper()
	cfg := Config{NodeID: testNode, WALDir: dir, EncryptionKey: key, KeyRotation: rotation}.withDefaults()
	db, err := openDB(dir, hclog.NewNullLogger(), key, rotation, DefaultWALMemory)
	if err != nil {
		t.Fatal(err)
	}
	w := &wal{db: db, log: hclog.NewNullLogger(), cfg: cfg, txnBytesMax: db.MaxBatchSize() / 2, txnEntriesMax: db.MaxBatchCount() / 2}
	if _, err := w.load(); err != nil {
		t.Fatal(err)
	}
	it := testItem(id)
	it.canon = bytes.Replace(it.canon, []byte("9f2c41d7"), []byte(secretMarker), 1)
	it.raw = it.canon
	if res := w.commit([]*request{{provider: "p1", items: []item{it}}}, time.Now()); res.accepted != 1 {
		t.Fatalf("commit: %+v", res)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// rawContains reports whether any file under dir holds s.
func rawContains(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		found = found || bytes.Contains(b, []byte(s))
		return nil
	})
	return found
}

// readsMarker opens the WAL with key and reports whether a value holds the marker.
func readsMarker(t *testing.T, dir string, key []byte) (bool, error) {
	t.Helper()
	db, err := openDB(dir, hclog.NewNullLogger(), key, 0, DefaultWALMemory)
	if err != nil {
		return false, err
	}
	defer db.Close()
	found := false
	err = db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			found = found || bytes.Contains(v, []byte(secretMarker))
		}
		return nil
	})
	return found, err
}

func key(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// TestWALEncryptedAtRest: with a key, the WAL's files do not hold a known
// payload string (without one they do: the check can fail), the WAL does
// not open without its key or with another, it reads back with its key, and
// after a master-key rotation it reads with the new key and not the old.
func TestWALEncryptedAtRest(t *testing.T) {
	plain := t.TempDir()
	commitMarked(t, plain, "t-1", nil, 0)
	if !rawContains(t, plain, secretMarker) {
		t.Fatal("control: the plain WAL's files do not hold the payload; the check below proves nothing")
	}

	dir := t.TempDir()
	k1 := key(0x11, 32)
	commitMarked(t, dir, "t-1", k1, time.Hour)
	if rawContains(t, dir, secretMarker) {
		t.Fatal("the encrypted WAL's files hold the payload in clear")
	}
	if _, err := readsMarker(t, dir, nil); !errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		t.Fatalf("open without key: %v, want ErrEncryptionKeyMismatch", err)
	}
	if _, err := readsMarker(t, dir, key(0x22, 32)); !errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		t.Fatalf("open with a wrong key: %v, want ErrEncryptionKeyMismatch", err)
	}
	if ok, err := readsMarker(t, dir, k1); err != nil || !ok {
		t.Fatalf("open with its key: found %v, %v", ok, err)
	}

	// Master-key rotation (tally rotate-key): AES-256 → AES-128 key.
	k2 := key(0x33, 16)
	if err := atrest.RotateKey(dir, key(0x44, 32), k2); err == nil {
		t.Fatal("RotateKey with a wrong old key succeeded")
	}
	if err := atrest.RotateKey(dir, k1, k2); err != nil {
		t.Fatal(err)
	}
	if _, err := readsMarker(t, dir, k1); !errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		t.Fatalf("open with the old key after rotation: %v, want ErrEncryptionKeyMismatch", err)
	}
	if ok, err := readsMarker(t, dir, k2); err != nil || !ok {
		t.Fatalf("open with the new key after rotation: found %v, %v", ok, err)
	}
	// The rotated WAL takes new writes under the new key and keeps them secret.
	commitMarked(t, dir, "t-2", k2, time.Hour)
	if rawContains(t, dir, secretMarker) {
		t.Fatal("after rotation the WAL's files hold the payload in clear")
	}
	// The dead-letter reader opens it with the key only.
	if _, err := OpenDeadLettersKey(dir, nil); err == nil {
		t.Fatal("dead letters opened without the key")
	}
	d, err := OpenDeadLettersKey(dir, k2)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}
