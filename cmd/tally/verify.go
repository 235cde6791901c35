package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tally-mesh/tally/store"
)

// ledgerDirOf accepts a node's data directory or a ledger directory.
func ledgerDirOf(dir string) string {
	if st, err := os.Stat(filepath.Join(dir, "ledger")); err == nil && st.IsDir() {
		return filepath.Join(dir, "ledger")
	}
	return dir
}

func cmdVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	key := fs.String("key", "", "verifier key to pin (default: the verifier.key in the ledger directory, which proves less)")
	quiet := fs.Bool("q", false, "no progress output")
	// Accept the directory before or after the flags.
	var dir string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dir, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if dir == "" {
		return usageError{"verify needs a data or ledger directory: tally verify DIR"}
	}
	vkey := *key
	if f, err := os.Stat(vkey); vkey != "" && err == nil && !f.IsDir() {
		b, err := os.ReadFile(vkey)
		if err != nil {
			return err
		}
		vkey = strings.TrimSpace(string(b))
	}
	ld := ledgerDirOf(dir)
	progress := func(s string) {
		if !*quiet {
			fmt.Fprintln(stderr, s)
		}
	}
	rep, err := store.Verify(ld, vkey, progress)
	if err != nil {
		var ce *store.CorruptError
		if errors.As(err, &ce) {
			fmt.Fprintf(stdout, "FAILED: %v\n", err)
		}
		return fmt.Errorf("verify %s: %w", ld, err)
	}
	fmt.Fprintf(stdout, "ledger %s\n", ld)
	for _, p := range rep.Partitions {
		fmt.Fprintf(stdout, "  partition %d: %d segments, %d entries, root %x\n", p.Partition, p.Segments, p.Entries, p.Root)
		if p.Checkpoint != "" {
			body, sigs, _ := strings.Cut(p.Checkpoint, "\n\n")
			fmt.Fprintf(stdout, "    checkpoint: %s (%d signature(s))\n", strings.ReplaceAll(strings.TrimSpace(body), "\n", " | "), strings.Count(strings.TrimSpace(sigs), "\n")+1)
		}
	}
	fmt.Fprintf(stdout, "OK: %d entries in %d partitions verified", rep.Entries, len(rep.Partitions))
	if *key == "" {
		fmt.Fprintf(stdout, " (signatures checked against the ledger's own verifier.key; pin it with --key for an independent audit)")
	}
	fmt.Fprintln(stdout)
	return nil
}

func cmdKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", stderr)
	name := fs.String("name", "tally.example/ledger", "key name: the ledger origin auditors will see")
	out := fs.String("out", "", "write the private signing key to this file (0600); default prints both keys")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out != "" {
		// Never overwrite a key: a ledger signed with it could no longer be
		// extended under the same identity.
		if _, err := os.Lstat(*out); err == nil {
			return fmt.Errorf("%s exists: keygen never replaces a signing key; choose another --out or remove it yourself", *out)
		}
		_, vkey, err := store.LoadOrCreateKey(*out, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "signing key: %s\nverifier key (give to auditors): %s\n", *out, vkey)
		return nil
	}
	skey, vkey, err := store.GenerateKey(*name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signing key (keep secret): %s\nverifier key (give to auditors): %s\n", skey, vkey)
	return nil
}
