package badgerlog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
)

// TestLevels: Badger's levels map one down (info is debug noise) and the
// trailing newline Badger writes is gone.
func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	l := New(hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace, DisableTime: true}))
	l.Errorf("e %d\n", 1)
	l.Warningf("w %d\n", 2)
	l.Infof("i %d\n", 3)
	l.Debugf("d %d\n", 4)
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"[ERROR] e 1", "[WARN]  w 2", "[DEBUG] i 3", "[TRACE] d 4"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

// TestOpenAfterTornVlog: a zero-length value-log file (a process killed
// between creating it and writing its header) makes badger.Open fail for
// good; Open removes it and opens, with the data written before intact.
func TestOpenAfterTornVlog(t *testing.T) {
	dir := t.TempDir()
	opts := badger.DefaultOptions(dir).WithLogger(nil)
	db, err := badger.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *badger.Txn) error { return tx.Set([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	torn := filepath.Join(dir, "000009.vlog")
	if err := os.WriteFile(torn, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if db, err := badger.Open(opts); err == nil {
		db.Close()
		t.Fatal("badger.Open opened a directory with an empty value log: the workaround is no longer needed")
	}
	db, err = Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *badger.Txn) error {
		it, err := tx.Get([]byte("k"))
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			if string(v) != "v" {
				t.Errorf("k = %q", v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
