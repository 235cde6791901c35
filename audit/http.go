package audit

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/store/merkle"
)

// Stable error codes of the audit API (the "code" of an error body).
const (
	CodeBadRequest = "bad_request" // a parameter is missing or malformed
	CodeNotFound   = "not_found"   // no such partition, segment, entry or (provider, id)
	CodeNotSigned  = "not_signed"  // not covered by a signed checkpoint yet: retry later
	CodeRange      = "out_of_range"
	CodeInternal   = "internal"
)

// HandlerOptions configure the audit API.
type HandlerOptions struct {
	MaxEntries  int    // entries per /entries request (default 1000)
	VerifierKey string // served at /v1/audit/verifier-key
	Logger      hclog.Logger
}

// LedgerSource is the live ledger the handler reads: *store.Ledger.
type LedgerSource interface {
	ProofSource
	Partitions() []uint32
	Head(p uint32) store.Head
	Entries(p uint32, start, end uint64, max int) ([]store.IndexedEntry, error)
	SegmentBytes(p uint32, n uint64) ([]byte, error)
}

var _ LedgerSource = (*store.Ledger)(nil)

type handler struct {
	led    LedgerSource
	lookup LookupFunc
	o      HandlerOptions
	log    hclog.Logger
}

// NewHandler serves the read-only audit API over led (docs/audit.md):
//
//	GET /v1/audit/verifier-key[?partition=p]         text: the ledger's verifier key, or partition p's
//	GET /v1/audit/partitions                         JSON: every partition's head and signed size
//	GET /v1/audit/partitions/{p}/checkpoint          text: the latest signed checkpoint (C2SP)
//	GET /v1/audit/partitions/{p}/entries?start=&end= JSON: entries [start, end), at most MaxEntries
//	GET /v1/audit/partitions/{p}/consistency?from=&to=  JSON: consistency proof (to: default signed size)
//	GET /v1/audit/partitions/{p}/segments/{n}        bytes: segment file n
//	GET /v1/audit/inclusion?provider=&id=            JSON: inclusion proof and receipt
//	GET /v1/audit/receipt?provider=&id=              text: the C2SP tlog-proof receipt
//
// Errors are JSON {"code", "reason"} with a stable code. lookup finds
// (provider, id); settle.Index.Lookup fits.
func NewHandler(led LedgerSource, lookup LookupFunc, o HandlerOptions) http.Handler {
	if o.MaxEntries <= 0 {
		o.MaxEntries = 1000
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	h := &handler{led: led, lookup: lookup, o: o, log: o.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/audit/verifier-key", h.verifierKey)
	mux.HandleFunc("GET /v1/audit/partitions", h.partitions)
	mux.HandleFunc("GET /v1/audit/partitions/{p}/checkpoint", h.checkpoint)
	mux.HandleFunc("GET /v1/audit/partitions/{p}/entries", h.entries)
	mux.HandleFunc("GET /v1/audit/partitions/{p}/consistency", h.consistency)
	mux.HandleFunc("GET /v1/audit/partitions/{p}/segments/{n}", h.segment)
	mux.HandleFunc("GET /v1/audit/inclusion", h.inclusion)
	mux.HandleFunc("GET /v1/audit/receipt", h.receipt)
	return mux
}

// apiError is an error body.
type apiError struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

func (h *handler) fail(w http.ResponseWriter, status int, code, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(apiError{Code: code, Reason: reason})
}

// failErr maps an error to its status and code.
func (h *handler) failErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotSigned):
		w.Header().Set("Retry-After", "1")
		h.fail(w, http.StatusConflict, CodeNotSigned, err.Error())
	case errors.Is(err, store.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		h.fail(w, http.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, merkle.ErrRange):
		h.fail(w, http.StatusBadRequest, CodeRange, err.Error())
	default:
		h.log.Error("audit request", "error", err)
		h.fail(w, http.StatusInternalServerError, CodeInternal, err.Error())
	}
}

func (h *handler) json(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// part parses {p} and checks this node serves it.
func (h *handler) part(w http.ResponseWriter, r *http.Request) (uint32, bool) {
	s := r.PathValue("p")
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != s {
		h.fail(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("partition %q is not a decimal number", s))
		return 0, false
	}
	for _, p := range h.led.Partitions() {
		if p == uint32(n) {
			return p, true
		}
	}
	h.fail(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("partition %d is not on this node", n))
	return 0, false
}

func (h *handler) uintParam(w http.ResponseWriter, r *http.Request, name string, def uint64, required bool) (uint64, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		if required {
			h.fail(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("query parameter %q is required", name))
			return 0, false
		}
		return def, true
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		h.fail(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("%s=%q is not a decimal number", name, s))
		return 0, false
	}
	return n, true
}

func (h *handler) verifierKey(w http.ResponseWriter, r *http.Request) {
	if h.o.VerifierKey == "" {
		h.fail(w, http.StatusNotFound, CodeNotFound, "no verifier key configured")
		return
	}
	key := h.o.VerifierKey
	if r.URL.Query().Has("partition") {
		p, ok := h.uintParam(w, r, "partition", 0, true)
		if !ok {
			return
		}
		if p > 1<<32-1 {
			h.fail(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("partition %d is out of range", p))
			return
		}
		k, err := store.PartitionVerifierKey(key, uint32(p))
		if err != nil {
			h.failErr(w, err)
			return
		}
		key = k
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, key)
}

// PartitionHead is one partition in /v1/audit/partitions.
type PartitionHead struct {
	Partition      uint32 `json:"partition"`
	Segments       uint64 `json:"segments"`
	Size           uint64 `json:"size"`
	Root           string `json:"root"`
	SignedSize     uint64 `json:"signed_size"`
	SignedSegments uint64 `json:"signed_segments"`
	Checkpoint     string `json:"checkpoint,omitempty"`
	// VerifierKey checks Checkpoint with a stock C2SP verifier (the
	// ledger key named like the checkpoint's signature line).
	VerifierKey string `json:"verifier_key,omitempty"`
}

func (h *handler) partitions(w http.ResponseWriter, r *http.Request) {
	out := []PartitionHead{}
	for _, p := range h.led.Partitions() {
		hd := h.led.Head(p)
		ph := PartitionHead{Partition: p, Segments: hd.Segments, Size: hd.Size, Root: b64(hd.Root)}
		if msg := h.led.Checkpoint(p); msg != nil {
			if ck, err := store.ParseCheckpointNote(msg); err == nil {
				ph.SignedSize, ph.SignedSegments, ph.Checkpoint = ck.Size, ck.Segment, string(msg)
			}
			if h.o.VerifierKey != "" {
				if k, err := store.CheckpointVerifierKey(msg, h.o.VerifierKey); err == nil {
					ph.VerifierKey = k
				} else {
					h.log.Error("checkpoint does not verify with the node's key", "partition", p, "error", err)
				}
			}
		}
		out = append(out, ph)
	}
	h.json(w, out)
}

func (h *handler) checkpoint(w http.ResponseWriter, r *http.Request) {
	p, ok := h.part(w, r)
	if !ok {
		return
	}
	msg := h.led.Checkpoint(p)
	if msg == nil {
		h.fail(w, http.StatusNotFound, CodeNotSigned, fmt.Sprintf("partition %d has no signed checkpoint yet", p))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // mutable, as tlog-tiles' checkpoint
	w.Write(msg)
}

// EntryItem is one entry in /entries.
type EntryItem struct {
	Segment  uint64    `json:"segment"`
	LeafHash string    `json:"leaf_hash"`
	EntryHex string    `json:"entry_hex"`
	Entry    EntryView `json:"entry"`
}

func (h *handler) entries(w http.ResponseWriter, r *http.Request) {
	p, ok := h.part(w, r)
	if !ok {
		return
	}
	start, ok := h.uintParam(w, r, "start", 0, true)
	if !ok {
		return
	}
	end, ok := h.uintParam(w, r, "end", start+uint64(h.o.MaxEntries), false)
	if !ok {
		return
	}
	if end < start {
		h.fail(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("end %d is before start %d", end, start))
		return
	}
	es, err := h.led.Entries(p, start, end, h.o.MaxEntries)
	if err != nil {
		h.failErr(w, err)
		return
	}
	out := struct {
		Partition uint32      `json:"partition"`
		Start     uint64      `json:"start"`
		End       uint64      `json:"end"` // exclusive; less than asked when limited or at the end
		Entries   []EntryItem `json:"entries"`
	}{Partition: p, Start: start, End: start + uint64(len(es)), Entries: []EntryItem{}}
	for _, e := range es {
		leaf := merkle.HashLeaf(e.Raw)
		out.Entries = append(out.Entries, EntryItem{Segment: e.Segment, LeafHash: base64.StdEncoding.EncodeToString(leaf[:]),
			EntryHex: hex.EncodeToString(e.Raw), Entry: View(e.Entry)})
	}
	h.json(w, out)
}

func (h *handler) consistency(w http.ResponseWriter, r *http.Request) {
	p, ok := h.part(w, r)
	if !ok {
		return
	}
	from, ok := h.uintParam(w, r, "from", 0, true)
	if !ok {
		return
	}
	to, ok := h.uintParam(w, r, "to", 0, false)
	if !ok {
		return
	}
	cp, err := Consistency(h.led, p, from, to)
	if err != nil {
		h.failErr(w, err)
		return
	}
	h.json(w, cp)
}

func (h *handler) segment(w http.ResponseWriter, r *http.Request) {
	p, ok := h.part(w, r)
	if !ok {
		return
	}
	s := r.PathValue("n")
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		h.fail(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("segment %q is not a decimal number", s))
		return
	}
	b, err := h.led.SegmentBytes(p, n)
	if err != nil {
		h.failErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable") // a segment never changes
	w.Write(b)
}

func (h *handler) prove(w http.ResponseWriter, r *http.Request) (InclusionProof, bool) {
	provider, id := r.URL.Query().Get("provider"), r.URL.Query().Get("id")
	if provider == "" || id == "" {
		h.fail(w, http.StatusBadRequest, CodeBadRequest, "query parameters provider and id are required")
		return InclusionProof{}, false
	}
	pr, err := ProveID(h.led, h.lookup, provider, id)
	if err == nil && h.o.VerifierKey != "" {
		err = pr.AddVerifierKey(h.o.VerifierKey)
	}
	if err != nil {
		h.failErr(w, err)
		return pr, false
	}
	return pr, true
}

func (h *handler) inclusion(w http.ResponseWriter, r *http.Request) {
	if pr, ok := h.prove(w, r); ok {
		h.json(w, pr)
	}
}

func (h *handler) receipt(w http.ResponseWriter, r *http.Request) {
	if pr, ok := h.prove(w, r); ok {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(pr.Receipt))
	}
}

// Server runs the audit API on its own listener.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	log  hclog.Logger
	done chan error

	once sync.Once
	err  error
}

// Listen starts serving h on addr (host:port; port 0 picks one). The server
// has explicit timeouts: audit clients are read-only and small.
func Listen(addr string, h http.Handler, log hclog.Logger) (*Server, error) {
	return ListenTLS(addr, h, nil, log)
}

// ListenTLS is Listen over HTTPS when tc is set (nil = plain HTTP).
func ListenTLS(addr string, h http.Handler, tc *tls.Config, log hclog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("audit api listen %s: %w", addr, err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	s := &Server{ln: ln, log: log, done: make(chan error, 1), srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second, // a segment file may be large
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
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

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, lets requests in flight finish (up to 5 s) and
// waits for the server. Idempotent; returns the first error.
func (s *Server) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.err = s.srv.Shutdown(ctx)
		if err := <-s.done; s.err == nil {
			s.err = err
		}
	})
	return s.err
}
