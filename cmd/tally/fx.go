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

	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/oplog"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

func init() {
	register(command{"fx", "rates --data DIR [--pair EUR/USD] [--source S] [--at TIME] | post --nats URL --source S --pair EUR/USD --rate R --as-of TIME --posted-by WHO",
		"list the exchange rates posted to the ledger (read-only), or post one through the operator log", 47, cmdFX})
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

func cmdFX(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := helpOnly("fx", args, stdout, stderr); err != nil {
		return err
	}
	if len(args) == 0 {
		return usageError{"fx needs a subcommand: rates or post"}
	}
	switch args[0] {
	case "rates":
		return cmdFXRates(args[1:], stdout, stderr)
	case "post":
		return cmdFXPost(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("fx: unknown subcommand %q (rates, post)", args[0])}
}

// cmdFXPost is `tally fx post`: one exchange rate into the ledger as an
// fx_rate entry of its own, through the operator log (settle/oplog) and the
// settle commit path — never fetched by tally itself. Posting the same rate
// again (same source, pair, as-of and rate) is harmless: the log and the
// engine keep it once; a different rate under the same id (same source, pair
// and as-of) is a conflict exception in the queue, never applied: post a
// correction with another as-of.
func cmdFXPost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("fx post", stdout, stderr)
	hf := addHubFlags(fs)
	source := fs.String("source", "", "who published the rate: 1-64 of a-z A-Z 0-9 _ (ECB, treasury, ...)")
	pair := fs.String("pair", "", "BASE/QUOTE, e.g. EUR/USD: the rate is QUOTE units per 1 BASE")
	rate := fs.String("rate", "", "plain decimal > 0, at most 12 decimals")
	asOf := fs.String("as-of", "", "RFC 3339 time, whole seconds, from which the rate is in force")
	postedBy := fs.String("posted-by", "", "identity of the person or system posting it")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for the operator log to store the rate")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usageError{"--timeout must be above zero"}
	}
	if *source == "" || *pair == "" || *rate == "" || *asOf == "" || *postedBy == "" {
		return usageError{"fx post needs --source, --pair, --rate, --as-of and --posted-by"}
	}
	base, quote, ok := strings.Cut(*pair, "/")
	if !ok {
		return usageError{fmt.Sprintf("--pair %q is not BASE/QUOTE", *pair)}
	}
	at, err := time.Parse(time.RFC3339, *asOf)
	if err != nil {
		return usageError{fmt.Sprintf("--as-of %q is not an RFC 3339 time: %v", *asOf, err)}
	}
	r, err := txn.ParseRate(*rate)
	if err != nil {
		return usageError{fmt.Sprintf("--rate: %v", err)}
	}
	fr := oplog.FXRate{Source: *source, Base: base, Quote: quote, Rate: r, AsOf: at, PostedBy: *postedBy}
	payload, err := fr.Payload()
	if err != nil {
		return usageError{err.Error()}
	}
	nc, js, subj, err := hf.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	pctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	// The msg id names the payload too: a repeat of the same rate is stored
	// once, while another rate under the same id is not silently dropped by
	// JetStream's duplicate window but reaches the engine as a conflict.
	sum := sha256.Sum256(payload)
	seq, err := oplog.Post(pctx, js, subj, payload, fr.ID()+"-"+hex.EncodeToString(sum[:8]))
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"id": fr.ID(), "oplog_seq": seq, "payload": json.RawMessage(payload)})
	}
	fmt.Fprintf(stdout, "posted %s (%s %s as of %s, operator log #%d); it is in the ledger once a settle node has committed it: tally fx rates\n",
		fr.ID(), *pair, r, at.UTC().Format(time.RFC3339), seq)
	return nil
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
