// Command tally runs tally nodes, the demo, and the offline auditor commands.
// main is thin: the program is run(ctx, args, stdout, stderr).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\ntally: draining (signal again to abort)")
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "tally: aborted")
		os.Exit(130)
	}()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tally:", err)
		os.Exit(exitCode(err))
	}
}

const usage = `tally — real-time revenue settlement over NATS

Usage:
  tally demo    [--duration 30s] [--data DIR] [--providers 4] [--rate N]   run every role plus simulated providers
  tally node    --config FILE [--check-config]                            run the roles a config file names
  tally verify  DIR [--key VERIFIERKEY]                                   audit a ledger offline (DIR = data dir or ledger dir)
  tally balances --data DIR [--json]                                      balances per party and currency (node stopped)
  tally rules   check FILE...                                             check rule files: every problem with file:line
  tally keygen  [--name ORIGIN] [--out FILE]                              create a ledger signing key, print the verifier key
  tally version

Run 'tally COMMAND -h' for a command's flags.
`

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	if _, ok := err.(usageError); ok {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "node":
		return cmdNode(ctx, rest, stdout, stderr)
	case "verify":
		return cmdVerify(rest, stdout, stderr)
	case "balances":
		return cmdBalances(rest, stdout, stderr)
	case "rules":
		return cmdRules(rest, stdout, stderr)
	case "keygen":
		return cmdKeygen(rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "tally", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

const version = "0.1.0-dev"
