package console

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Server runs the console on its own listener.
type Server struct {
	c    *Console
	srv  *http.Server
	ln   net.Listener
	done chan error

	once sync.Once
	err  error
}

// Listen serves c on addr (host:port; port 0 picks one), over TLS when tc
// is not nil (settle.console_tls). Timeouts are explicit; the live feed
// extends its own write deadline per event.
func Listen(addr string, c *Console, log hclog.Logger, tc *tls.Config) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("console listen %s: %w", addr, err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	s := &Server{c: c, ln: ln, done: make(chan error, 1), srv: &http.Server{
		Handler:           c,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second, // a report upload (settle.console_max_upload)
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Console is the console s serves.
func (s *Server) Console() *Console { return s.c }

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, ends live feeds, lets other requests finish (up to
// 5 s), stops the console's poller and waits. Idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.c.StopStreams()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.err = s.srv.Shutdown(ctx)
		if errors.Is(s.err, context.DeadlineExceeded) {
			s.err = s.srv.Close()
		}
		if err := <-s.done; s.err == nil {
			s.err = err
		}
		s.c.Close()
	})
	return s.err
}
