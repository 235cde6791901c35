package nodes

import (
	"context"
	"time"

	"golang.org/x/mod/sumdb/note"

	alert "github.com/tally-mesh/tally/alerts"
	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/ops/sla"
	"github.com/tally-mesh/tally/recon"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/wire"
)

// startConsole serves the console (settle.console_listen, docs/console.md)
// over the running settle node's index and ledger. It only reads them; it
// writes the reconciliations an operator runs (signed with the ledger key,
// in <data>/reconciliations, as `tally reconcile` does).
func (n *Node) startConsole(vkey string, signer note.Signer, book *rules.Book) error {
	cfg := n.cfg
	if cfg.Settle.ConsoleListen == "" {
		return nil
	}
	users, err := console.OpenUsers(cfg.ConsoleUsersPath())
	if err != nil {
		return err
	}
	if len(users.List()) == 0 {
		n.log.Warn("console has no accounts yet; add one with `tally console users add`", "users", cfg.ConsoleUsersPath())
	}
	log := n.log.Named("console")
	dash := console.DashOptions{ReconDir: cfg.ReconciliationsDir(), Signer: signer, MaxUpload: cfg.Settle.ConsoleMaxUpload,
		Limits: cfg.Ingest.Limits,
		TimeZone: func(party string) *time.Location {
			v, err := book.At(time.Now())
			if err != nil {
				return time.UTC
			}
			return v.TimeZone(party)
		}}
	if cfg.Alerts.Enabled && len(cfg.SLAs) > 0 {
		subj := wire.NewSubjects(cfg.Prefix)
		dash.SLA = func(ctx context.Context, from, to time.Time) ([]sla.Figures, error) {
			ws, err := sla.Load(ctx, n.js, subj, "", from, to)
			if err != nil {
				return nil, err
			}
			return sla.Aggregate(ws, from, to, time.Now()), nil
		}
	}
	if n.nc != nil { // the missing ids of a reconciliation go to the edge serving the provider (recon.AskReplay)
		nc, subj := n.nc, wire.NewSubjects(cfg.Prefix)
		dash.Replay = func(ctx context.Context, provider string, ids []string) ([]recon.ReplayOutcome, error) {
			return recon.AskReplay(ctx, nc, recon.ReplayOptions{Subjects: subj, Timeout: cfg.Settle.ConsoleReplayWait}, provider, ids)
		}
	}
	c, err := console.New(console.Options{Node: n.settle, Ledger: n.ledger, Users: users,
		StatementsDir: cfg.StatementsDir(), VerifierKey: vkey, Logger: log, Dash: dash})
	if err != nil {
		return err
	}
	if err := n.enableWorkflow(c); err != nil { // console_workflow.go
		c.Close()
		return err
	}
	if n.console, err = console.Listen(cfg.Settle.ConsoleListen, c, log, n.sec.consoleTLS); err != nil {
		c.Close()
		return err
	}
	n.consoleC = c
	n.log.Info("console listening", "url", n.ConsoleURL()+"/")
	return nil
}

// consoleAlerts gives the console the alert manager's firing alerts, once
// the manager runs (it starts after the settle role and its console).
func (n *Node) consoleAlerts() {
	if n.consoleC == nil || n.ops == nil || n.ops.mgr == nil {
		return
	}
	mgr := n.ops.mgr
	n.consoleC.SetAlerts(func() []alert.Alert { return mgr.Firing() })
}

// ConsoleAddr is the console's address ("" when it is off).
func (n *Node) ConsoleAddr() string {
	if n.console == nil {
		return ""
	}
	return n.console.Addr()
}

// ConsoleURL is the console's base URL, https when settle.console_tls is
// set ("" when it is off).
func (n *Node) ConsoleURL() string {
	switch {
	case n.console == nil:
		return ""
	case n.sec.consoleTLS != nil:
		return "https://" + n.console.Addr()
	}
	return "http://" + n.console.Addr()
}
