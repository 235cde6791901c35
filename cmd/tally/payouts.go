package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/payout"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

func init() {
	register(command{"payouts", "run --data DIR --period P --banks FILE --created-by A --approve-by B (--nats URL | --unreviewed) [--out DIR] | list --data DIR", "pay final statements: pain.001 XML and CSV, a signed run record", 46,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdPayouts(a, o, e) }})
}

// payoutsOut is what `tally payouts run` prints.
type payoutsOut struct {
	Run     *payout.Run   `json:"run"`
	Hash    string        `json:"hash"`
	Path    string        `json:"path"`
	XML     string        `json:"xml"`
	CSV     string        `json:"csv"`
	Skipped []payout.Skip `json:"skipped"`
}

func cmdPayouts(args []string, stdout, stderr io.Writer) error {
	if err := helpOnly("payouts", args, stdout, stderr); err != nil {
		return err
	}
	if len(args) == 0 {
		return usageError{"payouts needs a subcommand: run or list"}
	}
	switch args[0] {
	case "run":
		return cmdPayoutsRun(args[1:], stdout, stderr)
	case "list":
		return cmdPayoutsList(args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("payouts: unknown subcommand %q (run or list)", args[0])}
}

// ledgerKeys loads the ledger signing key (default <data>/keys/ledger.key)
// and checks it is the ledger's.
func ledgerKeys(data, keyFile string) (note.Signer, note.Verifier, error) {
	if keyFile == "" {
		keyFile = filepath.Join(data, "keys", "ledger.key")
	}
	if _, err := os.Stat(keyFile); err != nil {
		return nil, nil, fmt.Errorf("signing key: %w (payout runs and statements are signed with the ledger key; pass --signing-key)", err)
	}
	s, vkey, err := store.LoadOrCreateKey(keyFile, "")
	if err != nil {
		return nil, nil, err
	}
	ledgerDir := filepath.Join(data, "ledger")
	if lk, err := store.ReadVerifierKey(ledgerDir); err == nil && lk != vkey {
		return nil, nil, fmt.Errorf("key %s is not the ledger's (%s holds %s): %w", keyFile, store.VerifierKeyFile, lk, store.ErrKeyMismatch)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, err
	}
	return s, v, nil
}

func cmdPayoutsRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("payouts run", stdout, stderr)
	data := fs.String("data", "", "the node's data directory (statements under <data>/statements, runs under <data>/payouts)")
	periodArg := fs.String("period", "", "pay the final statements of this period (2026-11, 2026-W45, 2026-11-05)")
	banksFile := fs.String("banks", "", "bank details file: debtor { name, iban, bic } and party \"X\" { name, iban, bic }")
	createdBy := fs.String("created-by", "", "who creates the run")
	approveBy := fs.String("approve-by", "", "who approves it: must differ from --created-by")
	outDir := fs.String("out", "", "also write the pain.001 XML and CSV here")
	execDate := fs.String("execution-date", "", "requested execution date YYYY-MM-DD (default: today, UTC)")
	keyFile := fs.String("signing-key", "", "ledger signing key file (default <data>/keys/ledger.key)")
	natsURL := fs.String("nats", "", "the hub's NATS URL: pay only statements approved in the console's review (<PREFIX>_CASES)")
	prefix := fs.String("prefix", wire.DefaultPrefix, "with --nats: the deployment's subject prefix")
	unreviewed := fs.Bool("unreviewed", false, "pay without checking the console's statement review (nodes without the console)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" || *periodArg == "" || *banksFile == "" || *createdBy == "" || *approveBy == "" {
		return usageError{"payouts run needs --data DIR, --period P, --banks FILE, --created-by A and --approve-by B"}
	}
	if (*natsURL == "") == !*unreviewed {
		return usageError{"payouts run needs --nats URL (pay only statements approved in the console) or, without the console, --unreviewed"}
	}
	if *createdBy == *approveBy {
		return fmt.Errorf("--approve-by %q is --created-by: %w", *approveBy, payout.ErrMakerChecker)
	}
	period, err := statement.ParsePeriod(*periodArg)
	if err != nil {
		return usageError{err.Error()}
	}
	src, err := os.ReadFile(*banksFile)
	if err != nil {
		return err
	}
	banks, err := payout.ParseBanks(src, *banksFile)
	if err != nil {
		return err
	}
	signer, verifier, err := ledgerKeys(*data, *keyFile)
	if err != nil {
		return err
	}
	// Only the chains: provisional statements (under provisional/) are
	// never candidates, and Plan refuses one if it were.
	root := filepath.Join(*data, "statements")
	parties, err := statement.StoredParties(root)
	if err != nil {
		return err
	}
	var cands []payout.Candidate
	var seqs []int // each candidate's number in its party's chain
	for _, p := range parties {
		chain, err := statement.Load(root, p, verifier)
		if err != nil {
			return err
		}
		for _, is := range chain.Issued {
			if is.Statement.Period == period.String() {
				cands = append(cands, payout.Candidate{Hash: is.Hash, Statement: is.Statement})
				seqs = append(seqs, is.Seq)
			}
		}
	}
	var unapproved []payout.Skip
	if *natsURL != "" && len(cands) > 0 {
		if cands, unapproved, err = reviewedOnly(context.Background(), *natsURL, *prefix, cands, seqs); err != nil {
			return err
		}
		if len(cands) == 0 {
			for _, s := range unapproved {
				fmt.Fprintf(stderr, "skipped %s %s %s: %s\n", s.Party, s.Currency, s.Period, s.Reason)
			}
			return fmt.Errorf("no statement of %s is approved in the console's review: %w", period, payout.ErrNothingToPay)
		}
	}
	if len(cands) == 0 {
		return fmt.Errorf("no final statement for %s under %s (issue them with tally statements once the period has ended): %w", period, root, payout.ErrNothingToPay)
	}
	runsDir := filepath.Join(*data, "payouts")
	recs, err := payout.Load(runsDir, verifier)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := payout.WriteFiles(runsDir, r, true); err != nil { // after a crash between the note and its files
			return err
		}
	}
	// A statement with foreign balances (a party with a settlement
	// currency) is paid at the rate in force now: the rates are the fx_rate
	// entries of the ledger, read only when a candidate needs them.
	var rates *fx.Table
	for _, c := range cands {
		for _, l := range c.Statement.FX {
			if l.Kind == statement.FXDifference && rates == nil {
				if rates, err = ledgerRates(filepath.Join(*data, "ledger")); err != nil {
					return fmt.Errorf("fx rates for the payout of %s %s %s: %w", c.Statement.Party, c.Statement.Currency, c.Statement.Period, err)
				}
			}
		}
	}
	run, skips, err := payout.Plan(payout.Runs(recs), cands, payout.Request{
		Period: period.String(), CreatedBy: *createdBy, ApprovedBy: *approveBy, Now: statementsClock(), Execution: *execDate, Banks: banks,
		Rates: rates,
	})
	skips = append(unapproved, skips...)
	if err != nil {
		for _, s := range skips {
			fmt.Fprintf(stderr, "skipped %s %s %s: %s\n", s.Party, s.Currency, s.Period, s.Reason)
		}
		return err
	}
	rec, err := payout.Record(runsDir, recs, run, signer)
	if err != nil {
		return err
	}
	xmlDir := runsDir
	if *outDir != "" {
		if err := payout.WriteFiles(*outDir, rec, false); err != nil {
			return err
		}
		xmlDir = *outDir
	}
	if skips == nil {
		skips = []payout.Skip{}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(payoutsOut{Run: rec.Run, Hash: rec.Hash, Path: rec.Path,
		XML: filepath.Join(xmlDir, run.ID+".xml"), CSV: filepath.Join(xmlDir, run.ID+".csv"), Skipped: skips})
}

// payoutsListOut is one run as `tally payouts list` prints it.
type payoutsListOut struct {
	ID         string         `json:"id"`
	Hash       string         `json:"hash"`
	Period     string         `json:"period"`
	CreatedAt  string         `json:"created_at"`
	CreatedBy  string         `json:"created_by"`
	ApprovedBy string         `json:"approved_by"`
	Items      int            `json:"items"`
	Totals     []payout.Total `json:"totals"`
	Statements []string       `json:"statements"`
}

func cmdPayoutsList(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("payouts list", stdout, stderr)
	data := fs.String("data", "", "the node's data directory")
	keyFile := fs.String("signing-key", "", "ledger signing key file (default <data>/keys/ledger.key)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return usageError{"payouts list needs --data DIR"}
	}
	_, verifier, err := ledgerKeys(*data, *keyFile)
	if err != nil {
		return err
	}
	recs, err := payout.Load(filepath.Join(*data, "payouts"), verifier)
	if err != nil {
		return err
	}
	out := []payoutsListOut{}
	for _, r := range recs {
		o := payoutsListOut{ID: r.Run.ID, Hash: r.Hash, Period: r.Run.Period, CreatedAt: r.Run.CreatedAt.Format("2006-01-02T15:04:05Z07:00"),
			CreatedBy: r.Run.CreatedBy, ApprovedBy: r.Run.ApprovedBy, Items: len(r.Run.Items), Totals: r.Run.Totals, Statements: []string{}}
		for _, it := range r.Run.Items {
			o.Statements = append(o.Statements, it.Statement)
		}
		out = append(out, o)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// reviewedOnly keeps the candidates approved (or issued) in the console's
// statement review (console.StatementPayable, read from the hub's
// <PREFIX>_CASES bucket) and returns the others as skips.
func reviewedOnly(ctx context.Context, natsURL, prefix string, cands []payout.Candidate, seqs []int) ([]payout.Candidate, []payout.Skip, error) {
	nc, err := nats.Connect(natsURL, nats.Timeout(10*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("--nats %s: %w", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, console.CasesBucket(prefix))
	if err != nil {
		return nil, nil, fmt.Errorf("the console's review bucket %s: %w", console.CasesBucket(prefix), err)
	}
	var keep []payout.Candidate
	var skips []payout.Skip
	for i, c := range cands {
		s := c.Statement
		ok, state, err := console.StatementPayable(ctx, kv, s.Party, seqs[i], c.Hash)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			keep = append(keep, c)
			continue
		}
		skips = append(skips, payout.Skip{Party: s.Party, Currency: s.Currency, Period: s.Period, Statement: c.Hash,
			Reason: "statement review is " + state + ": approve it in the console first"})
	}
	return keep, skips, nil
}
