package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/store"
)

// ledgerDirOf accepts a node's data directory, a ledger directory or an
// export, and returns the ledger (or export) directory.
func ledgerDirOf(dir string) string {
	if st, err := os.Stat(filepath.Join(dir, "ledger")); err == nil && st.IsDir() {
		return filepath.Join(dir, "ledger")
	}
	return dir
}

// readKeyArg returns a verifier key given inline or as the path of a file
// holding it.
func readKeyArg(k string) (string, error) {
	if k == "" {
		return "", nil
	}
	if st, err := os.Stat(k); err == nil && !st.IsDir() {
		b, err := os.ReadFile(k)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	return k, nil
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// balancesOf finds the settle index's committed balances for dir: from the
// data directory's Badger index (node stopped) or an export's balances.json.
// It returns nil and the reason when there are none to check.
func balancesOf(dir, ledgerDir, keyFile, override string) (*audit.Balances, string) {
	if override != "" {
		b, err := readBalancesFile(override)
		if err != nil {
			return nil, err.Error()
		}
		return b, ""
	}
	idx := filepath.Join(dir, "settle", "index")
	if ledgerDir != dir {
		if _, err := os.Stat(idx); err != nil {
			return nil, "the data directory has no settle index"
		}
		x, err := openIndexAt(idx, keyFile)
		if err != nil {
			return nil, fmt.Sprintf("the settle index cannot be opened (is a node running on it?): %v", err)
		}
		defer x.Close()
		pbs, err := x.Committed()
		if err != nil {
			return nil, fmt.Sprintf("reading the settle index: %v", err)
		}
		return &audit.Balances{Source: idx, Partitions: pbs}, ""
	}
	path := filepath.Join(ledgerDir, audit.BalancesFile)
	if _, err := os.Stat(path); err != nil {
		return nil, "no " + audit.BalancesFile + " in the export"
	}
	b, err := readBalancesFile(path)
	if err != nil {
		return nil, err.Error()
	}
	return b, ""
}

func readBalancesFile(path string) (*audit.Balances, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("balances: %w", err)
	}
	var b audit.Balances
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("balances %s: %w", path, err)
	}
	b.Source = path
	return &b, nil
}

func cmdVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stdout, stderr)
	key := fs.String("verifier-key", "", "verifier key to pin, or a file holding it (default: the verifier.key in the ledger directory, which proves less)")
	fs.alias("key", "verifier-key")
	quiet := fs.Bool("q", false, "no progress output")
	var trusted multiFlag
	fs.Var(&trusted, "trusted", "a checkpoint FILE kept from an earlier audit; the ledger must still contain its tree (repeatable)")
	balFile := fs.String("balances", "", "check these balances (a balances.json) instead of the data directory's index or the export's")
	keyFile := atRestKeyFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"verify needs one data directory, ledger directory or export: tally verify DIR [--verifier-key KEY]"}
	}
	dir := fs.Arg(0)
	vkey, err := readKeyArg(*key)
	if err != nil {
		return err
	}
	var notes [][]byte
	for _, f := range trusted {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("trusted checkpoint: %w", err)
		}
		notes = append(notes, b)
	}
	ld := ledgerDirOf(dir)
	progress := func(s string) {
		if !*quiet {
			fmt.Fprintln(stderr, s)
		}
	}
	bals, why := balancesOf(dir, ld, *keyFile, *balFile)
	rep, err := audit.Verify(ld, audit.Options{Key: vkey, Progress: progress, Trusted: notes, Balances: bals})
	if err != nil {
		// Say it once, on stdout where the report goes; the exit code is 1.
		if msg, ok := wrongKey(err, vkey, ld); ok {
			fmt.Fprintf(stdout, "FAILED: %s\n", msg)
			return reportedError{fmt.Errorf("verify %s: %s", ld, msg)}
		}
		var ce *store.CorruptError
		if errors.As(err, &ce) || errors.Is(err, store.ErrCorrupt) {
			fmt.Fprintf(stdout, "FAILED: %v\n", err)
			return reportedError{fmt.Errorf("verify %s: %w", ld, err)}
		}
		return fmt.Errorf("verify %s: %w", ld, err)
	}
	kind := "ledger"
	if rep.Export != nil {
		kind = fmt.Sprintf("export (created %s, %d files match its manifest)", rep.Export.CreatedAt.Format("2006-01-02T15:04:05Z"), len(rep.Export.Files))
	}
	fmt.Fprintf(stdout, "%s %s\n", kind, ld)
	for _, p := range rep.Partitions {
		fmt.Fprintf(stdout, "  partition %d: %d segments, %d entries, root %s\n", p.Partition, p.Segments, p.Entries, b64(p.Root[:]))
		if p.Checkpoint != "" {
			body, sigs, _ := strings.Cut(p.Checkpoint, "\n\n")
			fmt.Fprintf(stdout, "    checkpoint: %s (%d signature(s))\n", strings.ReplaceAll(strings.TrimSpace(body), "\n", " | "), strings.Count(strings.TrimSpace(sigs), "\n")+1)
		}
		if p.Unsigned() > 0 {
			fmt.Fprintf(stdout, "    %d segments after the checkpoint are not signed yet (checked like the others)\n", p.Unsigned())
		}
	}
	fmt.Fprintf(stdout, "  exactly once: no (provider, id) appears twice among %d entries\n", rep.Entries)
	fmt.Fprintf(stdout, "  splits: %d recomputed from %d recorded rule sets, %d reversals recomputed from their parents' shares: all equal the recorded shares\n", rep.Splits, rep.RuleSets, rep.Reversals)
	fmt.Fprintf(stdout, "  operator entries: %d corrections (lines, approvers recomputed), %d fx rates (pair, rate checked)\n", rep.Corrections, rep.FXRates)
	fmt.Fprintf(stdout, "  payout runs: %d (maker-checker checked), paying %d statements, none paid twice\n", rep.PayoutRuns, rep.PaidStatements)
	for _, t := range rep.Totals {
		fmt.Fprintf(stdout, "  net %s: %s over %d entries (shares sum to it)\n", t.Currency, t.Net, t.Entries)
	}
	if bals != nil {
		fmt.Fprintf(stdout, "  balances: the settle index's balances (%s) equal the sum of the entries for %d partitions\n", rep.BalancesSource, len(rep.BalancesChecked))
	} else {
		fmt.Fprintf(stdout, "  balances: NOT checked: %s\n", why)
	}
	if len(notes) > 0 {
		fmt.Fprintf(stdout, "  trusted checkpoints: %d, each still contained in the ledger\n", len(notes))
	}
	fmt.Fprintf(stdout, "OK: %d entries in %d partitions verified", rep.Entries, len(rep.Partitions))
	if *key == "" {
		fmt.Fprintf(stdout, " (signatures checked against the ledger's own verifier.key; pin it with --verifier-key for an independent audit)")
	}
	fmt.Fprintln(stdout)
	return nil
}

// wrongKey explains a checkpoint that carries no signature by the key it was
// checked with: the ledger is not corrupt, it is signed by another key. It
// names the key expected and the keys found.
func wrongKey(err error, pinned, ledgerDir string) (string, bool) {
	var un *note.UnverifiedNoteError
	if !errors.As(err, &un) || un.Note == nil {
		return "", false
	}
	own := ""
	if b, err := os.ReadFile(filepath.Join(ledgerDir, store.VerifierKeyFile)); err == nil {
		own = strings.TrimSpace(string(b))
	}
	want := pinned
	if want == "" {
		want = own
	}
	var found []string
	for _, sig := range un.Note.UnverifiedSigs {
		found = append(found, fmt.Sprintf("%s (key id %08x)", sig.Name, sig.Hash))
	}
	where := ""
	var ce *store.CorruptError
	if errors.As(err, &ce) {
		where = fmt.Sprintf("partition %d: ", ce.Partition)
	}
	wantDesc := want
	if v, err := note.NewVerifier(want); err == nil {
		wantDesc = fmt.Sprintf("%s (key id %08x)", v.Name(), v.KeyHash())
		// Checkpoints are signed under their origin: name the partition's
		// key too, which is what the signature line should show.
		if ce != nil {
			if pk, err := store.PartitionVerifierKey(want, ce.Partition); err == nil && pk != want {
				if pv, err := note.NewVerifier(pk); err == nil {
					wantDesc += fmt.Sprintf(" (for this partition %s, key id %08x)", pv.Name(), pv.KeyHash())
				}
			}
		}
	}
	msg := fmt.Sprintf("%ssigned by a different key: the checkpoint is signed by %s, not by the expected key %s", where, strings.Join(found, ", "), wantDesc)
	if pinned != "" && own != "" && own != pinned {
		msg += fmt.Sprintf("; the ledger's own verifier.key is %s", own)
	}
	return msg, true
}

// b64 is how tally prints tree hashes (Merkle roots, leaf hashes): standard
// base64, as in C2SP checkpoints and tlog-proofs.
func b64(h []byte) string { return base64.StdEncoding.EncodeToString(h) }

func cmdKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", stdout, stderr)
	name := fs.String("name", "tally.example/ledger", "key name: the ledger origin auditors will see")
	out := fs.String("out", "", "write the private signing key to this file (0600); default prints both keys")
	show := fs.String("show", "", "print the verifier key of the signing key in this FILE (for example <data>/keys/ledger.key)")
	part := fs.Int("partition", -1, "with --show: print partition P's verifier key instead (the key named like its checkpoints' origin, <name>/pP, for stock C2SP verifiers)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *part >= 0 && *show == "" {
		return usageError{"--partition goes with --show FILE"}
	}
	if *show != "" {
		b, err := os.ReadFile(*show)
		if err != nil {
			return err
		}
		vkey, err := store.VerifierKey(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("%s: %w", *show, err)
		}
		if *part >= 0 {
			if *part > 1<<32-1 {
				return usageError{"--partition is out of range"}
			}
			if vkey, err = store.PartitionVerifierKey(vkey, uint32(*part)); err != nil {
				return err
			}
		}
		fmt.Fprintln(stdout, vkey)
		return nil
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
