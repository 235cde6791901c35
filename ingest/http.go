package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// HTTPPath is the provider endpoint's route (Go 1.22 ServeMux pattern).
const HTTPPath = "POST /v1/providers/{provider}/transactions"

// httpTimeouts bound every phase of a request, so a slow client cannot hold a
// connection forever. The write timeout leaves room for a full group commit.
const (
	httpReadHeaderTimeout = 10 * time.Second
	httpReadTimeout       = 60 * time.Second
	httpWriteTimeout      = 60 * time.Second
	httpIdleTimeout       = 120 * time.Second
)

// tokenKey is how a bearer token is looked up: by its SHA-256, compared in
// constant time, so neither the map nor a timing side channel leaks tokens.
type tokenKey [32]byte

// startHTTP listens on cfg.HTTPListen and serves the provider endpoint.
func (n *Node) startHTTP() error {
	n.tokens = map[tokenKey]string{}
	for p, pc := range n.cfg.Providers {
		if pc.Token != "" {
			n.tokens[sha256.Sum256([]byte(pc.Token))] = p
		}
	}
	ln, err := net.Listen("tcp", n.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", n.cfg.HTTPListen, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(HTTPPath, n.serveTransactions)
	n.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          n.log.Named("http").StandardLogger(nil),
	}
	if n.cfg.HTTPTLS != nil { // HTTPS: a plain-HTTP client gets a TLS alert, never an answer
		ln = tls.NewListener(ln, n.cfg.HTTPTLS)
	}
	n.httpAddr = ln.Addr()
	go func() {
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "error", err)
		}
	}()
	n.log.Info("http accepting", "addr", ln.Addr().String())
	return nil
}

// HTTPAddr is the address the HTTP endpoint listens on (nil without one).
func (n *Node) HTTPAddr() net.Addr { return n.httpAddr }

// stopHTTP stops taking requests and waits (bounded) for handlers in flight,
// which wait for their commit.
func (n *Node) stopHTTP() {
	if n.http == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := n.http.Shutdown(ctx); err != nil {
		n.log.Warn("http requests still open at close", "error", err)
		n.http.Close()
	}
}

// authProvider returns the provider a request's bearer token belongs to.
func (n *Node) authProvider(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return "", false
	}
	key := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	for k, p := range n.tokens { // a handful of providers: a constant-time scan over all
		if subtle.ConstantTimeCompare(k[:], key[:]) == 1 {
			return p, true
		}
	}
	return "", false
}

// serveTransactions is POST /v1/providers/{provider}/transactions. The
// provider is the one the bearer token belongs to; the path must name it.
// The body is read whole (at most HTTPBodyBytes), split by the provider's
// dialect and handed to the committer like a NATS request; the answer is
// written only after the commit (never accepted before the fsync).
func (n *Node) serveTransactions(w http.ResponseWriter, r *http.Request) {
	start := time.Now() // ack latency (observe.go)
	want := r.PathValue("provider")
	p, ok := n.authProvider(r)
	switch {
	case !ok:
		w.Header().Set("WWW-Authenticate", `Bearer realm="tally"`)
		writeAnswer(w, http.StatusUnauthorized, wire.Answer{Status: wire.StatusRejected, Code: string(txn.CodeUnauthorized), Reason: "missing or unknown bearer token"})
		n.countOne(txn.CodeUnauthorized)
		return
	case p != want:
		writeAnswer(w, http.StatusForbidden, wire.Answer{Status: wire.StatusRejected, Code: string(txn.CodeForbidden), Reason: fmt.Sprintf("this token does not speak for provider %q", clipStr(want))})
		n.countOne(txn.CodeForbidden)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, n.cfg.HTTPBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeAnswer(w, http.StatusRequestEntityTooLarge, wire.Answer{Status: wire.StatusRejected, Code: string(txn.CodeTooLarge), Reason: fmt.Sprintf("request body above %d bytes; split it", n.cfg.HTTPBodyBytes)})
			n.countOne(txn.CodeTooLarge)
			return
		}
		// The client's connection failed mid-body (closed, reset, timed out):
		// say so in our words, not the net/http error's.
		writeAnswer(w, http.StatusBadRequest, wire.Answer{Status: wire.StatusRejected, Code: string(txn.CodeMalformed), Reason: "the request body could not be read to its end (connection closed or timed out); send it again"})
		n.countOne(txn.CodeMalformed)
		return
	}
	var req *request
	if why := n.overload(nil); why != "" { // the committer's queue is full: answer without decoding
		req = n.shedFor(p, body, r.Header.Get(HeaderContentType), why)
	} else {
		req = n.prepareFor(p, body, r.Header.Get(HeaderContentType))
	}
	req.start = start
	done := make(chan []wire.Answer, 1) // never blocks the committer, even if the client left
	req.respondAnswers = func(as []wire.Answer) { done <- as }
	n.submit(req)
	answers := <-done
	if req.batch {
		b, _ := json.Marshal(answers)
		w.Header().Set(HeaderContentType, "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(b)
		return
	}
	a := answers[0]
	if a.RetryAfterMs > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt((a.RetryAfterMs+999)/1000, 10))
	}
	writeAnswer(w, httpStatus(a), a)
}

// httpStatus maps one answer to an HTTP status. A batch is always 200 with an
// array: each element carries its own status.
func httpStatus(a wire.Answer) int {
	if a.Status != wire.StatusRejected {
		return http.StatusOK
	}
	switch txn.Code(a.Code) {
	case txn.CodeConflict:
		return http.StatusConflict
	case txn.CodeBufferFull, txn.CodeUnavailable:
		return http.StatusServiceUnavailable
	case txn.CodeBatchTooLarge, txn.CodeTooLarge, txn.CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case txn.CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case txn.CodeUnknownProvider, txn.CodeForbidden:
		return http.StatusForbidden
	case txn.CodeMalformed, txn.CodeInvalidUTF8, txn.CodeBOM:
		return http.StatusBadRequest
	default:
		return http.StatusUnprocessableEntity
	}
}

func writeAnswer(w http.ResponseWriter, status int, a wire.Answer) {
	b, _ := json.Marshal(a)
	w.Header().Set(HeaderContentType, "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func (n *Node) countOne(c txn.Code) { n.count(groupResult{rejected: map[txn.Code]int{c: 1}}) }

func clipStr(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
