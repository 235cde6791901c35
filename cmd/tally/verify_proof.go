package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tally-mesh/tally/store"
)

func init() {
	register(command{"verify-proof", "RECEIPT --verifier-key KEY --entry FILE", "check a tlog-proof receipt for an entry offline", 65,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdVerifyProof(a, o, e) }})
}

func cmdVerifyProof(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify-proof", stdout, stderr)
	key := fs.String("verifier-key", "", "the ledger's verifier key, or a file holding it (required: a receipt proves nothing without a pinned key)")
	fs.alias("key", "verifier-key")
	entryFile := fs.String("entry", "", "the entry's bytes (BASE.entry from tally prove --out BASE)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *key == "" || *entryFile == "" {
		return usageError{"verify-proof needs RECEIPT --verifier-key KEY --entry FILE"}
	}
	receipt := fs.Arg(0)
	vkey, err := readKeyArg(*key)
	if err != nil {
		return err
	}
	rb, err := os.ReadFile(receipt)
	if err != nil {
		return err
	}
	eb, err := os.ReadFile(*entryFile)
	if err != nil {
		return err
	}
	res, err := store.VerifyReceipt(rb, vkey, eb)
	if err != nil {
		if errors.Is(err, store.ErrReceipt) {
			fmt.Fprintf(stdout, "FAILED: %v\n", err)
			return reportedError{fmt.Errorf("verify-proof %s: %w", receipt, err)}
		}
		return fmt.Errorf("verify-proof %s: %w", receipt, err)
	}
	// The receipt is a standard tlog-proof; the rest is what tally's entry
	// format adds: the entry names its own partition and index.
	e, derr := store.UnmarshalEntry(eb)
	if derr == nil {
		if want := fmt.Sprintf("/p%d", e.Partition); !strings.HasSuffix(res.Checkpoint.Origin, want) || e.Index != res.Index {
			fmt.Fprintf(stdout, "FAILED: the entry says partition %d index %d, the receipt is for %s index %d\n", e.Partition, e.Index, res.Checkpoint.Origin, res.Index)
			return reportedError{fmt.Errorf("verify-proof %s: entry and receipt disagree: %w", receipt, store.ErrReceipt)}
		}
	}
	fmt.Fprintf(stdout, "OK: leaf hash %s is entry %d of %s, tree size %d, root %s, signed by %s\n",
		b64(res.LeafHash[:]), res.Index, res.Checkpoint.Origin, res.Checkpoint.Size, b64(res.Checkpoint.Root[:]), res.Signer)
	if derr == nil {
		c := e.Tx.Currency
		fmt.Fprintf(stdout, "  %s/%s %s %s %s occurred %s, net %s:", e.Provider, e.Tx.ID, e.Tx.Type, c.Format(e.Tx.Amount), c.Code, e.Tx.OccurredAt.Format("2006-01-02T15:04:05Z07:00"), c.Format(e.Net))
		for _, s := range e.Shares {
			fmt.Fprintf(stdout, " %s %s", s.Party, c.Format(s.Amount))
		}
		fmt.Fprintf(stdout, " (rule set %x, rule %q)\n", e.RuleSet[:8], e.Rule)
	} else {
		fmt.Fprintf(stdout, "  (the entry file is not a tally entry: %v)\n", derr)
	}
	return nil
}
