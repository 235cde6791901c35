package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/ingest"
	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

func init() {
	register(command{"send", "(--nats URL [--user U --password P | --creds F | --nkey SEED] | --http URL --token T) --provider P FILE", "send transactions as a provider, one JSON answer per line", 25, cmdSend})
}

// sendLine is one output line: the answer to one input line.
type sendLine struct {
	Line  int  `json:"line"`
	Index *int `json:"index,omitempty"` // position in a batch (CSV row, JSON array element)
	wire.Answer
	Attempts int `json:"attempts"`
}

// statusError is the status of a line that got no definite answer before --give-up.
const statusError = "error"

// transport sends one request body and returns the answers (one, or a batch).
type transport interface {
	send(ctx context.Context, body []byte, contentType string) (answers []wire.Answer, batch bool, err error)
	close()
}

// cmdSend is the reference provider client: it publishes each line of FILE
// (or the whole file for --format csv) as the provider, waits for the answer,
// retries with the same bytes (hence the same id) on a timeout, a lost
// connection or a retryable rejection (buffer_full, unavailable), and prints
// one JSON answer per input line in input order. It exits non-zero when any
// line got no definite answer within --give-up.
func cmdSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("send", stdout, stderr)
	natsURL := fs.String("nats", "", "NATS URL of the ingest node or hub (request/reply on <prefix>.in.<provider>)")
	httpURL := fs.String("http", "", "base URL of an ingest node's HTTP endpoint, e.g. http://127.0.0.1:8080")
	provider := fs.String("provider", "", "provider id (the credentials must belong to it)")
	user := fs.String("user", "", "NATS user")
	password := fs.String("password", "", "NATS password")
	creds := fs.String("creds", "", "NATS credentials file (JWT + nkey seed)")
	nkeySeed := fs.String("nkey", "", "file holding the provider's nkey seed")
	inbox := fs.String("inbox", "", "NATS inbox prefix (default _INBOX.<provider>, what tally's hub permits)")
	token := fs.String("token", "", "HTTP bearer token of the provider")
	prefix := fs.String("prefix", wire.DefaultPrefix, "subject prefix")
	format := fs.String("format", "jsonl", "jsonl: one transaction per line; csv: the whole file as one CSV batch (csv dialect)")
	timeout := fs.Duration("timeout", 5*time.Second, "wait this long for one answer before retrying")
	giveUp := fs.Duration("give-up", 2*time.Minute, "stop retrying a line after this long and print an error for it")
	concurrency := fs.Int("concurrency", 1, "lines in flight; above 1, two lines with the same id may be answered in either order (answers are still printed in input order)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *provider == "" || (*natsURL == "") == (*httpURL == "") {
		return usageError{"usage: tally send (--nats URL | --http URL --token T) --provider P FILE (FILE may be -)"}
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
	if *natsURL != "" {
		ib := *inbox
		if ib == "" {
			ib = nodes.ProviderInbox(*provider)
		}
		tr, err = newNATSTransport(*natsURL, wire.NewSubjects(*prefix).In(*provider), ib, *user, *password, *creds, *nkeySeed, *timeout)
	} else {
		if *token == "" {
			return usageError{"--http needs --token"}
		}
		tr = newHTTPTransport(*httpURL, *provider, *token, *timeout)
	}
	if err != nil {
		return err
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
	if s.failed > 0 {
		return fmt.Errorf("%d of %d lines got no definite answer", s.failed, s.total)
	}
	return nil
}

type sender struct {
	tr     transport
	giveUp time.Duration
	mu     sync.Mutex
	out    *json.Encoder
	total  int
	failed int
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
		if l.Status == statusError {
			s.failed++
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
		answers, batch, err := s.tr.send(ctx, body, ctype)
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
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) || errors.As(err, &fatal) {
			return []sendLine{{Line: line, Answer: wire.Answer{Status: statusError, Reason: fmt.Sprintf("no definite answer after %d attempts: %s", attempt, last)}, Attempts: attempt}}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
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
	denied  atomic.Pointer[string] // the server's permissions violation on our subject or inbox, if any
}

// fatalError ends a line's retries at once: resending cannot help.
type fatalError struct{ msg string }

func (e fatalError) Error() string { return e.msg }

func newNATSTransport(url, subject, inbox, user, password, creds, seed string, timeout time.Duration) (*natsTransport, error) {
	t := &natsTransport{subject: subject, timeout: timeout}
	opts := []nats.Option{
		nats.Name("tally send"),
		nats.CustomInboxPrefix(inbox),
		// Keep trying through an edge restart or a network cut: unanswered
		// lines are retried by the sender, not dropped.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		// The server refuses a publish or an inbox these credentials may not
		// use asynchronously; remember it so the line fails at once instead
		// of timing out until --give-up.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				msg := err.Error()
				t.denied.Store(&msg)
			}
		}),
	}
	switch {
	case creds != "":
		opts = append(opts, nats.UserCredentials(creds))
	case seed != "":
		o, err := nats.NkeyOptionFromSeed(seed)
		if err != nil {
			return nil, fmt.Errorf("nkey seed: %w", err)
		}
		opts = append(opts, o)
	case user != "":
		opts = append(opts, nats.UserInfo(user, password))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	t.nc = nc
	return t, nil
}

func (t *natsTransport) send(ctx context.Context, body []byte, contentType string) ([]wire.Answer, bool, error) {
	m := nats.NewMsg(t.subject)
	m.Data = body
	if contentType != "" {
		m.Header.Set(ingest.HeaderContentType, contentType)
	}
	rctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	reply, err := t.nc.RequestMsgWithContext(rctx, m)
	if err != nil {
		if d := t.denied.Load(); d != nil {
			return nil, false, fatalError{*d + " (these credentials do not speak for this provider, or its inbox prefix is not allowed; see --inbox)"}
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

func newHTTPTransport(base, provider, token string, timeout time.Duration) *httpTransport {
	return &httpTransport{
		url:    strings.TrimRight(base, "/") + "/v1/providers/" + provider + "/transactions",
		token:  token,
		client: &http.Client{Timeout: timeout},
	}
}

func (t *httpTransport) send(ctx context.Context, body []byte, contentType string) ([]wire.Answer, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return nil, false, err
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
	return as, batch, nil
}

func (t *httpTransport) close() { t.client.CloseIdleConnections() }
