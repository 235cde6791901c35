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
	"github.com/shopspring/decimal"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/oplog"
	"github.com/tally-mesh/tally/settle/payout"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

func init() {
	register(command{"payouts", "run --data DIR --period P --banks FILE --created-by A --approve-by B (--nats URL | --unreviewed) [--out DIR] | list --data DIR", "pay final statements: pain.001 XML and CSV, a signed run record, a payout_run ledger entry", 46,
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
	// Ledger says how the run entered the ledger: the payout_run entry's id
	// and its operator-log sequence, or Recorded false (--unreviewed).
	Ledger payoutLedgerOut `json:"ledger"`
}

type payoutLedgerOut struct {
	Recorded bool   `json:"recorded"`
	ID       string `json:"id"`
	OplogSeq uint64 `json:"oplog_seq,omitempty"`
	Note     string `json:"note,omitempty"`
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
	runsDir := filepath.Join(*data, "payouts")
	recs, err := payout.Load(runsDir, verifier)
	if err != nil {
		return err
	}
	// The ledger's own record of what was paid: a statement named by a
	// payout_run entry is never paid again, whatever the run chain says, and
	// a payout_run entry this run chain does not hold (another data
	// directory's run, a removed record) stops the run: what it paid is not
	// known here.
	paidInLedger, err := ledgerPayouts(filepath.Join(*data, "ledger"))
	if err != nil {
		return err
	}
	if err := ledgerMatchesRuns(paidInLedger, recs); err != nil {
		return err
	}
	var js jetstream.JetStream
	if *natsURL != "" {
		nc, err := nats.Connect(*natsURL, nats.Name("tally payouts"), nats.Timeout(10*time.Second))
		if err != nil {
			return fmt.Errorf("--nats %s: %w", *natsURL, err)
		}
		defer nc.Close()
		if js, err = jetstream.New(nc); err != nil {
			return err
		}
		// The run is recorded before it is posted: make sure it can be.
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, err = js.Stream(sctx, wire.NewSubjects(*prefix).OplogStream())
		cancel()
		if err != nil {
			return fmt.Errorf("--nats %s: the operator log %s, through which the run enters the ledger: %w", *natsURL, wire.NewSubjects(*prefix).OplogStream(), err)
		}
		// A run recorded before but not (yet) in the ledger — a crash or a
		// lost connection between the record and its post, or a run made
		// --unreviewed — is posted now. The same run under the same message
		// id is stored once; in the ledger already, it is a duplicate.
		for _, r := range recs {
			if paidInLedger.runs[r.Run.ID] == "" {
				seq, err := postPayoutRun(context.Background(), js, wire.NewSubjects(*prefix), r)
				if err != nil {
					return fmt.Errorf("recorded run %s is not in the ledger and could not be posted: %w", r.Run.ID, err)
				}
				fmt.Fprintf(stderr, "posted recorded run %s to the ledger (operator log #%d)\n", r.Run.ID, seq)
			}
		}
	}
	var ledgerSkips []payout.Skip
	kept := cands[:0:0]
	var keptSeqs []int
	for i, c := range cands {
		if by, ok := paidInLedger.statements[c.Hash]; ok {
			ledgerSkips = append(ledgerSkips, payout.Skip{Party: c.Statement.Party, Currency: c.Statement.Currency, Period: c.Statement.Period, Statement: c.Hash,
				Reason: "already paid by " + by + " (payout_run entry in the ledger)"})
			continue
		}
		kept, keptSeqs = append(kept, c), append(keptSeqs, seqs[i])
	}
	cands, seqs = kept, keptSeqs
	unapproved := ledgerSkips
	if *natsURL != "" && len(cands) > 0 {
		var notReviewed []payout.Skip
		if cands, notReviewed, err = reviewedOnly(context.Background(), js, *prefix, cands, seqs); err != nil {
			return err
		}
		unapproved = append(unapproved, notReviewed...)
		if len(cands) == 0 {
			for _, s := range unapproved {
				fmt.Fprintf(stderr, "skipped %s %s %s: %s\n", s.Party, s.Currency, s.Period, s.Reason)
			}
			return fmt.Errorf("no statement of %s is approved in the console's review: %w", period, payout.ErrNothingToPay)
		}
	}
	if len(cands) == 0 {
		for _, s := range unapproved {
			fmt.Fprintf(stderr, "skipped %s %s %s: %s\n", s.Party, s.Currency, s.Period, s.Reason)
		}
		return fmt.Errorf("no final statement for %s under %s left to pay (issue them with tally statements once the period has ended): %w", period, root, payout.ErrNothingToPay)
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
	led := payoutLedgerOut{ID: txn.PayoutRunID(run.ID)}
	var postErr error
	if js != nil {
		led.OplogSeq, postErr = postPayoutRun(context.Background(), js, wire.NewSubjects(*prefix), rec)
		led.Recorded = postErr == nil
		if postErr == nil {
			led.Note = "posted through the operator log: in the ledger once a settle node has committed it (tally verify counts it)"
		}
	} else {
		led.Note = "not recorded in the ledger (--unreviewed without --nats): the ledger's never-pay-twice check (tally verify) does not see this run until a later tally payouts run --nats posts it"
		fmt.Fprintf(stderr, "run %s is NOT recorded in the ledger: --unreviewed without --nats posts no payout_run entry; a later tally payouts run --nats posts it\n", run.ID)
	}
	if postErr != nil {
		led.Note = "posting failed: " + postErr.Error()
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(payoutsOut{Run: rec.Run, Hash: rec.Hash, Path: rec.Path,
		XML: filepath.Join(xmlDir, run.ID+".xml"), CSV: filepath.Join(xmlDir, run.ID+".csv"), Skipped: skips, Ledger: led}); err != nil {
		return err
	}
	if postErr != nil {
		return fmt.Errorf("run %s is recorded (%s) but its payout_run entry was not posted to the ledger: %w; run tally payouts run --nats again to post it", run.ID, rec.Path, postErr)
	}
	return nil
}

// postPayoutRun posts a recorded run's payout_run entry through the
// operator log, with message id = entry id + run hash (a retry is stored
// once).
func postPayoutRun(ctx context.Context, js jetstream.JetStream, subj wire.Subjects, rec payout.Recorded) (uint64, error) {
	pr := oplog.PayoutRun{Run: rec.Run.ID, RunHash: rec.Hash, CreatedBy: rec.Run.CreatedBy, ApprovedBy: rec.Run.ApprovedBy, CreatedAt: rec.Run.CreatedAt}
	for _, it := range rec.Run.Items {
		pr.Statements = append(pr.Statements, it.Statement)
	}
	for _, t := range rec.Run.Totals {
		sum, err := decimal.NewFromString(t.Sum)
		if err != nil {
			return 0, fmt.Errorf("run %s total %s %q: %w", rec.Run.ID, t.Currency, t.Sum, err)
		}
		pr.Totals = append(pr.Totals, oplog.PayoutTotal{Currency: t.Currency, Sum: sum})
	}
	payload, err := pr.Payload()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return oplog.Post(ctx, js, subj, payload, pr.MsgID())
}

// paidLedger is what the payout_run entries of a ledger say.
type paidLedger struct {
	statements map[string]string // statement hash → run id that pays it
	runs       map[string]string // run id → run hash
}

// ledgerPayouts reads the payout_run entries of the ledger under ledgerDir
// (none when it does not exist). A malformed one, or two paying the same
// statement, is an error: the ledger's record of payments must be whole.
func ledgerPayouts(ledgerDir string) (paidLedger, error) {
	pl := paidLedger{statements: map[string]string{}, runs: map[string]string{}}
	err := store.ForEachEntry(ledgerDir, func(e store.Entry) error {
		if e.Tx.Type != txn.PayoutRun {
			return nil
		}
		p, err := txn.ParsePayoutRun(e.Tx)
		if err != nil {
			return fmt.Errorf("payout_run entry at partition %d entry %d: %w", e.Partition, e.Index, err)
		}
		pl.runs[p.Run] = p.RunHash
		for _, h := range p.Statements {
			if by, ok := pl.statements[h]; ok {
				return fmt.Errorf("the ledger pays statement %s twice, by %s and %s (tally verify): refusing to pay anything", h, by, p.Run)
			}
			pl.statements[h] = p.Run
		}
		return nil
	})
	if err != nil {
		return pl, fmt.Errorf("read ledger payouts: %w", err)
	}
	return pl, nil
}

// ledgerMatchesRuns checks that every payout_run entry of the ledger is a
// run of the chain, with the same hash.
func ledgerMatchesRuns(pl paidLedger, recs []payout.Recorded) error {
	byID := map[string]string{}
	for _, r := range recs {
		byID[r.Run.ID] = r.Hash
	}
	for run, h := range pl.runs {
		if got, ok := byID[run]; !ok || got != h {
			return fmt.Errorf("the ledger records payout run %s (hash %s), which the run records here do not hold (hash %q): what it paid is not known to this data directory: %w", run, h, got, payout.ErrChain)
		}
	}
	return nil
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
func reviewedOnly(ctx context.Context, js jetstream.JetStream, prefix string, cands []payout.Candidate, seqs []int) ([]payout.Candidate, []payout.Skip, error) {
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
