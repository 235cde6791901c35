package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tally-mesh/tally/console"
)

// The console's commands: accounts and tokens in the users file, and live
// read-only views of a running node over its console API (docs/console.md).

func init() {
	register(command{"console", "users add --data DIR --name N --role R [--parties P,Q] [--password-file F] | tokens add --data DIR --user N --name T",
		"console accounts (argon2id) and API tokens (docs/console.md)", 85, cmdConsole})
	register(command{"exceptions", "[cases|show|propose|approve|reject|dismiss|post] --node URL [--token T] ...", "the exception queue of a running node and its workflow (console API)", 46,
		func(ctx context.Context, a []string, o, e io.Writer) error { return cmdExceptions(ctx, a, o, e) }})
}

func cmdConsole(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 || (args[0] != "users" && args[0] != "tokens") || args[1] != "add" {
		if err := helpOnly("console", args, stdout, stderr); err != nil {
			return err
		}
		return usageError{"use: tally console users add ... | tally console tokens add ..."}
	}
	what := args[0]
	fs := newFlags("console "+what+" add", stdout, stderr)
	data := fs.String("data", "", "the node's data directory (the users file is DIR/console/users.json)")
	usersFile := fs.String("users", "", "the users file (default DIR/console/users.json; settle.console_users)")
	name := fs.String("name", "", "the account name, or the token's name")
	role := fs.String("role", "", "viewer, operator, approver, admin or partner")
	parties := fs.String("parties", "", "a partner account's parties, comma-separated")
	pwFile := fs.String("password-file", "", "read the password from this file (else $TALLY_CONSOLE_PASSWORD, else a line of stdin)")
	user := fs.String("user", "", "the account a token acts as")
	if err := parseFlags(fs, args[2:]); err != nil {
		return err
	}
	path := *usersFile
	if path == "" {
		if *data == "" {
			return usageError{"console " + what + " add needs --data DIR or --users FILE"}
		}
		path = *data + "/console/users.json"
	}
	if *name == "" {
		return usageError{"console " + what + " add needs --name"}
	}
	if what == "tokens" {
		if *user == "" {
			return usageError{"console tokens add needs --user"}
		}
		secret, err := console.AddToken(path, *name, *user)
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, "token created; it is shown once, only its SHA-256 is kept in", path)
		fmt.Fprintln(stdout, secret)
		return nil
	}
	var pw string
	switch {
	case *pwFile != "":
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return err
		}
		pw = strings.TrimRight(string(b), "\r\n")
	case os.Getenv("TALLY_CONSOLE_PASSWORD") != "":
		pw = os.Getenv("TALLY_CONSOLE_PASSWORD")
	default:
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read the password from stdin: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	var ps []string
	if *parties != "" {
		ps = strings.Split(*parties, ",")
	}
	if err := console.AddUser(path, *name, *role, ps, pw); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "account %s (%s) written to %s\n", *name, *role, path)
	return nil
}

// consoleGet GETs path from a node's console with an API token (--token or
// $TALLY_CONSOLE_TOKEN) and decodes the JSON answer into v.
func consoleGet(ctx context.Context, node, token, path string, v any) error {
	return consoleDo(ctx, http.MethodGet, node, token, path, nil, v)
}

// consoleDo sends a request (body: JSON, or nil) to a node's console with
// an API token and decodes the JSON answer into v.
func consoleDo(ctx context.Context, method, node, token, path string, body []byte, v any) error {
	if token == "" {
		token = os.Getenv("TALLY_CONSOLE_TOKEN")
	}
	if token == "" {
		return usageError{"--node needs an API token: --token T or $TALLY_CONSOLE_TOKEN (tally console tokens add)"}
	}
	u, err := url.Parse(node)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Sprintf("--node %q: use the console's URL, such as http://127.0.0.1:7390", node)}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(node, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		var e struct{ Code, Reason string }
		if json.Unmarshal(answer, &e) == nil && e.Code != "" {
			return fmt.Errorf("%s: %s: %s", node, e.Code, e.Reason)
		}
		return fmt.Errorf("%s: %s", node, res.Status)
	}
	return json.Unmarshal(answer, v)
}

// balancesLive is `tally balances --node URL`: the running node's balances.
func balancesLive(node, token string, asJSON bool, stdout io.Writer) error {
	var bs []struct{ Party, Currency, Amount string }
	if err := consoleGet(context.Background(), node, token, "/v1/balances", &bs); err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(bs)
	}
	fmt.Fprintf(stdout, "%-20s %-4s %24s\n", "party", "cur", "balance")
	for _, b := range bs {
		fmt.Fprintf(stdout, "%-20s %-4s %24s\n", b.Party, b.Currency, b.Amount)
	}
	return nil
}

func cmdExceptions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && caseCommands[args[0]] { // cases.go
		return cmdCase(ctx, args[0], args[1:], stdout, stderr)
	}
	fs := newFlags("exceptions", stdout, stderr)
	node := fs.String("node", "", "the node's console URL (settle.console_listen)")
	token := fs.String("token", "", "an API token (default $TALLY_CONSOLE_TOKEN)")
	kind := fs.String("kind", "", "only this kind (conflict, no_rule, undecodable, over_reversal, currency, orphan_timeout, reserved, paid_twice)")
	limit := fs.Int("limit", 100, "at most this many, newest first")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *node == "" {
		return usageError{"exceptions needs --node URL"}
	}
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	if *kind != "" {
		q.Set("kind", *kind)
	}
	var xs []map[string]any
	if err := consoleGet(ctx, *node, *token, "/v1/exceptions?"+q.Encode(), &xs); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(xs)
	}
	fmt.Fprintf(stdout, "%-30s %-15s %-16s %-24s %s\n", "at", "kind", "provider", "id", "reason")
	for _, x := range xs {
		fmt.Fprintf(stdout, "%-30v %-15v %-16v %-24v %v\n", x["at"], x["kind"], x["provider"], x["id"], x["reason"])
	}
	return nil
}
