package main

import (
	"fmt"
	"io"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/nodes"
)

// demoLogins are the console accounts `tally demo` creates, with fresh
// passwords each run (docs/console.md).
type demoLogins struct {
	on                 bool
	opsPw, partnerPw   string
	partner, partyName string
}

// demoConsole turns the console on at listen ("" = off) with an operator
// account (admin) and a partner account for the first simulated provider.
func demoConsole(cfg *config.Config, listen string) (demoLogins, error) {
	if listen == "" || len(cfg.Providers) == 0 {
		return demoLogins{}, nil
	}
	cfg.Settle.ConsoleListen = listen
	party := cfg.Providers[0].Name // the example rules give each provider a share under its own name
	l := demoLogins{on: true, opsPw: "ops-" + secret(), partnerPw: "partner-" + secret(), partner: party, partyName: party}
	path := cfg.ConsoleUsersPath()
	if err := console.AddUser(path, "ops", console.RoleAdmin, nil, l.opsPw); err != nil {
		return l, err
	}
	if err := console.AddUser(path, party, console.RolePartner, []string{party}, l.partnerPw); err != nil {
		return l, err
	}
	return l, cfg.Validate()
}

func demoConsoleHelp(w io.Writer, node *nodes.Node, l demoLogins) {
	url := node.ConsoleURL()
	if !l.on || url == "" {
		return
	}
	fmt.Fprintf(w, "console at %s/ (docs/console.md)\n", url)
	fmt.Fprintf(w, "  operator: ops / %s\n", l.opsPw)
	fmt.Fprintf(w, "  partner:  %s / %s (sees only party %s)\n", l.partner, l.partnerPw, l.partyName)
}
