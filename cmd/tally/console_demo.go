package main

import (
	"fmt"
	"io"
	"time"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/nodes"
)

// demoLogins are the console accounts `tally demo` creates, with fresh
// passwords each run (docs/console.md).
type demoLogins struct {
	on                 bool
	opsPw, partnerPw   string
	checkerPw          string // the second pair of eyes: an approver
	partner, partyName string
}

// demoConsole turns the console on at listen ("" = off) with an operator
// account (admin), an approver account (so an adjustment the operator
// proposes can be approved by someone else: maker-checker) and a partner
// account for the first simulated provider.
func demoConsole(cfg *config.Config, listen string) (demoLogins, error) {
	if listen == "" || len(cfg.Providers) == 0 {
		return demoLogins{}, nil
	}
	cfg.Settle.ConsoleListen = listen
	party := cfg.Providers[0].Name // the example rules give each provider a share under its own name
	l := demoLogins{on: true, opsPw: "ops-" + secret(), checkerPw: "checker-" + secret(), partnerPw: "partner-" + secret(), partner: party, partyName: party}
	path := cfg.ConsoleUsersPath()
	if err := console.AddUser(path, "ops", console.RoleAdmin, nil, l.opsPw); err != nil {
		return l, err
	}
	if err := console.AddUser(path, "checker", console.RoleApprover, nil, l.checkerPw); err != nil {
		return l, err
	}
	if err := console.AddUser(path, party, console.RolePartner, []string{party}, l.partnerPw); err != nil {
		return l, err
	}
	return l, cfg.Validate()
}

func demoConsoleHelp(w io.Writer, node *nodes.Node, l demoLogins, duration time.Duration, staying bool) {
	url := node.ConsoleURL()
	if !l.on || url == "" {
		return
	}
	fmt.Fprintf(w, "console at %s/ (docs/console.md)\n", url)
	fmt.Fprintf(w, "  operator: ops / %s (proposes adjustments under Exceptions)\n", l.opsPw)
	fmt.Fprintf(w, "  approver: checker / %s (approves what ops proposed)\n", l.checkerPw)
	fmt.Fprintf(w, "  partner:  %s / %s (sees only party %s)\n", l.partner, l.partnerPw, l.partyName)
	if staying {
		fmt.Fprintf(w, "  the console stays up after the %s of traffic until Ctrl-C (--stay no: exit then)\n", duration)
	} else if duration < 5*time.Minute {
		// The console ends with the demo: too soon to walk docs/console.md by hand.
		fmt.Fprintf(w, "  the console closes when the demo ends, in %s: run with --duration 10m (and --rate 50) to work through it by hand\n", duration)
	}
}
