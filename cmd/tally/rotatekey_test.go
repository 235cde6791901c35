package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/atrest"
)

// TestRotateKeyCommand: tally rotate-key --dir moves an encrypted store to a
// new master key; the old key no longer opens it, the new one reads the data.
func TestRotateKeyCommand(t *testing.T) {
	dir := t.TempDir()
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 24)
	oldFile, newFile := filepath.Join(t.TempDir(), "old.key"), filepath.Join(t.TempDir(), "new.key")
	os.WriteFile(oldFile, oldKey, 0o600)
	os.WriteFile(newFile, newKey, 0o600)
	db, err := badger.Open(atrest.Apply(badger.DefaultOptions(dir).WithLogger(nil), oldKey, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *badger.Txn) error { return tx.Set([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var out, errOut bytes.Buffer
	if err := cmdRotateKey([]string{"--dir", dir, "--old-key", newFile, "--new-key", newFile}, &out, &errOut); err == nil {
		t.Fatal("rotate-key with the wrong old key succeeded")
	}
	if err := cmdRotateKey([]string{"--dir", dir, "--old-key", oldFile, "--new-key", newFile}, &out, &errOut); err != nil {
		t.Fatalf("rotate-key: %v (%s)", err, errOut.String())
	}
	if _, err := badger.Open(atrest.Apply(badger.DefaultOptions(dir).WithLogger(nil), oldKey, 0)); !errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		t.Fatalf("old key after rotation: %v", err)
	}
	db, err = badger.Open(atrest.Apply(badger.DefaultOptions(dir).WithLogger(nil), newKey, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *badger.Txn) error {
		it, err := tx.Get([]byte("k"))
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			if string(v) != "v" {
				t.Errorf("value %q", v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestJSONLogFormat: log_format = "json" writes one JSON object per line.
func TestJSONLogFormat(t *testing.T) {
	var buf bytes.Buffer
	newLoggerFormat("info", config.LogJSON, &buf).Named("ingest").Info("http accepting", "addr", "127.0.0.1:1")
	var m map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &m); err != nil {
		t.Fatalf("%q is not JSON: %v", buf.String(), err)
	}
	if m["@message"] != "http accepting" || m["addr"] != "127.0.0.1:1" || m["@module"] != "tally.ingest" {
		t.Errorf("JSON log line %v", m)
	}
	buf.Reset()
	newLoggerFormat("info", config.LogText, &buf).Info("x")
	if json.Valid(bytes.TrimSpace(buf.Bytes())) {
		t.Errorf("text format wrote JSON: %q", buf.String())
	}
}
