package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/atrest"
	"github.com/tally-mesh/tally/settle"
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

// TestOfflineToolsEncryptedStores: the offline commands open an encrypted
// settle index and WAL with --encryption-key-file, and without it (or with
// another key) fail saying which flag to pass, instead of Badger's bare
// key-mismatch error.
func TestOfflineToolsEncryptedStores(t *testing.T) {
	data := t.TempDir()
	key, other := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{8}, 32)
	keyFile, otherFile := filepath.Join(t.TempDir(), "at-rest.key"), filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(keyFile, key, 0o600)
	os.WriteFile(otherFile, other, 0o600)
	x, err := settle.OpenIndexKey(filepath.Join(data, "settle", "index"), hclog.NewNullLogger(), key, 0)
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	wal, err := badger.Open(atrest.Apply(badger.DefaultOptions(filepath.Join(data, "ingest", "wal")).WithLogger(nil), key, 0))
	if err != nil {
		t.Fatal(err)
	}
	wal.Close()

	for _, c := range []struct {
		name string
		run  func(extra ...string) error
	}{
		{"balances", func(extra ...string) error {
			var out, errOut bytes.Buffer
			return cmdBalances(append([]string{"--data", data}, extra...), &out, &errOut)
		}},
		{"dlq list", func(extra ...string) error {
			var out, errOut bytes.Buffer
			return cmdDLQ(context.Background(), append([]string{"list", "--data", data}, extra...), &out, &errOut)
		}},
	} {
		err := c.run()
		if err == nil || !strings.Contains(err.Error(), "--encryption-key-file") {
			t.Errorf("%s without a key: %v, want a hint naming --encryption-key-file", c.name, err)
		}
		if err := c.run("--encryption-key-file", otherFile); err == nil || !strings.Contains(err.Error(), "is not this store's key") {
			t.Errorf("%s with another key: %v", c.name, err)
		}
		if err := c.run("--encryption-key-file", keyFile); err != nil {
			t.Errorf("%s with the key: %v", c.name, err)
		}
	}
}
