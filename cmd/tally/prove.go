package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/store/merkle"
)

func init() {
	register(command{"prove", "--data DIR --provider P --id ID [--out BASE] [--verifier-key KEY]", "inclusion proof of a transaction: JSON and a C2SP tlog-proof receipt", 60,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdProve(a, o, e) }})
}

// proveTx proves (provider, id): through the settle index when dir is a
// data directory whose node is stopped, else by scanning the ledger (an
// export, or a node holding its index open).
func proveTx(dir, ledgerDir, keyFile string, r *store.Reader, provider, id string, stderr io.Writer) (audit.InclusionProof, error) {
	if idx := filepath.Join(dir, "settle", "index"); ledgerDir != dir {
		if _, err := os.Stat(idx); err == nil {
			x, err := openIndexAt(idx, keyFile)
			if err == nil {
				defer x.Close()
				return audit.ProveID(r, x.Lookup, provider, id)
			}
			fmt.Fprintf(stderr, "settle index not available (%v); scanning the ledger\n", err)
		}
	}
	scan := func(provider, id string) (uint32, uint64, bool, bool, error) {
		p, i, _, err := r.Find(provider, id)
		if errors.Is(err, store.ErrNotFound) {
			return 0, 0, false, false, nil
		}
		return p, i, false, err == nil, err
	}
	return audit.ProveID(r, scan, provider, id)
}

func cmdProve(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("prove", stdout, stderr)
	data := fs.String("data", "", "data directory, ledger directory or export")
	provider := fs.String("provider", "", "provider of the transaction")
	id := fs.String("id", "", "the provider's transaction id")
	out := fs.String("out", "", "also write BASE.tlog-proof (the receipt) and BASE.entry (the entry's bytes)")
	key := fs.String("verifier-key", "", "the ledger's verifier key, or a file holding it (default: the ledger's verifier.key): the receipt's checkpoint is checked with it and the partition's key derived from it")
	fs.alias("key", "verifier-key")
	keyFile := atRestKeyFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" || *provider == "" || *id == "" {
		return usageError{"prove needs --data DIR --provider P --id ID"}
	}
	ld := ledgerDirOf(*data)
	r, err := store.OpenReader(ld, false)
	if err != nil {
		return err
	}
	defer r.Close()
	pr, err := proveTx(*data, ld, *keyFile, r, *provider, *id, stderr)
	if errors.Is(err, audit.ErrBadProof) {
		fmt.Fprintf(stderr, "the hash cache gave a proof that does not verify (%v); recomputing from the segments\n", err)
		r2, err2 := store.OpenReader(ld, true)
		if err2 != nil {
			return err2
		}
		defer r2.Close()
		pr, err = proveTx(*data, ld, *keyFile, r2, *provider, *id, stderr)
	}
	if err != nil {
		return err
	}
	// The key a stock C2SP verifier checks this receipt with: the ledger
	// key named like the checkpoint's signature line (its origin).
	vkey, err := readKeyArg(*key)
	if err != nil {
		return err
	}
	if vkey == "" {
		if vkey, err = store.ReadVerifierKey(ld); err != nil {
			fmt.Fprintf(stderr, "no verifier key (%v): the proof does not name the partition's key; pass --verifier-key\n", err)
		}
	}
	if vkey != "" {
		if err := pr.AddVerifierKey(vkey); err != nil {
			return fmt.Errorf("prove: %w", err)
		}
		fmt.Fprintf(stderr, "partition %d verifier key (check the receipt with it): %s\n", pr.Partition, pr.VerifierKey)
	}
	if *out != "" {
		raw, err := hex.DecodeString(pr.EntryHex)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out+".tlog-proof", []byte(pr.Receipt), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(*out+".entry", raw, 0o644); err != nil {
			return err
		}
		k := "KEY"
		if pr.VerifierKey != "" {
			k = "'" + pr.VerifierKey + "'"
		}
		fmt.Fprintf(stderr, "wrote %s.tlog-proof and %s.entry\ncheck them: tally verify-proof %s.tlog-proof --verifier-key %s --entry %s.entry\n", *out, *out, *out, k, *out)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(pr)
}

func init() {
	register(command{"entries", "--data DIR [--partition P] [--from N] [--count K]", "print ledger entries as JSON lines, with their leaf hashes", 62,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdEntries(a, o, e) }})
}

// entryLine is one line of `tally entries`.
type entryLine struct {
	Segment  uint64          `json:"segment"`
	LeafHash string          `json:"leaf_hash"`
	Entry    audit.EntryView `json:"entry"`
}

func cmdEntries(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("entries", stdout, stderr)
	data := fs.String("data", "", "data directory, ledger directory or export")
	part := fs.Uint("partition", 0, "partition")
	from := fs.Uint64("from", 0, "first leaf index")
	count := fs.Int("count", 10, "how many entries (1-100000)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" || *count < 1 || *count > 100000 {
		return usageError{"entries needs --data DIR and --count 1-100000"}
	}
	r, err := store.OpenReader(ledgerDirOf(*data), false)
	if err != nil {
		return err
	}
	defer r.Close()
	es, err := r.Entries(uint32(*part), *from, *from+uint64(*count), *count)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, e := range es {
		leaf := merkle.HashLeaf(e.Raw)
		if err := enc.Encode(entryLine{Segment: e.Segment, LeafHash: base64.StdEncoding.EncodeToString(leaf[:]), Entry: audit.View(e.Entry)}); err != nil {
			return err
		}
	}
	return nil
}
