// Command tally runs tally nodes, the demo, and the offline auditor commands.
// main is thin: the program is run(ctx, args, stdout, stderr).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
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
		var rep reportedError
		if !errors.As(err, &rep) {
			fmt.Fprintln(os.Stderr, "tally:", err)
		}
		os.Exit(exitCode(err))
	}
}

// command is one `tally` subcommand. Each lives in its own file and registers
// itself in init, so adding a command never edits this file.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string
	order   int // position in the usage text
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("tally: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func usage() string {
	cs := make([]command, 0, len(commands))
	for _, c := range commands {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].order != cs[j].order {
			return cs[i].order < cs[j].order
		}
		return cs[i].name < cs[j].name
	})
	var b strings.Builder
	b.WriteString("tally — real-time revenue settlement over NATS\n\nUsage:\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "  tally %-10s %-58s %s\n", c.name, c.args, c.summary)
	}
	b.WriteString("  tally version    (or tally --version)\n\nRun 'tally COMMAND -h' for a command's flags.\n")
	return b.String()
}

func init() {
	register(command{"demo", "[--duration 30s] [--data DIR] [--providers 4] [--rate N]", "run every role plus simulated providers", 10, cmdDemo})
	register(command{"node", "--config FILE [--check-config]", "run the roles a config file names", 20, cmdNode})
	register(command{"verify", "DIR|EXPORT [--verifier-key KEY] [--trusted CHECKPOINT]", "audit a ledger offline: bytes, proofs, signatures, splits, balances", 50,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdVerify(a, o, e) }})
	register(command{"balances", "--data DIR [--json] | --node URL [--token T]", "balances per party and currency (node stopped, or live over the console API)", 40,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdBalances(a, o, e) }})
	register(command{"rules", "check FILE... | eval --rules FILE --input TX.jsonl [--period P] [--rates RATES.jsonl]", "check rule files; run transactions through the settle engine", 30,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdRules(a, o, e) }})
	register(command{"keygen", "[--name ORIGIN] [--out FILE] [--show FILE [--partition P]]", "create a ledger signing key, print the verifier key", 90,
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdKeygen(a, o, e) }})
}

// reportedError is a failure the command already printed (a verify FAILED
// line): main does not print it again.
type reportedError struct{ error }

func (e reportedError) Unwrap() error { return e.error }

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil // -h or --help: the usage was printed, nothing else was done
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return usageError{"no command"}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "version", "--version", "-version", "-v":
		if name == "version" && len(rest) > 0 {
			if isHelp(rest[0]) {
				fmt.Fprintln(stdout, "Usage: tally version\n\nprint the module version and the VCS revision tally was built from")
				return nil
			}
			return usageError{"tally version takes no arguments"}
		}
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "-help", "--help":
		if name == "help" && len(rest) == 1 {
			if _, ok := commands[rest[0]]; ok {
				return dispatch(ctx, []string{rest[0], "-h"}, stdout, stderr)
			}
		}
		fmt.Fprint(stdout, usage())
		return nil
	}
	if c, ok := commands[name]; ok {
		return c.run(ctx, rest, stdout, stderr)
	}
	fmt.Fprint(stderr, usage())
	return usageError{fmt.Sprintf("unknown command %q", name)}
}

// versionString is the module version and VCS revision from the build
// information Go embeds: "tally v0.3.0" for `go install …@v0.3.0`, and
// "tally (devel) rev 1a2b3c4d5e6f+dirty 2026-11-30T10:00:00Z" for a build
// from a checkout.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "tally (unknown version: built without module information)"
	}
	v := "tally " + bi.Main.Version
	if bi.Main.Version == "" {
		v = "tally (devel)"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " rev " + rev[:min(12, len(rev))] + dirty
		if at != "" {
			v += " " + at
		}
	}
	return v + " " + bi.GoVersion
}
