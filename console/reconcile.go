package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tally-mesh/tally/recon"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/wire"
)

// Reconciliation from the console: an operator uploads a provider's report,
// the console compares it with the running node's ledger (recon.Reconcile,
// as `tally reconcile` does from the segment files) and keeps the result in
// recon's store: signed with the ledger key and hash-linked per provider, in
// the same files `tally reconcile` writes, so either may run the next one.
//
// Asking the edge to replay: after keeping a result with missing ids (in
// the report, not in the ledger), the console sends them to the edge
// serving the provider (DashOptions.Replay: recon.AskReplay on the node's
// NATS connection) and keeps the per-id outcome beside the signed result
// (recon.KeepReplay; the signed result is unchanged). POST
// /v1/reconciliations/{provider}/{seq}/replay and the result page's button
// ask again.

// ReconItem is one kept reconciliation in GET /v1/reconciliations and the
// answer of POST /v1/reconciliations.
type ReconItem struct {
	Provider  string        `json:"provider"`
	Seq       int           `json:"seq"`
	Period    string        `json:"period"`
	CreatedAt string        `json:"created_at"`
	Report    string        `json:"report_name"`
	Matched   int           `json:"matched"`
	Breaks    int           `json:"breaks"`
	Hash      string        `json:"hash"`
	Note      string        `json:"note"` // URL of the signed note
	JSON      string        `json:"json"` // URL of the result's JSON
	CSV       string        `json:"csv"`  // URL of the breaks and totals as CSV
	Page      string        `json:"page"` // the UI page listing the breaks
	Result    *recon.Result `json:"result,omitempty"`
	// Replay is the latest replay of the missing ids (kept beside the
	// signed result, not in it); ReplayError why asking the edges failed.
	Replay      *recon.Replay `json:"replay,omitempty"`
	ReplayError string        `json:"replay_error,omitempty"`
}

func reconItem(k recon.Kept, full bool) ReconItem {
	r := k.Result
	base := fmt.Sprintf("/v1/reconciliations/%s/%d/", url.PathEscape(r.Provider), k.Seq)
	it := ReconItem{Provider: r.Provider, Seq: k.Seq, Period: r.Period, CreatedAt: r.CreatedAt, Report: r.ReportName,
		Matched: r.Matched, Breaks: r.Breaks(), Hash: k.Hash, Note: base + "note", JSON: base + "json", CSV: base + "csv",
		Page: fmt.Sprintf("/reconcile/%s/%d", url.PathEscape(r.Provider), k.Seq)}
	if full {
		it.Result = r
		rep, err := recon.LoadReplay(k)
		if err != nil {
			it.ReplayError = err.Error()
		}
		it.Replay = rep
	}
	return it
}

// errNoReplay: the console runs without a NATS connection to the edges.
var errNoReplay = errors.New("this console cannot reach the edges (no NATS connection): run `tally reconcile --replay --nats URL`")

// replayTimeout bounds one replay of a result's missing ids.
const replayTimeout = time.Minute

// replay asks the edges to republish k's missing ids and keeps the outcome
// beside k. A result without missing ids needs none (nil, nil).
func (c *Console) replay(k recon.Kept) (*recon.Replay, error) {
	if len(k.Result.Missing) == 0 {
		return nil, nil
	}
	if c.o.Dash.Replay == nil {
		return nil, errNoReplay
	}
	ctx, cancel := context.WithTimeout(context.Background(), replayTimeout)
	defer cancel()
	out, err := c.o.Dash.Replay(ctx, k.Result.Provider, recon.MissingIDs(k.Result))
	if err != nil {
		return nil, fmt.Errorf("ask the edges: %w", err)
	}
	rep := &recon.Replay{Provider: k.Result.Provider, Seq: k.Seq, At: c.now().UTC().Truncate(time.Second).Format(time.RFC3339), Outcomes: out}
	if err := recon.KeepReplay(k, *rep); err != nil {
		return nil, err
	}
	c.log.Info("reconciliation replay", "provider", rep.Provider, "seq", rep.Seq, "ids", len(out),
		"republished", rep.Count(recon.ReplayRepublished), "no_edge", rep.Count(recon.ReplayNoEdge))
	return rep, nil
}

// replayAfterKeep asks the edges for a freshly kept result; a failure is
// logged and named in the answer, the result stays kept.
func (c *Console) replayAfterKeep(k recon.Kept) string {
	if _, err := c.replay(k); err != nil {
		c.log.Warn("reconciliation replay", "provider", k.Result.Provider, "seq", k.Seq, "error", err)
		return err.Error()
	}
	return ""
}

func (c *Console) reconReplayAPI(w http.ResponseWriter, r *http.Request, id Identity) {
	if !reconAllowed(w, id) {
		return
	}
	k, ok := c.kept(w, r)
	if !ok {
		return
	}
	_, err := c.replay(*k)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
		return
	}
	writeJSON(w, reconItem(*k, true))
}

// reconChain loads provider's kept reconciliations, checked against the
// verifier key.
func (c *Console) reconChain(provider string) (*recon.Chain, error) {
	if c.verifier == nil {
		return nil, errors.New("the console has no verifier key to check reconciliations with")
	}
	return recon.Load(c.o.Dash.ReconDir, provider, c.verifier)
}

// reconList is every kept reconciliation (of provider, when set), newest first.
func (c *Console) reconList(provider string) ([]ReconItem, error) {
	var providers []string
	if provider != "" {
		providers = []string{provider}
	} else if c.o.Dash.ReconDir != "" {
		des, err := os.ReadDir(c.o.Dash.ReconDir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, de := range des {
			if p, err := url.PathUnescape(de.Name()); err == nil && de.IsDir() {
				providers = append(providers, p)
			}
		}
	}
	out := []ReconItem{}
	for _, p := range providers {
		if c.o.Dash.ReconDir == "" {
			break
		}
		ch, err := c.reconChain(p)
		if err != nil {
			return nil, err
		}
		for _, k := range ch.Kept {
			out = append(out, reconItem(k, false))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt > out[j].CreatedAt })
	return out, nil
}

func (c *Console) reconListAPI(w http.ResponseWriter, r *http.Request, id Identity) {
	if !operatorOnly(w, id) {
		return
	}
	out, err := c.reconList(r.URL.Query().Get("provider"))
	if err != nil {
		c.internal(w, err)
		return
	}
	writeJSON(w, out)
}

// reconUpload is one upload's fields.
type reconUpload struct {
	provider, period, format, dialect, name string
	body                                    []byte
}

// readUpload reads a multipart upload (fields provider, period, format,
// dialect and the file "report"), at most MaxUpload bytes of report. The
// error is for the caller (400 or 413).
func (c *Console) readUpload(w http.ResponseWriter, r *http.Request) (reconUpload, int, error) {
	max := c.o.Dash.MaxUpload
	r.Body = http.MaxBytesReader(w, r.Body, max+64<<10)
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return reconUpload{}, http.StatusRequestEntityTooLarge, fmt.Errorf("the report is larger than settle.console_max_upload (%d bytes)", max)
		}
		return reconUpload{}, http.StatusBadRequest, errors.New("send multipart/form-data with provider, period and the file report")
	}
	u := reconUpload{provider: r.FormValue("provider"), period: r.FormValue("period"), format: r.FormValue("format"), dialect: r.FormValue("dialect")}
	defer r.MultipartForm.RemoveAll()
	f, fh, err := r.FormFile("report")
	if err != nil {
		return u, http.StatusBadRequest, errors.New("the file field report is missing")
	}
	defer f.Close()
	if fh.Size > max {
		return u, http.StatusRequestEntityTooLarge, fmt.Errorf("the report is larger than settle.console_max_upload (%d bytes)", max)
	}
	if u.body, err = io.ReadAll(io.LimitReader(f, max+1)); err != nil || int64(len(u.body)) > max {
		return u, http.StatusRequestEntityTooLarge, fmt.Errorf("the report is larger than settle.console_max_upload (%d bytes)", max)
	}
	u.name = filepath.Base(fh.Filename)
	if u.format == "" {
		u.format = recon.FormatJSONL
		if strings.EqualFold(filepath.Ext(u.name), ".csv") {
			u.format = recon.FormatCSV
		}
	}
	return u, 0, nil
}

// reconcile runs one upload against the running node's ledger and keeps it.
func (c *Console) reconcile(u reconUpload) (recon.Kept, int, error) {
	if c.o.Dash.Signer == nil || c.o.Dash.ReconDir == "" {
		return recon.Kept{}, http.StatusServiceUnavailable, errNoSigner
	}
	if !wire.ValidToken(u.provider) {
		return recon.Kept{}, http.StatusBadRequest, fmt.Errorf("provider=%s: not a provider name", quote(u.provider))
	}
	per, err := statement.ParsePeriod(u.period)
	if err != nil {
		return recon.Kept{}, http.StatusBadRequest, fmt.Errorf("period=%s: use a month 2026-11, an ISO week 2026-W45 or a day 2026-11-05", quote(u.period))
	}
	if u.format != recon.FormatJSONL && u.format != recon.FormatCSV {
		return recon.Kept{}, http.StatusBadRequest, fmt.Errorf("format=%s: use jsonl or csv", quote(u.format))
	}
	rows, rejected, used, err := recon.ReadReport(u.body, u.format, u.dialect, c.o.Dash.Limits)
	if err != nil {
		return recon.Kept{}, http.StatusBadRequest, err
	}
	// The provider's entries of every period (a report row dated in another
	// period is a time mismatch), read from the running ledger's committed
	// heads through its snapshot reads.
	var ledger []recon.LedgerTx
	for _, p := range c.o.Ledger.Partitions() {
		size := c.o.Ledger.Head(p).Size
		for start := uint64(0); start < size; {
			es, err := c.o.Ledger.Entries(p, start, size, revPerRead)
			if err != nil {
				return recon.Kept{}, http.StatusInternalServerError, err
			}
			if len(es) == 0 {
				break
			}
			for _, ie := range es {
				if e := ie.Entry; e.Provider == u.provider {
					ledger = append(ledger, recon.LedgerTx{Partition: e.Partition, Index: e.Index, EdgeNode: e.EdgeNode, EdgeSeq: e.EdgeSeq, Tx: e.Tx})
				}
			}
			start += uint64(len(es))
		}
	}
	res := recon.Reconcile(recon.Input{Provider: u.provider, Period: per.String(), Start: per.Start, End: per.End(),
		Report: rows, Rejected: rejected, Ledger: ledger})
	sum := sha256.Sum256(u.body)
	res.ReportName, res.ReportSHA256, res.ReportFormat, res.Dialect = u.name, hex.EncodeToString(sum[:]), u.format, used
	res.CreatedAt = c.now().UTC().Truncate(time.Second).Format(time.RFC3339)
	c.dash.reconMu.Lock()
	defer c.dash.reconMu.Unlock()
	ch, err := c.reconChain(u.provider)
	if err != nil {
		return recon.Kept{}, http.StatusInternalServerError, err
	}
	k, err := ch.Keep(res, c.o.Dash.Signer)
	if err != nil {
		return recon.Kept{}, http.StatusInternalServerError, err
	}
	c.log.Info("reconciliation kept", "provider", u.provider, "period", res.Period, "seq", k.Seq, "breaks", res.Breaks(), "report", u.name)
	return k, 0, nil
}

// reconAllowed: running a reconciliation writes a kept result, so it needs
// the operator role (viewers read them).
func reconAllowed(w http.ResponseWriter, id Identity) bool {
	if !id.AtLeast(RoleOperator) {
		fail(w, http.StatusForbidden, CodeForbidden, "operator accounts (role operator or above) only")
		return false
	}
	return true
}

func (c *Console) reconUploadAPI(w http.ResponseWriter, r *http.Request, id Identity) {
	if !reconAllowed(w, id) {
		return
	}
	u, status, err := c.readUpload(w, r)
	if err != nil {
		fail(w, status, CodeBadRequest, err.Error())
		return
	}
	k, status, err := c.reconcile(u)
	switch {
	case status == http.StatusInternalServerError:
		c.internal(w, err)
	case status == http.StatusServiceUnavailable:
		fail(w, status, CodeUnavailable, err.Error())
	case err != nil:
		fail(w, status, CodeBadRequest, err.Error())
	default:
		rerr := c.replayAfterKeep(k)
		w.Header().Set("Location", reconItem(k, false).Page)
		it := reconItem(k, true)
		if rerr != "" {
			it.ReplayError = rerr
		}
		writeJSON(w, it)
	}
}

// kept finds provider's reconciliation seq; on failure it has answered.
func (c *Console) kept(w http.ResponseWriter, r *http.Request) (*recon.Kept, bool) {
	provider, s := r.PathValue("provider"), r.PathValue("seq")
	seq, err := strconv.Atoi(s)
	if err != nil || seq < 1 || strconv.Itoa(seq) != s || !wire.ValidToken(provider) || c.o.Dash.ReconDir == "" {
		notFound(w, "reconciliation")
		return nil, false
	}
	ch, err := c.reconChain(provider)
	if err != nil {
		c.internal(w, err)
		return nil, false
	}
	if seq > len(ch.Kept) {
		notFound(w, "reconciliation")
		return nil, false
	}
	return &ch.Kept[seq-1], true
}

func (c *Console) reconFileAPI(w http.ResponseWriter, r *http.Request, id Identity) {
	if !operatorOnly(w, id) {
		return
	}
	k, ok := c.kept(w, r)
	if !ok {
		return
	}
	name := strings.TrimSuffix(filepath.Base(k.Path), ".note")
	switch r.PathValue("format") {
	case "note":
		attachment(w, "text/plain; charset=utf-8", name+".note", k.Note)
	case "json":
		attachment(w, "application/json", name+".json", append(k.Result.Canonical(), '\n'))
	case "csv":
		attachment(w, "text/csv; charset=utf-8", name+".csv", recon.CSV(k.Result)) // recomputed from the signed note, as recon's store says
	default:
		notFound(w, "reconciliation format "+quote(r.PathValue("format"))+" (use note, json or csv)")
	}
}

// UI: /reconcile (the form and the kept results), POST /reconcile (run one),
// /reconcile/{provider}/{seq} (its breaks).

func (c *Console) reconcileUI(mux *http.ServeMux) {
	mux.HandleFunc("GET /reconcile", c.page(c.reconPage))
	mux.HandleFunc("POST /reconcile", c.reconPostHandler)
	mux.HandleFunc("GET /reconcile/{provider}/{seq}", c.page(c.reconResultPage))
	mux.HandleFunc("POST /reconcile/{provider}/{seq}/replay", c.page(c.reconReplayForm))
}

// reconReplayForm is the result page's "ask the edge again" button.
func (c *Console) reconReplayForm(w http.ResponseWriter, r *http.Request, id Identity, csrf string) {
	if id.Partner() {
		notFound(w, "page")
		return
	}
	if !reconAllowed(w, id) {
		return
	}
	k, ok := c.kept(w, r)
	if !ok {
		return
	}
	if _, err := c.replay(*k); err != nil {
		c.log.Warn("reconciliation replay", "provider", k.Result.Provider, "seq", k.Seq, "error", err)
		c.showReconResult(w, id, csrf, *k, err.Error(), http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, reconItem(*k, false).Page, http.StatusSeeOther)
}

func (c *Console) reconPage(w http.ResponseWriter, r *http.Request, id Identity, csrf string) {
	c.showReconPage(w, id, csrf, "", http.StatusOK)
}

func (c *Console) showReconPage(w http.ResponseWriter, id Identity, csrf, msg string, status int) {
	if id.Partner() {
		notFound(w, "page")
		return
	}
	items, err := c.reconList("")
	if err != nil {
		c.log.Warn("reconciliations", "error", err)
		msg = "The kept reconciliations could not be read; see the node's log."
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, "reconcile.html", map[string]any{"Me": id, "CSRF": csrf, "Items": items, "Error": msg,
		"CanRun": id.AtLeast(RoleOperator), "MaxUpload": c.o.Dash.MaxUpload}); err != nil {
		c.log.Error("render reconcile", "error", err)
	}
}

// reconPostHandler is page() for the multipart upload form: its CSRF field
// is in the multipart body, read (size-limited) before it is checked.
func (c *Console) reconPostHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	id, _, csrf, ok := c.authenticate(r)
	if !ok || id.Via != "session" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	setUser(w, id.Name)
	if id.Partner() {
		notFound(w, "page")
		return
	}
	u, status, err := c.readUpload(w, r)
	if got := r.Header.Get(csrfHeader); got == "" && r.MultipartForm != nil && len(r.MultipartForm.Value[csrfField]) == 1 {
		r.Header.Set(csrfHeader, r.MultipartForm.Value[csrfField][0])
	}
	if !csrfOK(r, csrf) {
		fail(w, http.StatusForbidden, CodeCSRF, "the form's CSRF token is missing or stale; reload the page")
		return
	}
	if !id.AtLeast(RoleOperator) {
		c.showReconPage(w, id, csrf, "Only operators may run a reconciliation.", http.StatusForbidden)
		return
	}
	if err == nil {
		var k recon.Kept
		if k, status, err = c.reconcile(u); err == nil {
			c.replayAfterKeep(k) // the result page shows the outcome, or that there is none
			http.Redirect(w, r, reconItem(k, false).Page, http.StatusSeeOther)
			return
		}
	}
	if status == http.StatusInternalServerError {
		c.log.Error("reconcile", "error", err)
		err = errors.New("the node could not read its ledger or keep the result; see its log")
	}
	c.showReconPage(w, id, csrf, err.Error(), status)
}

func (c *Console) reconResultPage(w http.ResponseWriter, r *http.Request, id Identity, csrf string) {
	if id.Partner() {
		notFound(w, "page")
		return
	}
	k, ok := c.kept(w, r)
	if !ok {
		return
	}
	c.showReconResult(w, id, csrf, *k, "", http.StatusOK)
}

func (c *Console) showReconResult(w http.ResponseWriter, id Identity, csrf string, k recon.Kept, msg string, status int) {
	it := reconItem(k, true)
	if msg == "" {
		msg = it.ReplayError
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, "reconcile-result.html", map[string]any{"Me": id, "CSRF": csrf, "K": it, "R": k.Result,
		"Replay": it.Replay, "ReplayError": msg, "CanReplay": id.AtLeast(RoleOperator) && len(k.Result.Missing) > 0}); err != nil {
		c.log.Error("render reconcile-result", "error", err)
	}
}
