package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tally-mesh/tally/ops/sla"
)

func init() {
	register(command{"sla", "--period YYYY-MM [--party X] [--json|--csv] [--nats URL]", "each partner's month against its SLA targets, from TALLY_SLA", 65, cmdSLA})
}

// cmdSLA recomputes a month's SLA figures from the windows in TALLY_SLA.
func cmdSLA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sla", stdout, stderr)
	hf := addHubFlags(fs)
	period := fs.String("period", "", "the month, YYYY-MM (UTC)")
	party := fs.String("party", "", "only this partner")
	asJSON := fs.Bool("json", false, "one JSON object per partner")
	asCSV := fs.Bool("csv", false, "CSV with a header row")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *period == "" {
		return usageError{"tally sla needs --period YYYY-MM"}
	}
	if *asJSON && *asCSV {
		return usageError{"tally sla: --json or --csv, not both"}
	}
	from, to, err := sla.Period(*period)
	if err != nil {
		return usageError{err.Error()}
	}
	nc, js, subj, err := hf.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ws, err := sla.Load(lctx, js, subj, *party, from, to)
	if err != nil {
		return err
	}
	figs := sla.Aggregate(ws, from, to, time.Now())
	pct := func(v float64) string { return strconv.FormatFloat(100*v, 'f', 3, 64) }
	target := func(v float64, f func(float64) string) string {
		if v == 0 {
			return "-"
		}
		return f(v)
	}
	switch {
	case *asJSON:
		enc := json.NewEncoder(stdout)
		for _, f := range figs {
			if err := enc.Encode(f); err != nil {
				return err
			}
		}
	case *asCSV:
		w := csv.NewWriter(stdout)
		w.Write([]string{"party", "from", "to", "windows", "availability", "target_availability", "ack_p99_ms", "target_ack_p99_ms", "requests", "transactions", "rejected", "reject_rate", "target_max_reject_rate", "breach_windows", "met", "missed"})
		for _, f := range figs {
			w.Write([]string{f.Party, f.From.Format(time.RFC3339), f.To.Format(time.RFC3339), strconv.Itoa(f.Windows),
				strconv.FormatFloat(f.Availability, 'f', 6, 64), strconv.FormatFloat(f.Target.Availability, 'f', -1, 64),
				strconv.FormatFloat(float64(f.AckP99)/1e6, 'f', 3, 64), strconv.FormatFloat(float64(f.Target.AckP99)/1e6, 'f', 3, 64),
				strconv.FormatUint(f.Requests, 10), strconv.FormatUint(f.Transactions, 10), strconv.FormatUint(f.Rejected, 10),
				strconv.FormatFloat(f.RejectRate, 'f', 6, 64), strconv.FormatFloat(f.Target.MaxRejectRate, 'f', -1, 64),
				strconv.Itoa(f.BreachWins), strconv.FormatBool(f.Met), strings.Join(f.Missed, " ")})
		}
		w.Flush()
		return w.Error()
	default:
		if len(figs) == 0 {
			fmt.Fprintf(stdout, "no SLA windows for %s\n", *period)
			return nil
		}
		fmt.Fprintf(stdout, "%-16s %-20s %-20s %-22s %9s %8s  %s\n", "PARTY", "AVAILABILITY %", "ACK P99", "REJECT RATE %", "REQUESTS", "BREACHES", "MET")
		for _, f := range figs {
			met := "yes"
			if !f.Met {
				met = "NO: " + strings.Join(f.Missed, ", ")
			}
			fmt.Fprintf(stdout, "%-16s %-20s %-20s %-22s %9d %8d  %s\n", f.Party,
				pct(f.Availability)+" ≥ "+target(f.Target.Availability, pct),
				f.AckP99.String()+" ≤ "+target(float64(f.Target.AckP99), func(v float64) string { return time.Duration(v).String() }),
				pct(f.RejectRate)+" ≤ "+target(f.Target.MaxRejectRate, pct),
				f.Requests, f.BreachWins, met)
		}
		fmt.Fprintln(stdout, "\npublish→ledger p99 is not measured per partner yet (docs/sla.md).")
	}
	return nil
}
