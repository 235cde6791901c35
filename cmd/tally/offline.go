package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
)

// cmdBalances prints balances per party and currency from a stopped node's index.
func cmdBalances(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("balances", stdout, stderr)
	data := fs.String("data", "", "the node's data directory")
	asJSON := fs.Bool("json", false, "print JSON")
	node := fs.String("node", "", "a running node's console URL: live balances over its API (console.go)")
	token := fs.String("token", "", "with --node: an API token (default $TALLY_CONSOLE_TOKEN)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *node != "" {
		return balancesLive(*node, *token, *asJSON, stdout)
	}
	if *data == "" {
		return usageError{"balances needs --data DIR (node stopped) or --node URL (node running)"}
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

// cmdRules is `tally rules check FILE...` and `tally rules eval ...`
// (rules_eval.go).
func cmdRules(args []string, stdout, stderr io.Writer) error {
	if err := helpOnly("rules", args, stdout, stderr); err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "eval" {
		return cmdRulesEval(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "check" {
		return usageError{"usage: tally rules check FILE... | tally rules eval --rules FILE --input TX.jsonl [--period P]"}
	}
	fs := newFlags("rules check", stdout, stderr)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		return usageError{"rules check needs at least one FILE"}
	}
	// Split rules and fee contracts are parsed together: every problem of
	// every file, with file:line:column and a fix, even past a syntax
	// error; then what parses is linted (rules that can never match, a
	// remainder party that can take the opposite sign, likely typos).
	book, findings := rules.CheckFiles(files...)
	nerr := 0
	for _, f := range findings {
		fmt.Fprintln(stdout, f.String())
		if !f.Warning {
			nerr++
		}
	}
	if book == nil {
		return fmt.Errorf("rules check failed: %d errors", nerr)
	}
	nfees := 0
	for _, v := range book.Versions() {
		h := v.Hash()
		nfees += len(v.Fees())
		fmt.Fprintf(stdout, "ruleset %q effective %s hash %x, %d fee contracts\n", v.Name, v.Effective.Format("2006-01-02T15:04:05Z07:00"), h[:8], len(v.Fees()))
	}
	fmt.Fprintf(stdout, "ok: %d rule set versions, %d fee contracts\n", len(book.Versions()), nfees)
	return nil
}
