package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/tally-mesh/tally/console"
)

// `tally exceptions cases|show|propose|approve|reject|dismiss|post`: the
// console's case workflow over its API (docs/console.md, "Exceptions and
// approvals"). The API token's account is the identity that acts.
var caseCommands = map[string]bool{"cases": true, "show": true, "propose": true, "approve": true, "reject": true, "dismiss": true, "post": true}

// lineFlags collects repeated --line party=amount.
type lineFlags []console.Line

func (l *lineFlags) String() string { return fmt.Sprint(*l) }
func (l *lineFlags) Set(s string) error {
	party, amount, ok := strings.Cut(s, "=")
	if !ok || party == "" || amount == "" {
		return fmt.Errorf("--line %q: use party=amount, e.g. studio-a=12.50", s)
	}
	*l = append(*l, console.Line{Party: party, Amount: amount})
	return nil
}

func cmdCase(ctx context.Context, action string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("exceptions "+action, stdout, stderr)
	node := fs.String("node", "", "the node's console URL (settle.console_listen)")
	token := fs.String("token", "", "an API token (default $TALLY_CONSOLE_TOKEN); its account acts")
	state := fs.String("state", "", "cases: only this state (open, proposed, approved, rejected, posted, dismissed)")
	source := fs.String("source", "", "cases: only this source (exception, reconciliation, anomaly)")
	currency := fs.String("currency", "", "propose: the adjustment's currency")
	var lines lineFlags
	fs.Var(&lines, "line", "propose: party=amount (signed, the currency's decimals); repeat per party")
	reason := fs.String("reason", "", "propose, reject, dismiss: why")
	revision := fs.Uint64("revision", 0, "act only if the case is still at this revision (0: any)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *node == "" {
		return usageError{"exceptions " + action + " needs --node URL"}
	}
	if action == "cases" {
		q := url.Values{}
		if *state != "" {
			q.Set("state", *state)
		}
		if *source != "" {
			q.Set("source", *source)
		}
		var cs []console.Case
		if err := consoleGet(ctx, *node, *token, "/v1/cases?"+q.Encode(), &cs); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, cs)
		}
		fmt.Fprintf(stdout, "%-34s %-10s %-15s %-14s %-16s %s\n", "case", "state", "source", "kind", "provider", "summary")
		for _, c := range cs {
			fmt.Fprintf(stdout, "%-34s %-10s %-15s %-14s %-16s %s\n", c.ID, c.State, c.Source, c.Kind, c.Provider, c.Summary)
		}
		return nil
	}
	if fs.NArg() != 1 {
		return usageError{"exceptions " + action + " needs one case id after the flags"}
	}
	id := fs.Arg(0)
	var cs console.Case
	if action == "show" {
		if err := consoleGet(ctx, *node, *token, "/v1/cases/"+url.PathEscape(id), &cs); err != nil {
			return err
		}
	} else {
		req := map[string]any{}
		if *revision != 0 {
			req["revision"] = *revision
		}
		if *reason != "" {
			req["reason"] = *reason
		}
		if action == "propose" {
			req["currency"], req["lines"] = *currency, []console.Line(lines)
		}
		body, _ := json.Marshal(req)
		if err := consoleDo(ctx, http.MethodPost, *node, *token, "/v1/cases/"+url.PathEscape(id)+"/"+action, body, &cs); err != nil {
			return err
		}
	}
	if *asJSON {
		return printJSON(stdout, cs)
	}
	fmt.Fprintf(stdout, "case %s: %s (revision %d)\n", cs.ID, cs.State, cs.Revision)
	if p := cs.Proposal; p != nil {
		fmt.Fprintf(stdout, "adjustment %d: %s %s, net %s, by %s, %d of %d approvals\n", p.N, p.Currency,
			(console.Correction{Lines: p.Lines}).LinesMeta(), p.Net, p.By, len(cs.Approvals), p.ApprovalsRequired)
	}
	if cs.Posted != nil {
		fmt.Fprintf(stdout, "posted as %s (%d)\n", cs.Posted.CorrectionID, cs.Posted.Seq)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
