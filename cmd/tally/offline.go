package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/config"
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
	keyFile := atRestKeyFlag(fs)
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
	idx, err := openIndexAt(dir, *keyFile)
	if errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		return err
	}
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

// atRestKeyFlag adds --encryption-key-file to an offline command that opens
// the settle index or the edge WAL: the node's encryption_key_file, without
// which an encrypted store does not open (docs/security.md).
func atRestKeyFlag(fs *flags) *string {
	return fs.String("encryption-key-file", "", "the node's encryption_key_file: needed to open an encrypted settle index or WAL")
}

// readAtRestKey reads --encryption-key-file ("" = the store is plain).
func readAtRestKey(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	return config.ReadKey(path)
}

// openIndexAt opens a stopped node's settle index, with its encryption key
// when keyFile is set. A key mismatch says which flag is missing or wrong.
func openIndexAt(dir, keyFile string) (*settle.Index, error) {
	key, err := readAtRestKey(keyFile)
	if err != nil {
		return nil, err
	}
	x, err := settle.OpenIndexKey(dir, hclog.NewNullLogger(), key, 0)
	return x, atRestHint(err, keyFile)
}

// atRestHint explains a Badger key mismatch in terms of the flag.
func atRestHint(err error, keyFile string) error {
	if !errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		return err
	}
	if keyFile == "" {
		return fmt.Errorf("%w: the store is encrypted; pass --encryption-key-file with the node's encryption_key_file", err)
	}
	return fmt.Errorf("%w: %s is not this store's key (or the store is not encrypted)", err, keyFile)
}
