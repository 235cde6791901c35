package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/store"
)

func init() {
	register(command{"export", "--data DIR --out EXPORT [--no-balances]", "copy the ledger, rules and balances for an auditor (docs/ledger-format.md)", 75,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdExport(a, o, e) }})
}

func cmdExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", stdout, stderr)
	data := fs.String("data", "", "the node's data directory")
	out := fs.String("out", "", "export directory to create (must not exist or be empty)")
	noBal := fs.Bool("no-balances", false, "export without the settle index's balances (the node may be running; only signed segments are exported)")
	keyFile := atRestKeyFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" || *out == "" {
		return usageError{"export needs --data DIR --out EXPORT"}
	}
	ld := ledgerDirOf(*data)
	if ld == *data {
		return fmt.Errorf("%s is not a node data directory (no ledger/ inside)", *data)
	}
	opts := store.ExportOptions{}
	if !*noBal {
		idx := filepath.Join(*data, "settle", "index")
		if _, err := os.Stat(idx); err != nil {
			return fmt.Errorf("no settle index in %s (use --no-balances to export the ledger alone): %w", *data, err)
		}
		x, err := openIndexAt(idx, *keyFile)
		if err != nil {
			return fmt.Errorf("open the settle index: %w (stop the node, or use --no-balances)", err)
		}
		pbs, err := x.Committed()
		x.Close()
		if err != nil {
			return err
		}
		// Export exactly the committed segments, so the balances match them.
		opts.Segments = map[uint32]uint64{}
		for _, pb := range pbs {
			opts.Segments[pb.Partition] = pb.Segments
		}
		b, err := json.MarshalIndent(audit.Balances{Partitions: pbs}, "", "  ")
		if err != nil {
			return err
		}
		opts.Files = map[string][]byte{audit.BalancesFile: append(b, '\n')}
	}
	m, err := store.Export(ld, *out, opts)
	if err != nil {
		return err
	}
	var entries uint64
	for _, p := range m.Partitions {
		entries += p.Size
		fmt.Fprintf(stdout, "  partition %d: %d segments, %d entries (signed: %d)\n", p.Partition, p.Segments, p.Size, p.SignedSize)
	}
	fmt.Fprintf(stdout, "exported %d entries in %d partitions, %d files to %s\n", entries, len(m.Partitions), len(m.Files), *out)
	fmt.Fprintf(stdout, "verify it anywhere:  tally verify %s --verifier-key '%s'\n", *out, m.VerifierKey)
	return nil
}
