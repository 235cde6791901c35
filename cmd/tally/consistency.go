package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/store"
)

func init() {
	register(command{"consistency", "--data DIR [--partition P] --from N [--to M] | --old CHECKPOINT --verifier-key KEY", "consistency proof between two tree sizes (append-only)", 70,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdConsistency(a, o, e) }})
}

func cmdConsistency(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("consistency", stdout, stderr)
	data := fs.String("data", "", "data directory, ledger directory or export")
	part := fs.Uint("partition", 0, "partition")
	from := fs.Uint64("from", 0, "older tree size")
	to := fs.Uint64("to", 0, "newer tree size (default: the last signed checkpoint's)")
	old := fs.String("old", "", "a checkpoint you kept: prove and check that today's signed checkpoint extends it (sets --partition and --from)")
	key := fs.String("verifier-key", "", "verifier key (or a file holding it), needed with --old")
	fs.alias("key", "verifier-key")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return usageError{"consistency needs --data DIR"}
	}
	p, size1 := uint32(*part), *from
	var vkey string
	var oldCk store.Checkpoint
	if *old != "" {
		var err error
		if vkey, err = readKeyArg(*key); err != nil {
			return err
		}
		if vkey == "" {
			return usageError{"--old needs --verifier-key: an unverified checkpoint proves nothing"}
		}
		if _, err := note.NewVerifier(vkey); err != nil {
			return fmt.Errorf("verifier key: %w", err)
		}
		b, err := os.ReadFile(*old)
		if err != nil {
			return err
		}
		// The ledger key or the partition's; signed under the origin, or
		// under the stem for checkpoints from before (store.OpenCheckpoint).
		n, _, err := store.OpenCheckpoint(b, vkey)
		if err != nil {
			return fmt.Errorf("your checkpoint %s does not verify with key %s: %w", *old, keyName(vkey), err)
		}
		if oldCk, err = store.ParseCheckpoint(n.Text); err != nil {
			return fmt.Errorf("your checkpoint %s: %w", *old, err)
		}
		pp, ok := partitionOfOrigin(oldCk.Origin)
		if !ok {
			return fmt.Errorf("your checkpoint's origin %q does not end in /p<partition>", oldCk.Origin)
		}
		p, size1 = pp, oldCk.Size
	}
	ld := ledgerDirOf(*data)
	r, err := store.OpenReader(ld, false)
	if err != nil {
		return err
	}
	defer r.Close()
	cp, err := audit.Consistency(r, p, size1, *to)
	if errors.Is(err, audit.ErrBadProof) {
		r2, err2 := store.OpenReader(ld, true)
		if err2 != nil {
			return err2
		}
		defer r2.Close()
		cp, err = audit.Consistency(r2, p, size1, *to)
	}
	if err != nil {
		return err
	}
	if *old != "" {
		// The proof was checked against the ledger's roots; now against what
		// the auditor holds, and the current checkpoint's signature.
		if cp.RootFrom != b64root(oldCk.Root) {
			fmt.Fprintf(stdout, "FAILED: partition %d at size %d has root %s today, your checkpoint says %s: the ledger was rewritten\n", p, size1, cp.RootFrom, b64root(oldCk.Root))
			return reportedError{fmt.Errorf("consistency: partition %d is not an extension of %s: %w", p, *old, store.ErrCorrupt)}
		}
		if cp.Checkpoint == "" {
			return fmt.Errorf("consistency: --to must be the signed size to compare with the current checkpoint")
		}
		if _, _, err := store.OpenCheckpoint([]byte(cp.Checkpoint), vkey); err != nil {
			fmt.Fprintf(stdout, "FAILED: the ledger's current checkpoint does not verify with key %s: %v\n", keyName(vkey), err)
			return reportedError{fmt.Errorf("consistency: %w", store.ErrCorrupt)}
		}
		fmt.Fprintf(stderr, "OK: %s at size %d (your checkpoint) is a prefix of size %d (the current signed checkpoint)\n", cp.Origin, cp.From, cp.To)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(cp)
}

func b64root(h [32]byte) string { return b64(h[:]) }

// keyName is the name part of a verifier key.
func keyName(vkey string) string {
	name, _, _ := strings.Cut(vkey, "+")
	return name
}

// partitionOfOrigin returns p from a checkpoint origin "<stem>/p<p>".
func partitionOfOrigin(origin string) (uint32, bool) {
	i := strings.LastIndex(origin, "/p")
	if i <= 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(origin[i+2:], 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != origin[i+2:] {
		return 0, false
	}
	return uint32(n), true
}
