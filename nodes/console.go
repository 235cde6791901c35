package nodes

import (
	"github.com/tally-mesh/tally/console"
)

// startConsole serves the console (settle.console_listen, docs/console.md)
// over the running settle node's index and ledger, read-only.
func (n *Node) startConsole(vkey string) error {
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
	c, err := console.New(console.Options{Node: n.settle, Ledger: n.ledger, Users: users,
		StatementsDir: cfg.StatementsDir(), VerifierKey: vkey, Logger: log})
	if err != nil {
		return err
	}
	if err := n.enableWorkflow(c); err != nil { // console_workflow.go
		c.Close()
		return err
	}
	if n.console, err = console.Listen(cfg.Settle.ConsoleListen, c, log); err != nil {
		c.Close()
		return err
	}
	n.log.Info("console listening", "url", "http://"+n.console.Addr()+"/")
	return nil
}

// ConsoleAddr is the console's address ("" when it is off).
func (n *Node) ConsoleAddr() string {
	if n.console == nil {
		return ""
	}
	return n.console.Addr()
}
