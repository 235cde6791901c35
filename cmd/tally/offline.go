package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
)

// cmdBalances prints balances per party and currency from a stopped node's index.
func cmdBalances(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("balances", stderr)
	data := fs.String("data", "", "the node's data directory")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return usageError{"balances needs --data DIR"}
	}
	dir := filepath.Join(*data, "settle", "index")
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no settlement index in %s: %w", *data, err)
	}
	idx, err := settle.OpenIndex(dir, hclog.NewNullLogger())
	if err != nil {
		return fmt.Errorf("%w (is a node still running on this directory?)", err)
	}
	defer idx.Close()
	bals, err := idx.Balances()
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(bals)
	}
	fmt.Fprintf(stdout, "%-20s %-4s %24s\n", "party", "cur", "balance")
	for _, b := range bals {
		fmt.Fprintf(stdout, "%-20s %-4s %24s\n", b.Party, b.Currency, b.Formatted())
	}
	return nil
}

// cmdRules is `tally rules check FILE...`.
func cmdRules(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError{"usage: tally rules check FILE..."}
	}
	files := args[1:]
	if len(files) == 0 {
		return usageError{"rules check needs at least one FILE"}
	}
	book, err := rules.ParseFiles(files...)
	var problems []string
	if err != nil {
		problems = append(problems, err.Error())
	}
	nfees := 0
	for _, f := range files {
		src, rerr := os.ReadFile(f)
		if rerr != nil {
			continue // already reported by ParseFiles
		}
		fees, ferr := rules.ParseFees(src, f)
		if ferr != nil && err == nil {
			problems = append(problems, ferr.Error())
		}
		nfees += len(fees)
	}
	if len(problems) > 0 {
		fmt.Fprintln(stdout, strings.Join(problems, "\n"))
		return errors.New("rules check failed")
	}
	for _, v := range book.Versions() {
		h := v.Hash()
		fmt.Fprintf(stdout, "ruleset %q effective %s hash %x\n", v.Name, v.Effective.Format("2006-01-02T15:04:05Z07:00"), h[:8])
	}
	fmt.Fprintf(stdout, "ok: %d rule set versions, %d fee contracts\n", len(book.Versions()), nfees)
	return nil
}
