package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/nats-io/nkeys"
	"github.com/tally-mesh/tally/config"

	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
)

func newLogger(level string, w io.Writer) hclog.Logger {
	return newLoggerFormat(level, config.LogText, w)
}

// newLoggerFormat is newLogger with log_format: "json" writes one JSON
// object per line (hclog's JSONFormat: @timestamp, @level, @module,
// @message and the key/value pairs) for log shippers.
func newLoggerFormat(level, format string, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "tally", Level: hclog.LevelFromString(level), Output: w, JSONFormat: format == config.LogJSON})
}

func cmdNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("node", stdout, stderr)
	path := fs.String("config", "", "HCL config file (see config/examples/)")
	check := fs.Bool("check-config", false, "check the config and every file it names (rules, signing key, creds), report every problem, and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() != 0 {
		return usageError{"usage: tally node --config FILE [--check-config]"}
	}
	if *check {
		return checkConfig(*path, stdout)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	return nodes.Run(ctx, cfg, newLoggerFormat(cfg.LogLevel, cfg.LogFormat, stderr))
}

// checkConfig reports every problem of a config file at once: HCL syntax,
// unknown keys, bad values, and the files it names — the rule book is
// parsed with the settle node's own parser, the signing key and NATS
// credentials are read and decoded.
func checkConfig(path string, stdout io.Writer) error {
	var problems []string
	cfg, err := config.Load(path)
	var cerrs config.Errors
	switch {
	case errors.As(err, &cerrs):
		for _, p := range cerrs {
			problems = append(problems, p.String())
		}
	case err != nil:
		return err // the file itself cannot be read
	}
	problems = append(problems, checkConfigFiles(cfg)...)
	if len(problems) > 0 {
		fmt.Fprintf(stdout, "%s: %d problem(s):\n", path, len(problems))
		for _, p := range problems {
			fmt.Fprintf(stdout, "  %s\n", p)
		}
		return fmt.Errorf("%s: %d config problem(s)", path, len(problems))
	}
	fmt.Fprintf(stdout, "%s: ok (roles %v, data %s)\n", path, cfg.Roles, cfg.DataDir)
	if cfg.Has(config.RoleSettle) {
		if _, err := os.Stat(cfg.KeyPath()); errors.Is(err, iofs.ErrNotExist) {
			fmt.Fprintf(stdout, "  note: settle.signing_key %s does not exist yet: the node creates it at its first start\n", cfg.KeyPath())
		}
	}
	return nil
}

// checkConfigFiles opens and checks the files cfg names, for the roles that
// use them. cfg may be partial (the config had problems): whatever it names
// is checked all the same.
func checkConfigFiles(cfg config.Config) []string {
	var out []string
	bad := func(key, path, msg string) { out = append(out, fmt.Sprintf("%s = %q: %s", key, path, msg)) }
	if cfg.Has(config.RoleSettle) && cfg.Settle.Rules != "" {
		if _, err := os.Stat(cfg.Settle.Rules); errors.Is(err, iofs.ErrNotExist) {
			bad("settle.rules", cfg.Settle.Rules, "no such file")
		} else if err != nil {
			bad("settle.rules", cfg.Settle.Rules, err.Error())
		} else if _, err := rules.ParseFile(cfg.Settle.Rules); err != nil {
			bad("settle.rules", cfg.Settle.Rules, "the rule book has problems:\n    "+strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "\n    "))
		}
	}
	if cfg.Has(config.RoleSettle) {
		out = append(out, checkSigningKey(cfg)...)
	}
	if cfg.NATS.Creds != "" && !cfg.Has(config.RoleHub) {
		if err := checkCreds(cfg.NATS.Creds); errors.Is(err, iofs.ErrNotExist) {
			bad("nats.creds", cfg.NATS.Creds, "no such file")
		} else if err != nil {
			bad("nats.creds", cfg.NATS.Creds, err.Error())
		}
	}
	if k := cfg.Encryption.KeyFile; k != "" {
		if _, err := config.ReadKey(k); err != nil {
			bad("encryption_key_file", k, err.Error())
		}
	}
	if cfg.DataDir != "" {
		if st, err := os.Stat(cfg.DataDir); err == nil && !st.IsDir() {
			bad("data_dir", cfg.DataDir, "is a file, not a directory")
		}
	}
	return out
}

// checkSigningKey: an existing key must be a note signer key named like
// settle.origin, mode 0600, and match the ledger's verifier.key; a missing
// key is created at start, unless the ledger already has a verifier key (a
// new key could never extend that ledger).
func checkSigningKey(cfg config.Config) []string {
	path := cfg.KeyPath()
	key := "settle.signing_key"
	ledgerVKey, _ := os.ReadFile(filepath.Join(cfg.LedgerDir(), store.VerifierKeyFile))
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		if len(ledgerVKey) > 0 {
			return []string{fmt.Sprintf("%s = %q: no such file, but the ledger in %s is signed by %s: restore that signing key (a new one cannot extend the ledger)", key, path, cfg.LedgerDir(), strings.TrimSpace(string(ledgerVKey)))}
		}
		return nil // created at the first start
	case err != nil:
		return []string{fmt.Sprintf("%s = %q: %v", key, path, err)}
	}
	var out []string
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		out = append(out, fmt.Sprintf("%s = %q: mode %v: make it 0600 (chmod 600 %s)", key, path, st.Mode().Perm(), path))
	}
	skey := strings.TrimSpace(string(b))
	vkey, err := store.VerifierKey(skey)
	if err != nil {
		return append(out, fmt.Sprintf("%s = %q: not a ledger signing key (%v): create one with tally keygen --out FILE", key, path, err))
	}
	if name, _, _ := strings.Cut(vkey, "+"); name != cfg.Settle.Origin {
		out = append(out, fmt.Sprintf("%s = %q: the key is named %q but settle.origin is %q", key, path, name, cfg.Settle.Origin))
	}
	if lv := strings.TrimSpace(string(ledgerVKey)); lv != "" && lv != vkey {
		out = append(out, fmt.Sprintf("%s = %q: its verifier key %s is not the ledger's %s", key, path, vkey, lv))
	}
	return out
}

// checkCreds decodes a NATS credentials file: a user JWT and an nkey seed.
func checkCreds(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := nkeys.ParseDecoratedJWT(b); err != nil {
		return fmt.Errorf("no user JWT: %w", err)
	}
	if _, err := nkeys.ParseDecoratedNKey(b); err != nil {
		return fmt.Errorf("no nkey seed: %w", err)
	}
	return nil
}
