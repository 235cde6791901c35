package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/internal/atrest"
)

func init() {
	register(command{"rotate-key", "--config FILE --new-key FILE | --dir DIR --old-key FILE --new-key FILE", "re-encrypt the WAL and index key registries under a new master key (node stopped)", 95,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdRotateKey(a, o, e) }})
}

// cmdRotateKey changes the master key of encrypted Badger stores
// (docs/security.md, "Rotating the master key"): with --config, every store
// of that node that exists (the WAL and the settle index) from its
// encryption_key_file to --new-key; with --dir, one store. The data is not
// rewritten (atrest.RotateKey). The node must be stopped; afterwards point
// encryption_key_file at the new key.
func cmdRotateKey(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rotate-key", stdout, stderr)
	cfgPath := fs.String("config", "", "node config: rotate its WAL and settle index from encryption_key_file")
	dir := fs.String("dir", "", "one Badger directory to rotate (instead of --config)")
	oldPath := fs.String("old-key", "", "current master key file (with --dir)")
	newPath := fs.String("new-key", "", "new master key file: 16, 24 or 32 raw bytes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *newPath == "" || (*cfgPath == "") == (*dir == "") || (*dir != "" && *oldPath == "") {
		return usageError{"usage: tally rotate-key --config FILE --new-key FILE | --dir DIR --old-key FILE --new-key FILE"}
	}
	newKey, err := config.ReadKey(*newPath)
	if err != nil {
		return err
	}
	var dirs []string
	old := *oldPath
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		if cfg.Encryption.KeyFile == "" {
			return fmt.Errorf("%s sets no encryption_key_file: its stores are not encrypted (a key can only be given to a new store)", *cfgPath)
		}
		old = cfg.Encryption.KeyFile
		for _, d := range []string{cfg.WALDir(), cfg.IndexDir()} {
			if _, err := os.Stat(d); err == nil {
				dirs = append(dirs, d)
			} else if !errors.Is(err, iofs.ErrNotExist) {
				return err
			}
		}
	} else {
		dirs = []string{*dir}
	}
	oldKey, err := config.ReadKey(old)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := atrest.RotateKey(d, oldKey, newKey); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rotated %s to the key in %s\n", d, *newPath)
	}
	if len(dirs) == 0 {
		fmt.Fprintln(stdout, "no store to rotate yet")
	}
	if *cfgPath != "" {
		fmt.Fprintf(stdout, "now set encryption_key_file = %q (or replace %s with it) before starting the node\n", *newPath, old)
	}
	return nil
}
