package badgerlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Open opens a Badger database after removing the value-log files an
// interrupted creation left empty. Badger creates a value-log file, then
// sizes it and writes its header; a process killed between the two leaves a
// zero-length NNNNNN.vlog, and every later open fails with `Open existing
// file: … Create a new file` (badger v4.9: logFile.open returns z.NewFile
// for it, which valueLog.open treats as an error), so the node could never
// start again. A zero-length value log holds nothing — a file Badger has
// written to is at least its 20-byte header — so removing it loses nothing.
// Read-only opens change nothing on disk.
func Open(opts badger.Options) (*badger.DB, error) {
	if !opts.ReadOnly && !opts.InMemory {
		if err := removeTornVlogs(opts.ValueDir); err != nil {
			return nil, err
		}
	}
	return badger.Open(opts)
}

func removeTornVlogs(dir string) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".vlog") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if fi.Size() == 0 {
			p := filepath.Join(dir, e.Name())
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove the empty value log %s an interrupted start left: %w", p, err)
			}
		}
	}
	return nil
}
