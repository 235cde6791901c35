package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/recon"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

func init() {
	register(command{"reconcile", "--data DIR --provider P --period 2026-11 --report FILE [--format jsonl|csv] [--dialect D] [--out DIR] [--json] [--replay --nats URL]",
		"compare a provider's own report with the ledger; keep the result signed and hash-linked", 47,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdReconcile(a, o, e) }})
}

// reconcileExitBreaks is the exit code when the reconciliation found breaks
// (the result is kept and printed all the same).
const reconcileExitBreaks = 3

// maxReportBytes bounds the report file read into memory.
const maxReportBytes = 512 << 20

// reconcileClock stamps created_at. Tests set it.
var reconcileClock = time.Now

// reconcileOut is what `tally reconcile --json` prints.
type reconcileOut struct {
	Path   string        `json:"path"` // the signed .note
	Hash   string        `json:"hash"`
	Breaks int           `json:"breaks"`
	Result *recon.Result `json:"result"`
	Replay *recon.Replay `json:"replay,omitempty"` // --replay: what the edges did with the missing ids (kept beside the note, not in it)
}

// cmdReconcile reads the provider's report through the ingest adapters, the
// provider's ledger entries from the segment files (read-only, as `tally
// entries` does: the node may be running), compares them, keeps the result
// under <data>/reconciliations/<provider>, signed with the ledger key and
// linked to the provider's previous reconciliation, and prints it.
func cmdReconcile(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reconcile", stdout, stderr)
	data := fs.String("data", "", "the settle node's data directory")
	provider := fs.String("provider", "", "the provider whose report it is")
	periodArg := fs.String("period", "", "a month 2026-11, an ISO week 2026-W45 or a day 2026-11-05 (UTC)")
	reportFile := fs.String("report", "", "the provider's report: JSON lines or CSV")
	format := fs.String("format", "", "jsonl or csv (default: from the file name, .csv is csv, anything else jsonl)")
	dialect := fs.String("dialect", "", "ingest dialect of the rows (default canonical for jsonl, csv for csv)")
	outDir := fs.String("out", "", "also copy the result's .note, .json and .csv into this directory")
	keyFile := fs.String("signing-key", "", "ledger signing key file (default <data>/keys/ledger.key)")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of text")
	replay := fs.Bool("replay", false, "ask the edge serving the provider to republish the missing ids it still holds (needs --nats)")
	natsURL := fs.String("nats", os.Getenv("NATS_URL"), "with --replay: NATS URL of the hub (default $NATS_URL)")
	creds := fs.String("creds", os.Getenv("NATS_CREDS"), "with --replay: NATS credentials file (default $NATS_CREDS)")
	user := fs.String("user", os.Getenv("NATS_USER"), "with --replay: NATS user of a node (default $NATS_USER)")
	password := fs.String("password", os.Getenv("NATS_PASSWORD"), "with --replay: NATS password (default $NATS_PASSWORD)")
	prefix := fs.String("prefix", wire.DefaultPrefix, "with --replay: subject prefix")
	replayTimeout := fs.Duration("replay-timeout", 2*time.Second, "with --replay: wait this long for an edge to answer; none answering means no edge holds the ids")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" || *provider == "" || *periodArg == "" || *reportFile == "" {
		return usageError{"reconcile needs --data DIR, --provider P, --period P and --report FILE"}
	}
	if *replay && (*natsURL == "" || *replayTimeout <= 0) {
		return usageError{"reconcile --replay needs --nats URL (or $NATS_URL) and a positive --replay-timeout"}
	}
	period, err := statement.ParsePeriod(*periodArg)
	if err != nil {
		return usageError{err.Error()}
	}
	if *format == "" {
		*format = recon.FormatJSONL
		if strings.EqualFold(filepath.Ext(*reportFile), ".csv") {
			*format = recon.FormatCSV
		}
	}
	if *format != recon.FormatJSONL && *format != recon.FormatCSV {
		return usageError{fmt.Sprintf("--format %q: use jsonl or csv", *format)}
	}
	body, err := store.ReadFileMax(*reportFile, maxReportBytes)
	if err != nil {
		return fmt.Errorf("read report: %w", err)
	}
	rows, rejected, used, err := recon.ReadReport(body, *format, *dialect, txn.DefaultLimits())
	if err != nil {
		return err
	}

	ledgerDir := filepath.Join(*data, "ledger")
	if _, err := os.Stat(ledgerDir); err != nil {
		return fmt.Errorf("no ledger in %s: %w", *data, err)
	}
	if *keyFile == "" {
		*keyFile = filepath.Join(*data, "keys", "ledger.key")
	}
	signer, vkey, err := store.LoadOrCreateKey(*keyFile, "")
	if err != nil {
		return fmt.Errorf("signing key: %w (reconciliations are signed with the ledger key; pass --signing-key)", err)
	}
	if lk, err := store.ReadVerifierKey(ledgerDir); err == nil && lk != vkey {
		return fmt.Errorf("key %s is not the ledger's (%s holds %s): %w", *keyFile, store.VerifierKeyFile, lk, store.ErrKeyMismatch)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}

	// Segment files are written whole (temp + rename) and never changed:
	// reading them needs no lock, so a running node is no obstacle.
	var ledger []recon.LedgerTx
	err = store.ForEachEntry(ledgerDir, func(e store.Entry) error {
		if e.Provider == *provider {
			ledger = append(ledger, recon.LedgerTx{Partition: e.Partition, Index: e.Index, EdgeNode: e.EdgeNode, EdgeSeq: e.EdgeSeq, Tx: e.Tx})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read ledger: %w", err)
	}
	res := recon.Reconcile(recon.Input{Provider: *provider, Period: period.String(), Start: period.Start, End: period.End(),
		Report: rows, Rejected: rejected, Ledger: ledger})
	sum := sha256.Sum256(body)
	res.ReportName, res.ReportSHA256, res.ReportFormat, res.Dialect = filepath.Base(*reportFile), hex.EncodeToString(sum[:]), *format, used
	res.CreatedAt = reconcileClock().UTC().Truncate(time.Second).Format(time.RFC3339)

	chain, err := recon.Load(filepath.Join(*data, "reconciliations"), *provider, verifier)
	if err != nil {
		return err
	}
	kept, err := chain.Keep(res, signer)
	if err != nil {
		return err
	}
	var rep *recon.Replay
	if *replay && len(res.Missing) > 0 {
		if rep, err = askEdges(kept, *natsURL, *creds, *user, *password, *prefix, *replayTimeout); err != nil {
			return fmt.Errorf("reconciliation %d kept (%s), but the replay request failed: %w", kept.Seq, kept.Path, err)
		}
	}
	if *outDir != "" {
		base := strings.TrimSuffix(kept.Path, ".note")
		for _, ext := range []string{".note", ".json", ".csv"} {
			b, err := os.ReadFile(base + ext)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(*outDir, 0o755); err != nil {
				return err
			}
			if err := store.WriteFileAtomic(filepath.Join(*outDir, filepath.Base(base)+ext), b); err != nil {
				return err
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reconcileOut{Path: kept.Path, Hash: kept.Hash, Breaks: res.Breaks(), Result: res, Replay: rep}); err != nil {
			return err
		}
	} else {
		printReconcile(stdout, kept, res)
		if rep != nil {
			printReplay(stdout, rep)
		}
	}
	if n := res.Breaks(); n > 0 {
		return reportedError{exitError{reconcileExitBreaks, fmt.Sprintf("%d breaks", n)}}
	}
	return nil
}

// printReconcile writes the result for a person: the summary, every break
// and the totals.
func printReconcile(w io.Writer, k recon.Kept, r *recon.Result) {
	fmt.Fprintf(w, "reconciliation %d of %s for %s (%s to %s)\n", r.Seq, r.Provider, r.Period, r.Start, r.End)
	fmt.Fprintf(w, "report %s (%s, %s dialect, sha256 %s): %d rows; ledger: %d entries in the period\n",
		r.ReportName, r.ReportFormat, r.Dialect, r.ReportSHA256, r.ReportRows, r.LedgerEntries)
	fmt.Fprintf(w, "matched %d, breaks %d\n", r.Matched, r.Breaks())
	item := func(it recon.Item) string {
		s := fmt.Sprintf("%s %s %s %s at %s", it.ID, it.Type, it.Amount, it.Currency, it.OccurredAt)
		if it.Row > 0 {
			s += fmt.Sprintf(" (report row %d)", it.Row)
		}
		if it.Partition != nil {
			s += fmt.Sprintf(" (ledger partition %d index %d, edge %s seq %d)", *it.Partition, *it.Index, it.EdgeNode, it.EdgeSeq)
		}
		return s
	}
	if len(r.Missing) > 0 {
		fmt.Fprintf(w, "\nmissing: in the report, not in the ledger (%d)\n", len(r.Missing))
		for _, it := range r.Missing {
			fmt.Fprintf(w, "  %s\n", item(it))
		}
		fmt.Fprintln(w, "  the ledger does not know their edge sequences. Run again with --replay --nats URL to ask the edge")
		fmt.Fprintln(w, "  serving "+r.Provider+" to republish the ones it still holds; on the ingest node, look for the others in")
		fmt.Fprintln(w, "  `tally dlq list --provider "+r.Provider+"` (rejected at the edge: the provider must fix and resend);")
		fmt.Fprintln(w, "  an id no edge holds must be resent by the provider.")
	}
	if len(r.Extra) > 0 {
		fmt.Fprintf(w, "\nextra: in the ledger, not in the report (%d)\n", len(r.Extra))
		for _, it := range r.Extra {
			fmt.Fprintf(w, "  %s\n", item(it))
		}
	}
	if len(r.Mismatched) > 0 {
		fmt.Fprintf(w, "\nmismatched: same id, other values (%d)\n", len(r.Mismatched))
		for _, m := range r.Mismatched {
			fmt.Fprintf(w, "  %s differs in %s\n    report: %s\n    ledger: %s\n", m.ID, strings.Join(m.Fields, ", "), item(m.Report), item(m.Ledger))
		}
	}
	if len(r.Duplicates) > 0 {
		fmt.Fprintf(w, "\nduplicates in the report (%d)\n", len(r.Duplicates))
		for _, d := range r.Duplicates {
			kind := "conflicting"
			if d.Identical {
				kind = "identical"
			}
			fmt.Fprintf(w, "  %s on rows %v (%s; the first row is the one compared)\n", d.ID, d.Rows, kind)
		}
	}
	if len(r.Rejected) > 0 {
		fmt.Fprintf(w, "\nrejected report rows (%d): read as ingest would, refused, counted nowhere\n", len(r.Rejected))
		for _, j := range r.Rejected {
			fmt.Fprintf(w, "  row %d %s: %s: %s\n", j.Row, j.ID, j.Code, j.Reason)
		}
	}
	if len(r.OutOfPeriod) > 0 {
		fmt.Fprintf(w, "\nreport rows dated outside %s (%d)\n", r.Period, len(r.OutOfPeriod))
		for _, it := range r.OutOfPeriod {
			fmt.Fprintf(w, "  %s\n", item(it))
		}
	}
	fmt.Fprintf(w, "\ntotals (report − ledger)\n")
	for _, t := range r.Totals {
		fmt.Fprintf(w, "  %s %-22s report %d %s  ledger %d %s  difference %s\n", t.Currency, t.Type, t.ReportCount, t.ReportAmount, t.LedgerCount, t.LedgerAmount, t.Difference)
	}
	fmt.Fprintf(w, "\nkept %s (hash %s, previous %s)\n", k.Path, k.Hash, previousOrNone(r.Previous))
}

func previousOrNone(h string) string {
	if h == "" {
		return "none (the first)"
	}
	return h
}

// askEdges sends the missing ids of kept to the edges over NATS and keeps
// the outcome beside the result.
func askEdges(kept recon.Kept, url, creds, user, password, prefix string, timeout time.Duration) (*recon.Replay, error) {
	opts := []nats.Option{nats.Name("tally reconcile"), nats.Timeout(timeout)}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	if user != "" {
		opts = append(opts, nats.UserInfo(user, password))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := kept.Result
	out, err := recon.AskReplay(ctx, nc, recon.ReplayOptions{Subjects: wire.NewSubjects(prefix), Timeout: timeout}, r.Provider, recon.MissingIDs(r))
	if err != nil {
		return nil, err
	}
	rep := &recon.Replay{Provider: r.Provider, Seq: kept.Seq, At: reconcileClock().UTC().Truncate(time.Second).Format(time.RFC3339), Outcomes: out}
	if err := recon.KeepReplay(kept, *rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// printReplay lists each missing id's outcome.
func printReplay(w io.Writer, r *recon.Replay) {
	fmt.Fprintf(w, "\nreplay of the missing ids (%d): republished %d, dropped by retention %d, not held by the edge %d, no edge answered %d, failed %d\n",
		len(r.Outcomes), r.Count(recon.ReplayRepublished), r.Count(recon.ReplayRetention), r.Count(recon.ReplayNotAccepted), r.Count(recon.ReplayNoEdge), r.Count(recon.ReplayFailed))
	for _, o := range r.Outcomes {
		fmt.Fprintf(w, "  %s %s: %s\n", o.ID, o.Outcome, o.Reason)
	}
	if r.Count(recon.ReplayRepublished) > 0 {
		fmt.Fprintln(w, "  run the reconciliation again once settlement caught up: a republished id still missing then was passed by")
		fmt.Fprintln(w, "  settlement before (see `tally exceptions`); the signed result above is unchanged, the replay is kept beside it")
	}
}
