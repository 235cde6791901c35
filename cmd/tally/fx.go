package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/store"
)

func init() {
	register(command{"fx", "rates --data DIR [--pair EUR/USD] [--source S] [--at TIME]", "list the exchange rates posted to the ledger (read-only)", 47,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdFX(a, o, e) }})
}

// fxRateOut is one rate as `tally fx rates` prints it.
type fxRateOut struct {
	Pair      string    `json:"pair"`
	Rate      string    `json:"rate"`
	AsOf      time.Time `json:"as_of"`
	Source    string    `json:"source"`
	PostedBy  string    `json:"posted_by"`
	ID        string    `json:"id"` // the entry's transaction id
	Partition uint32    `json:"partition"`
	Index     uint64    `json:"index"`
}

func cmdFX(args []string, stdout, stderr io.Writer) error {
	if err := helpOnly("fx", args, stdout, stderr); err != nil {
		return err
	}
	if len(args) == 0 {
		return usageError{"fx needs a subcommand: rates"}
	}
	switch args[0] {
	case "rates":
		return cmdFXRates(args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("fx: unknown subcommand %q (rates)", args[0])}
}

// ledgerRates builds the rate table from the fx_rate entries of the ledger
// files under ledgerDir, in ledger order. A malformed fx_rate entry is an
// error (fx.ErrBadRate): a rate that cannot be read is never skipped.
func ledgerRates(ledgerDir string) (*fx.Table, error) {
	if _, err := os.Stat(ledgerDir); err != nil {
		return nil, fmt.Errorf("no ledger: %w", err)
	}
	var es []store.Entry
	if err := store.ForEachEntry(ledgerDir, func(e store.Entry) error {
		if string(e.Tx.Type) == fx.EntryType {
			es = append(es, e)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	return fx.NewTable(es)
}

// cmdFXRates lists the rates in the ledger: every one, or with --at the one
// in force per pair at that time (as a statement would use it).
func cmdFXRates(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("fx rates", stdout, stderr)
	data := fs.String("data", "", "the node's data directory")
	pair := fs.String("pair", "", "only this pair, BASE/QUOTE")
	source := fs.String("source", "", "only rates of this source")
	atArg := fs.String("at", "", "only the rate in force per pair at this time (RFC 3339)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return usageError{"fx rates needs --data DIR"}
	}
	var at time.Time
	if *atArg != "" {
		t, err := time.Parse(time.RFC3339, *atArg)
		if err != nil {
			return usageError{fmt.Sprintf("--at %q is not RFC 3339: %v", *atArg, err)}
		}
		at = t
	}
	tb, err := ledgerRates(filepath.Join(*data, "ledger"))
	if err != nil {
		return err
	}
	out := []fxRateOut{}
	inForce := map[string]int{} // pair → index in out of its rate in force at --at
	for _, r := range tb.Rates() {
		if *pair != "" && r.Pair() != *pair || *source != "" && r.Source != *source {
			continue
		}
		o := fxRateOut{r.Pair(), r.Rate.String(), r.AsOf, r.Source, r.PostedBy, r.ID, r.Partition, r.Index}
		if *atArg == "" {
			out = append(out, o)
			continue
		}
		if r.AsOf.After(at) {
			continue
		}
		// Rates come by (as-of, ledger order): the last one ≤ at wins.
		if i, ok := inForce[r.Pair()]; ok {
			out[i] = o
		} else {
			inForce[r.Pair()] = len(out)
			out = append(out, o)
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
