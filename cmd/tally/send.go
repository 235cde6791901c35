package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/ingest"
	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

func init() {
	register(command{"send", "((--nats URL | --context NAME) [--user U --password P | --creds F | --nkey SEEDFILE] | --http URL --token T) --provider P FILE", "send transactions as a provider, one JSON answer per line", 25, cmdSend})
}

// sendLine is one output line: the answer to one input line.
type sendLine struct {
	Line  int  `json:"line"`
	Index *int `json:"index,omitempty"` // position in a batch (CSV row, JSON array element)
	wire.Answer
	Attempts int `json:"attempts"`
	// Local marks an answer tally send gave itself without the node seeing
	// the request (request_too_large above the server's max_payload), or
	// an error line for a request it did not send after a fatal error.
	Local bool `json:"local,omitempty"`
}

// statusError is the status of a line that got no definite answer: --give-up
// passed, or a fatal error (authorization, permissions) stopped the run.
const statusError = "error"

// Exit codes of tally send, the same over NATS and HTTP (docs/ingest.md).
const (
	sendExitOK       = 0 // every line accepted or duplicate
	sendExitRejected = 1 // every line got a definite answer, at least one rejected
	sendExitUsage    = 2 // a mistake in the command line
	sendExitFatal    = 3 // some lines got no definite answer: not connected, not authorized, not permitted, or --give-up passed; resend them
)

// exitError carries a command's exit code.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// transport sends one request body and returns the answers (one, or a batch).
type transport interface {
	send(ctx context.Context, body []byte, contentType string) (answers []wire.Answer, batch bool, err error)
	close()
}

// natsContext is a `nats` CLI context (ADR-21): the JSON file
// $XDG_CONFIG_HOME/nats/context/<name>.json (default ~/.config/nats/...).
type natsContext struct {
	URL         string `json:"url"`
	User        string `json:"user"`
	Password    string `json:"password"`
	Creds       string `json:"creds"`
	Nkey        string `json:"nkey"`
	Token       string `json:"token"`
	Cert        string `json:"cert"`
	Key         string `json:"key"`
	CA          string `json:"ca"`
	InboxPrefix string `json:"inbox_prefix"`
}

func natsConfigDir() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "nats"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, ".config", "nats"), nil
}

// loadNATSContext reads a context by name (or path to its .json), or the
// one `nats context select` chose when name is "" (nil when there is none).
func loadNATSContext(name string) (*natsContext, string, error) {
	path := name
	if name == "" || !strings.ContainsAny(name, `/\`) {
		dir, err := natsConfigDir()
		if err != nil {
			return nil, "", err
		}
		if name == "" {
			b, err := os.ReadFile(filepath.Join(dir, "context.txt"))
			if err != nil || strings.TrimSpace(string(b)) == "" {
				return nil, "", nil // no context selected
			}
			name = strings.TrimSpace(string(b))
		}
		path = filepath.Join(dir, "context", name+".json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("nats context %q: %w", name, err)
	}
	var c natsContext
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, "", fmt.Errorf("nats context %s: %w", path, err)
	}
	expand := func(p *string) {
		if strings.HasPrefix(*p, "~/") {
			if h, err := os.UserHomeDir(); err == nil {
				*p = filepath.Join(h, (*p)[2:])
			}
		}
	}
	for _, p := range []*string{&c.Creds, &c.Nkey, &c.Cert, &c.Key, &c.CA} {
		expand(p)
	}
	return &c, path, nil
}

// cmdSend is the reference provider client: it publishes each line of FILE
// (or the whole file for --format csv) as the provider, waits for the answer,
// retries with the same bytes (hence the same id) on a timeout, a lost
// connection or a retryable rejection (buffer_full, unavailable), and prints
// one JSON answer per input line in input order. Authorization and
// permission errors end the run at once. Exit codes: sendExit*.
func cmdSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("send", stdout, stderr)
	natsURL := fs.String("nats", "", "NATS URL of the ingest node or hub (request/reply on <prefix>.in.<provider>); default $NATS_URL or the nats context's url")
	natsCtx := fs.String("context", "", "a `nats` CLI context (name or .json path) to take the URL, credentials, TLS files and inbox prefix from; default $NATS_CONTEXT, or the selected context when no --nats/$NATS_URL/--http is given")
	httpURL := fs.String("http", "", "base URL of an ingest node's HTTP endpoint, e.g. http://127.0.0.1:8080")
	provider := fs.String("provider", "", "provider id (the credentials must belong to it)")
	user := fs.String("user", os.Getenv("NATS_USER"), "NATS user (default $NATS_USER)")
	password := fs.String("password", os.Getenv("NATS_PASSWORD"), "NATS password (default $NATS_PASSWORD)")
	creds := fs.String("creds", os.Getenv("NATS_CREDS"), "NATS credentials file: JWT + nkey seed (default $NATS_CREDS)")
	nkeySeed := fs.String("nkey", os.Getenv("NATS_NKEY"), "file holding the provider's nkey seed (default $NATS_NKEY)")
	inbox := fs.String("inbox", "", "NATS inbox prefix (default _INBOX.<provider>, the only inbox tally's hub lets a provider subscribe to)")
	token := fs.String("token", "", "HTTP bearer token of the provider")
	prefix := fs.String("prefix", wire.DefaultPrefix, "subject prefix")
	format := fs.String("format", "jsonl", "jsonl: one transaction per line; csv: the whole file as one CSV batch (csv dialect)")
	timeout := fs.Duration("timeout", 5*time.Second, "wait this long for one answer before retrying")
	giveUp := fs.Duration("give-up", 2*time.Minute, "stop retrying a line after this long and print an error for it")
	concurrency := fs.Int("concurrency", 1, "lines in flight; above 1, two lines with the same id may be answered in either order (answers are still printed in input order)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	useHTTP := *httpURL != ""
	if useHTTP && (*natsURL != "" || *natsCtx != "") {
		return usageError{"tally send: --http or --nats/--context, not both"}
	}
	var nc natsContext
	ctxName := *natsCtx
	if !useHTTP {
		if ctxName == "" {
			ctxName = os.Getenv("NATS_CONTEXT")
		}
		if ctxName != "" || (*natsURL == "" && os.Getenv("NATS_URL") == "") {
			c, _, err := loadNATSContext(ctxName)
			if err != nil {
				return exitError{sendExitFatal, err.Error()}
			}
			if c != nil {
				nc = *c
			}
		}
		// Flags and environment override the context.
		for _, o := range []struct {
			dst *string
			v   string
		}{
			{&nc.URL, os.Getenv("NATS_URL")}, {&nc.URL, *natsURL},
			{&nc.User, *user}, {&nc.Password, *password}, {&nc.Creds, *creds}, {&nc.Nkey, *nkeySeed}, {&nc.InboxPrefix, *inbox},
		} {
			if o.v != "" {
				*o.dst = o.v
			}
		}
	}
	if fs.NArg() != 1 || *provider == "" || (!useHTTP && nc.URL == "") {
		return usageError{"usage: tally send (--nats URL | --context NAME | $NATS_URL | --http URL --token T) --provider P FILE (FILE may be -)"}
	}
	if !wire.ValidToken(*provider) || *concurrency < 1 || *concurrency > 1024 || *timeout <= 0 || *giveUp <= 0 {
		return usageError{"--provider must be a subject token; --concurrency 1-1024; --timeout and --give-up positive"}
	}
	if *format != "jsonl" && *format != "csv" {
		return usageError{"--format jsonl or csv"}
	}
	var in io.Reader = os.Stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	var tr transport
	var err error
	if !useHTTP {
		if nc.InboxPrefix == "" {
			nc.InboxPrefix = nodes.ProviderInbox(*provider)
		}
		tr, err = newNATSTransport(ctx, nc, wire.NewSubjects(*prefix).In(*provider), *timeout, *giveUp)
	} else {
		if *token == "" {
			return usageError{"--http needs --token"}
		}
		tr, err = newHTTPTransport(*httpURL, *provider, *token, *timeout)
	}
	if err != nil {
		return exitError{sendExitFatal, err.Error() + " (nothing was sent)"}
	}
	defer tr.close()
	s := &sender{tr: tr, giveUp: *giveUp, out: json.NewEncoder(stdout)}
	if *format == "csv" {
		body, err := io.ReadAll(in)
		if err != nil {
			return err
		}
		s.one(ctx, 1, body, "text/csv")
	} else if err := s.lines(ctx, in, *concurrency); err != nil {
		return err
	}
	switch {
	case s.fatal.Load() != nil:
		return exitError{sendExitFatal, fmt.Sprintf("%s: %d of %d lines not accepted; resend them", *s.fatal.Load(), s.failed, s.total)}
	case s.failed > 0:
		return exitError{sendExitFatal, fmt.Sprintf("%d of %d lines got no definite answer; resend them", s.failed, s.total)}
	case s.rejected > 0:
		return exitError{sendExitRejected, fmt.Sprintf("%d of %d lines rejected", s.rejected, s.total)}
	}
	return nil
}

type sender struct {
	tr       transport
	giveUp   time.Duration
	mu       sync.Mutex
	out      *json.Encoder
	total    int
	failed   int // lines without a definite answer
	rejected int
	fatal    atomic.Pointer[string] // the first fatal error: no further line is sent
}

// lines sends every non-blank line, at most n in flight, and prints answers
// in input order. A window bounds how far sending may run ahead of printing.
func (s *sender) lines(ctx context.Context, in io.Reader, n int) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	type job struct {
		line int
		body []byte
		done chan []sendLine
	}
	window := make(chan *job, 4*n) // in input order: the printer takes them one by one
	work := make(chan *job)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				j.done <- s.answer(ctx, j.line, j.body, "")
			}
		}()
	}
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for j := range window {
			s.print(<-j.done)
		}
	}()
	line := 0
	var scanErr error
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue // blank lines carry no transaction and get no answer
		}
		j := &job{line: line, body: append([]byte(nil), b...), done: make(chan []sendLine, 1)}
		window <- j
		work <- j
	}
	scanErr = sc.Err()
	close(work)
	wg.Wait()
	close(window)
	<-printed
	if scanErr != nil {
		return fmt.Errorf("read input line %d: %w", line+1, scanErr)
	}
	return nil
}

func (s *sender) one(ctx context.Context, line int, body []byte, ctype string) {
	s.print(s.answer(ctx, line, body, ctype))
}

func (s *sender) print(ls []sendLine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range ls {
		s.total++
		switch l.Status {
		case statusError:
			s.failed++
		case wire.StatusRejected:
			s.rejected++
		}
		s.out.Encode(l)
	}
}

// answer sends body until it gets a definite answer or --give-up passes.
// Every attempt sends the same bytes, so the edge answers a retry of a
// transaction it already stored as a duplicate with the original edge_seq.
func (s *sender) answer(ctx context.Context, line int, body []byte, ctype string) []sendLine {
	deadline := time.Now().Add(s.giveUp)
	backoff := 100 * time.Millisecond
	var last string
	for attempt := 1; ; attempt++ {
		if f := s.fatal.Load(); f != nil {
			// Resending cannot help, and neither can sending the rest.
			return []sendLine{{Line: line, Answer: wire.Answer{Status: statusError, Code: fatalCode(*f), Reason: "not sent: " + *f}, Attempts: attempt - 1, Local: true}}
		}
		answers, batch, err := s.tr.send(ctx, body, ctype)
		var local localAnswer
		if errors.As(err, &local) {
			return []sendLine{{Line: line, Answer: local.Answer, Attempts: attempt, Local: true}}
		}
		if err == nil && !retryable(answers) {
			out := make([]sendLine, len(answers))
			for i, a := range answers {
				out[i] = sendLine{Line: line, Answer: a, Attempts: attempt}
				if batch {
					out[i].Index = new(int)
					*out[i].Index = i
				}
			}
			return out
		}
		wait := backoff
		if err != nil {
			last = err.Error()
		} else {
			last = answers[0].Code + ": " + answers[0].Reason
			for _, a := range answers {
				if a.RetryAfterMs > 0 {
					wait = max(wait, time.Duration(a.RetryAfterMs)*time.Millisecond)
				}
			}
		}
		var fatal fatalError
		if errors.As(err, &fatal) {
			msg := fatal.Error()
			s.fatal.CompareAndSwap(nil, &msg)
			return []sendLine{{Line: line, Answer: wire.Answer{Status: statusError, Code: fatal.code, Reason: msg}, Attempts: attempt}}
		}
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return []sendLine{{Line: line, Answer: wire.Answer{Status: statusError, Reason: fmt.Sprintf("no definite answer after %d attempts: %s", attempt, last)}, Attempts: attempt}}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// fatalCode is the code of a fatal error message as fatalError made it.
func fatalCode(msg string) string {
	code, _, _ := strings.Cut(msg, ":")
	if code == string(txn.CodeUnauthorized) || code == string(txn.CodeForbidden) {
		return code
	}
	return ""
}

// retryable: every answer of a batch is retryable or definite; a batch is
// resent whole when any of it is retryable (the rest comes back duplicate).
func retryable(as []wire.Answer) bool {
	for _, a := range as {
		if a.Status == wire.StatusRejected && txn.Code(a.Code).Retryable() {
			return true
		}
	}
	return false
}

// decodeAnswers reads one answer object or an array of them.
func decodeAnswers(b []byte) ([]wire.Answer, bool, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var as []wire.Answer
		if err := json.Unmarshal(b, &as); err != nil || len(as) == 0 {
			return nil, true, fmt.Errorf("bad answer %.100q", b)
		}
		return as, true, nil
	}
	var a wire.Answer
	if err := json.Unmarshal(b, &a); err != nil || a.Status == "" {
		return nil, false, fmt.Errorf("bad answer %.100q", b)
	}
	return []wire.Answer{a}, false, nil
}

type natsTransport struct {
	nc      *nats.Conn
	subject string
	timeout time.Duration
	// fatal is cancelled with a fatalError when the server refuses these
	// credentials or a subject they may not use: in-flight requests end at
	// once instead of waiting for their timeout.
	fatal       context.Context
	cancelFatal context.CancelCauseFunc
}

// fatalError ends the run at once: resending cannot help. Its message
// starts with the code (unauthorized, forbidden) when there is one.
type fatalError struct{ code, msg string }

func (e fatalError) Error() string {
	if e.code != "" {
		return e.code + ": " + e.msg
	}
	return e.msg
}

// localAnswer is a definite answer tally send gives without sending.
type localAnswer struct{ wire.Answer }

func (e localAnswer) Error() string { return e.Code + ": " + e.Reason }

// natsAuthError reports whether err means the server refused the
// credentials: retrying with the same ones cannot succeed.
func natsAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}

// connectRetryable reports whether a failed first connect may succeed later
// (the server is not up yet, or the network is cut): everything else —
// refused credentials, a malformed URL, an unknown host, a TLS or
// credentials-file error — is fatal at once.
func connectRetryable(err error) bool {
	if natsAuthError(err) {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return !dns.IsNotFound
	}
	var op *net.OpError
	return errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &op)
}

func newNATSTransport(ctx context.Context, c natsContext, subject string, timeout, giveUp time.Duration) (*natsTransport, error) {
	t := &natsTransport{subject: subject, timeout: timeout}
	t.fatal, t.cancelFatal = context.WithCancelCause(context.Background())
	if _, err := url.Parse(strings.Split(c.URL, ",")[0]); err != nil || strings.TrimSpace(c.URL) == "" {
		return nil, fmt.Errorf("NATS URL %q is malformed: %v", c.URL, err)
	}
	opts := []nats.Option{
		nats.Name("tally send"),
		nats.CustomInboxPrefix(c.InboxPrefix),
		// Keep trying through an edge restart or a network cut: unanswered
		// lines are retried by the sender, not dropped.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		// The server refuses a publish or an inbox these credentials may not
		// use asynchronously, and credentials on a reconnect: end the run.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			switch {
			case errors.Is(err, nats.ErrPermissionViolation):
				t.cancelFatal(fatalError{string(txn.CodeForbidden), err.Error() + " (these credentials do not speak for this provider, or the inbox prefix is not allowed; see --inbox)"})
			case natsAuthError(err):
				t.cancelFatal(fatalError{string(txn.CodeUnauthorized), err.Error()})
			}
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			msg := "connection closed"
			if e := nc.LastError(); e != nil {
				msg += ": " + e.Error()
			}
			t.cancelFatal(fatalError{"", msg})
		}),
	}
	switch {
	case c.Creds != "":
		opts = append(opts, nats.UserCredentials(c.Creds))
	case c.Nkey != "":
		o, err := nats.NkeyOptionFromSeed(c.Nkey)
		if err != nil {
			return nil, fmt.Errorf("nkey seed: %w", err)
		}
		opts = append(opts, o)
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	}
	if c.Cert != "" || c.Key != "" {
		opts = append(opts, nats.ClientCert(c.Cert, c.Key))
	}
	if c.CA != "" {
		opts = append(opts, nats.RootCAs(c.CA))
	}
	// Retry the first connect ourselves, only while retrying can help, for
	// at most --give-up.
	deadline := time.Now().Add(giveUp)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		nc, err := nats.Connect(c.URL, opts...)
		if err == nil {
			t.nc = nc
			return t, nil
		}
		if natsAuthError(err) {
			return nil, fmt.Errorf("connect %s: %w: the server refused these credentials (check --user/--password, --creds or --nkey)", c.URL, err)
		}
		if !connectRetryable(err) || time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("connect %s: %w", c.URL, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// natsHeaderRoom is an upper bound for what the protocol adds to a request
// with our one header (NATS/1.0 line, Content-Type).
const natsHeaderRoom = 256

func (t *natsTransport) send(ctx context.Context, body []byte, contentType string) ([]wire.Answer, bool, error) {
	if t.fatal.Err() != nil {
		return nil, false, context.Cause(t.fatal)
	}
	if max := t.nc.MaxPayload(); max > 0 && int64(len(body)+natsHeaderRoom) > max {
		return nil, false, localAnswer{wire.Answer{Status: wire.StatusRejected, Code: string(txn.CodeTooLarge),
			Reason: fmt.Sprintf("request of %d bytes is above the server's max_payload (%d bytes, less room for headers): the node cannot receive it; split it", len(body), max)}}
	}
	m := nats.NewMsg(t.subject)
	m.Data = body
	if contentType != "" {
		m.Header.Set(ingest.HeaderContentType, contentType)
	}
	rctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	stop := context.AfterFunc(t.fatal, cancel)
	defer stop()
	reply, err := t.nc.RequestMsgWithContext(rctx, m)
	if err != nil {
		if t.fatal.Err() != nil {
			return nil, false, context.Cause(t.fatal)
		}
		if errors.Is(err, nats.ErrMaxPayload) {
			return nil, false, localAnswer{wire.Answer{Status: wire.StatusRejected, Code: string(txn.CodeTooLarge),
				Reason: fmt.Sprintf("request of %d bytes is above the server's max_payload (%d bytes): the node cannot receive it; split it", len(body), t.nc.MaxPayload())}}
		}
		return nil, false, err
	}
	return decodeAnswers(reply.Data)
}

func (t *natsTransport) close() { t.nc.Close() }

type httpTransport struct {
	url, token string
	client     *http.Client
}

func newHTTPTransport(base, provider, token string, timeout time.Duration) (*httpTransport, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("HTTP URL %q is malformed: want http://HOST:PORT or https://HOST:PORT", base)
	}
	return &httpTransport{
		url:    strings.TrimRight(base, "/") + "/v1/providers/" + provider + "/transactions",
		token:  token,
		client: &http.Client{Timeout: timeout},
	}, nil
}

func (t *httpTransport) send(ctx context.Context, body []byte, contentType string) ([]wire.Answer, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return nil, false, fatalError{"", err.Error()}
	}
	if contentType == "" {
		contentType = "application/json"
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+t.token)
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, false, err
	}
	as, batch, err := decodeAnswers(b)
	if err != nil {
		return nil, false, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	// A token the node does not know, or one of another provider: no line
	// of this run can succeed.
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		if len(as) == 1 && (as[0].Code == string(txn.CodeUnauthorized) || as[0].Code == string(txn.CodeForbidden)) {
			return nil, false, fatalError{as[0].Code, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, as[0].Reason)}
		}
	}
	return as, batch, nil
}

func (t *httpTransport) close() { t.client.CloseIdleConnections() }
