package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
)

func init() {
	register(command{"statements", "--data DIR --period 2026-11 [--party X] [--csv] [--dry-run] [--report-currency EUR]", "issue signed period statements per party and currency", 45,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdStatements(a, o, e) }})
}

// statementOut is one statement as `tally statements` prints it.
type statementOut struct {
	Status    string               `json:"status"` // issued, exists (issued by an earlier run), provisional (period not ended), dry_run
	Path      string               `json:"path,omitempty"`
	Hash      string               `json:"hash"`
	Statement *statement.Statement `json:"statement"`
}

// cmdStatements computes the period's statements from the ledger files and
// the fee contracts of the rule sets the ledger recorded, and issues them
// under <data>/statements, signed with the ledger key and hash-linked per
// party. An issued statement is never rewritten.
// statementsClock is the time statements are computed at: a period that
// ends after it gets provisional statements. Tests set it.
var statementsClock = time.Now

func cmdStatements(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("statements", stdout, stderr)
	data := fs.String("data", "", "the node's data directory")
	periodArg := fs.String("period", "", "a month 2026-11, an ISO week 2026-W45 or a day 2026-11-05 (UTC)")
	party := fs.String("party", "", "only this party's statements")
	rulesFile := fs.String("rules", "", "take fee contracts from this rule file instead of <data>/ledger/rules")
	keyFile := fs.String("signing-key", "", "ledger signing key file (default <data>/keys/ledger.key)")
	fs.alias("key", "signing-key")
	asCSV := fs.Bool("csv", false, "print CSV instead of JSON")
	dryRun := fs.Bool("dry-run", false, "compute and print, issue nothing")
	reportCur := fs.String("report-currency", "", "also total the statements printed in this currency at period-end rates, each line with its rate (a view: not signed, not paid)")
	reportSource := fs.String("report-source", "", "with --report-currency: only rates of this source (default any)")
	reportInverse := fs.Bool("report-inverse", false, "with --report-currency: a rate of the opposite pair may be used, as 1 ÷ rate")
	reportRounding := fs.String("report-rounding", string(money.HalfEven), "with --report-currency: the rounding of every conversion (half_up, half_even, down)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" || *periodArg == "" {
		return usageError{"statements needs --data DIR and --period P"}
	}
	roundingSet := false
	fs.Visit(func(f *flag.Flag) { roundingSet = roundingSet || f.Name == "report-rounding" })
	if *reportCur == "" && (*reportSource != "" || *reportInverse || roundingSet) {
		return usageError{"--report-source, --report-inverse and --report-rounding go with --report-currency"}
	}
	if *reportCur != "" {
		if _, ok := money.Lookup(*reportCur); !ok {
			return usageError{fmt.Sprintf("--report-currency: %q is not a known ISO 4217 currency code", *reportCur)}
		}
		if !money.Rounding(*reportRounding).Valid() {
			return usageError{fmt.Sprintf("--report-rounding: unknown rounding %q (use half_up, half_even or down)", *reportRounding)}
		}
	}
	period, err := statement.ParsePeriod(*periodArg)
	if err != nil {
		return usageError{err.Error()}
	}
	// A period that has not ended yet (in the party's time zone) gets
	// provisional statements: signed, marked so, kept outside the chain and
	// never final.
	now := statementsClock().UTC().Truncate(time.Second)
	ledgerDir := filepath.Join(*data, "ledger")
	if _, err := os.Stat(ledgerDir); err != nil {
		return fmt.Errorf("no ledger in %s: %w", *data, err)
	}
	book, err := statementBook(ledgerDir, *rulesFile)
	if err != nil {
		return err
	}
	src := &statement.Source{Book: book}
	if err := store.ForEachEntry(ledgerDir, func(e store.Entry) error { src.Entries = append(src.Entries, e); return nil }); err != nil {
		return fmt.Errorf("read ledger: %w", err)
	}
	var signer note.Signer
	var verifier note.Verifier
	if *keyFile == "" {
		*keyFile = filepath.Join(*data, "keys", "ledger.key")
	}
	if _, err := os.Stat(*keyFile); err != nil {
		if !*dryRun {
			return fmt.Errorf("signing key: %w (statements are signed with the ledger key; pass --signing-key or --dry-run)", err)
		}
	} else {
		s, vkey, err := store.LoadOrCreateKey(*keyFile, "")
		if err != nil {
			return err
		}
		if lk, err := store.ReadVerifierKey(ledgerDir); err == nil && lk != vkey {
			return fmt.Errorf("key %s is not the ledger's (%s holds %s): %w", *keyFile, store.VerifierKeyFile, lk, store.ErrKeyMismatch)
		}
		if verifier, err = note.NewVerifier(vkey); err != nil {
			return err
		}
		signer = s
	}
	root := filepath.Join(*data, "statements")
	var outs []statementOut
	type toIssue struct {
		i           int
		chain       *statement.Chain
		provisional bool
	}
	var pending []toIssue
	chains := map[string]*statement.Chain{}
	if verifier != nil {
		// Issued statements are final: a period before the last issued one
		// is never computed again (its late entries are adjustments of the
		// next statement).
		stored, err := statement.StoredParties(root)
		if err != nil {
			return err
		}
		for _, p := range stored {
			if *party != "" && p != *party {
				continue
			}
			chain, err := statement.Load(root, p, verifier)
			if err != nil {
				return err
			}
			chains[p] = chain
			for _, is := range chain.Issued {
				if is.Statement.Start.After(period.Start) && chain.Find(period.String(), is.Statement.Currency) == nil {
					return fmt.Errorf("%s already has a statement for %s; %s cannot be issued after it: %w", p, is.Statement.Period, period, statement.ErrOrder)
				}
			}
		}
	}
	for _, pc := range statement.Parties(src, period) {
		if *party != "" && pc[0] != *party {
			continue
		}
		chain := chains[pc[0]]
		if chain == nil {
			if verifier != nil {
				if chain, err = statement.Load(root, pc[0], verifier); err != nil {
					return err
				}
			} else {
				chain = &statement.Chain{Party: pc[0]}
			}
			chains[pc[0]] = chain
		}
		if is := chain.Find(period.String(), pc[1]); is != nil {
			outs = append(outs, statementOut{"exists", is.Path, is.Hash, is.Statement})
			continue
		}
		var prior *statement.Statement
		if last := chain.LastIn(pc[1]); last != nil {
			prior = last.Statement
		}
		s, err := statement.Build(src, pc[0], pc[1], period, prior)
		if err != nil {
			return err
		}
		provisional := now.Before(s.End)
		if provisional {
			s.Provisional, s.AsOf = true, now.Format(time.RFC3339)
		}
		if *dryRun {
			if last := chain.Last(); last != nil {
				s.Previous = last.Hash
			}
			h := s.Hash()
			outs = append(outs, statementOut{"dry_run", "", fmt.Sprintf("%x", h), s})
			continue
		}
		// Issued below, after the report (if asked for) is computed: a
		// report that cannot be made issues nothing.
		pending = append(pending, toIssue{len(outs), chain, provisional})
		outs = append(outs, statementOut{Statement: s})
	}
	if *party != "" && len(outs) == 0 {
		return fmt.Errorf("party %q has no entries before the end of %s and no fee contract for it", *party, period)
	}
	// The report is computed before anything is issued or printed: a
	// statement whose closing has no rate in force at its period's end
	// fails the command (fx.ErrNoRate) and nothing is issued.
	var report *statement.Report
	if *reportCur != "" {
		rates, err := fx.NewTable(src.Entries)
		if err != nil {
			return err
		}
		ss := make([]*statement.Statement, len(outs))
		for i, o := range outs {
			ss[i] = o.Statement
		}
		if report, err = statement.Totals(ss, *reportCur, rates, fx.Policy{Source: *reportSource, Inverse: *reportInverse}, money.Rounding(*reportRounding)); err != nil {
			return err
		}
	}
	for _, p := range pending {
		s := outs[p.i].Statement
		if p.provisional {
			is, err := p.chain.IssueProvisional(s, signer)
			if err != nil {
				return err
			}
			outs[p.i] = statementOut{"provisional", is.Path, is.Hash, is.Statement}
			continue
		}
		is, err := p.chain.Issue(s, signer)
		if err != nil {
			return err
		}
		outs[p.i] = statementOut{"issued", is.Path, is.Hash, is.Statement}
	}
	if *asCSV {
		for i, o := range outs {
			b := statement.CSV(o.Statement)
			if i > 0 { // one header for the whole output
				b = b[strings.IndexByte(string(b), '\n')+1:]
			}
			if _, err := stdout.Write(b); err != nil {
				return err
			}
		}
		if report != nil {
			b := statement.ReportCSV(report, len(outs) == 0)
			if _, err := stdout.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
	if outs == nil {
		outs = []statementOut{}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if report != nil {
		return enc.Encode(statementsReportOut{Statements: outs, Report: report})
	}
	return enc.Encode(outs)
}

// statementsReportOut is the JSON of `tally statements --report-currency`:
// the statements as without the flag, and their total in the reporting
// currency.
type statementsReportOut struct {
	Statements []statementOut    `json:"statements"`
	Report     *statement.Report `json:"report"`
}

// statementBook is the rule book whose fee contracts statements apply: a
// rule file if given, else every canonical rule set the settle node recorded
// in <ledger>/rules (none: statements without fees).
func statementBook(ledgerDir, rulesFile string) (*rules.Book, error) {
	if rulesFile != "" {
		return rules.ParseFile(rulesFile)
	}
	names, err := filepath.Glob(filepath.Join(ledgerDir, "rules", "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var vs []*rules.Version
	for _, n := range names {
		b, err := os.ReadFile(n)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		v, err := rules.ParseCanonical(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if h := v.Hash(); filepath.Base(n) != fmt.Sprintf("%x.json", h) {
			return nil, fmt.Errorf("%s holds rule set %x: the file name must be its hash", n, h)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, nil
	}
	return rules.NewBook(vs...)
}
