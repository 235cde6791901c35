package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// errHelp is returned by a command after it printed its usage for -h or
// --help: run treats it as success (exit 0), and the command does nothing else.
var errHelp = errors.New("help shown")

// flags is a command's flag set. Its usage goes to stdout when asked for
// (-h, --help) and to stderr, after the error, on a mistake.
type flags struct {
	*flag.FlagSet
	name           string
	stdout, stderr io.Writer
}

func newFlags(name string, stdout, stderr io.Writer) *flags {
	fs := flag.NewFlagSet("tally "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parseFlags prints usage itself, to the right stream
	fs.Usage = func() {}
	return &flags{FlagSet: fs, name: name, stdout: stdout, stderr: stderr}
}

// synopsis is the command's line from the usage table.
func synopsis(name string) (args, summary string) {
	first, sub, _ := strings.Cut(name, " ")
	c, ok := commands[first]
	if !ok {
		return "", ""
	}
	if sub != "" {
		// "rules eval ...": show the part of the synopsis for this subcommand
		// when it names it, else the whole line.
		for _, alt := range strings.Split(c.args, "|") {
			alt = strings.TrimSpace(alt)
			if strings.HasPrefix(alt, sub+" ") || alt == sub {
				return strings.TrimSpace(strings.TrimPrefix(alt, sub)), c.summary
			}
		}
	}
	return c.args, c.summary
}

func (f *flags) printUsage(w io.Writer) {
	args, summary := synopsis(f.name)
	fmt.Fprintf(w, "Usage: tally %s %s\n", f.name, args)
	if summary != "" {
		fmt.Fprintf(w, "\n%s\n", summary)
	}
	n := 0
	f.VisitAll(func(fl *flag.Flag) {
		if !deprecatedFlag(fl) {
			n++
		}
	})
	if n > 0 {
		fmt.Fprintln(w, "\nFlags:")
		// PrintDefaults without the hidden deprecated aliases.
		tmp := flag.NewFlagSet(f.Name(), flag.ContinueOnError)
		f.VisitAll(func(fl *flag.Flag) {
			if !deprecatedFlag(fl) {
				tmp.Var(fl.Value, fl.Name, fl.Usage)
				tmp.Lookup(fl.Name).DefValue = fl.DefValue
			}
		})
		var b strings.Builder
		tmp.SetOutput(&b)
		tmp.PrintDefaults()
		// Both -name and --name work; the docs write --name, so does the
		// usage (one-letter flags stay -q).
		fmt.Fprint(w, longFlag.ReplaceAllString(b.String(), "$1--$2"))
	}
}

var longFlag = regexp.MustCompile(`(?m)^(  )-(\w\w)`)

// deprecatedPrefix marks a flag kept only as an old name of another: it
// works but is not shown in the usage.
const deprecatedPrefix = "deprecated: "

func deprecatedFlag(fl *flag.Flag) bool { return strings.HasPrefix(fl.Usage, deprecatedPrefix) }

// alias registers old as a hidden, deprecated name of the flag named name.
func (f *flags) alias(old, name string) {
	f.Var(f.Lookup(name).Value, old, deprecatedPrefix+"use --"+name)
}

// parseFlags parses args with flags and positional arguments in any order
// (tally verify DIR --verifier-key K and tally verify --verifier-key K DIR
// are the same). An argument that looks like a flag is always parsed as one:
// an unknown flag is a usage error, never a file name. Arguments after "--"
// are positional whatever they look like. -h and --help print the usage to
// stdout and return errHelp.
func parseFlags(f *flags, args []string) error {
	var pos []string
	for {
		if err := f.FlagSet.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage(f.stdout)
				return errHelp
			}
			f.printUsage(f.stderr)
			return usageError{err.Error()}
		}
		rest := f.FlagSet.Args()
		if len(rest) == 0 {
			break
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			pos = append(pos, rest...) // explicit end of flags
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Leave the positional arguments in f.Args().
	return f.FlagSet.Parse(append([]string{"--"}, pos...))
}

// helpOnly handles a command without flags of its own (a dispatcher such as
// `tally rules`): it prints usage for -h/--help and returns errHelp.
func helpOnly(name string, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		newFlags(name, stdout, stderr).printUsage(stdout)
		return errHelp
	}
	return nil
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }
