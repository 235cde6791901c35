package recon

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/store"
)

// On disk, under a reconciliations directory (<data>/reconciliations):
//
//	<provider, URL path-escaped>/<seq, 6 digits>-<period>.note
//	<provider, URL path-escaped>/<seq, 6 digits>-<period>.json
//	<provider, URL path-escaped>/<seq, 6 digits>-<period>.csv
//
// The .note file is a signed note (golang.org/x/mod/sumdb/note, Ed25519,
// the ledger's key, as statements and checkpoints) whose text is the
// result's canonical JSON and a newline; the result's hash is the SHA-256 of
// that JSON. seq numbers the provider's reconciliations from 1 in the order
// they were run (a period may be reconciled many times, e.g. after the
// provider corrects its report); each result's "previous" is the hash of
// seq − 1. The .json (the note's text) and .csv (the breaks and totals as a
// table) are for download and are not signed: recompute them from the note.
// All three are written temp + fsync + rename, the note last, so a crash
// leaves either the whole result or unreferenced downloads that the next run
// overwrites.

// MaxNoteBytes bounds a reconciliation file read from disk.
const MaxNoteBytes = 64 << 20

// ErrChain means a provider's reconciliations on disk do not form an intact
// chain: a bad signature, a wrong previous hash or seq, a gap in the
// sequence, or a file that is not a canonical result of that provider.
var ErrChain = errors.New("reconciliation chain broken")

// Canonical is the JSON that is hashed and signed: Go's encoding of Result
// (fixed field order, sorted map keys, amounts as strings).
func (r *Result) Canonical() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic("recon: canonical encoding failed: " + err.Error()) // strings, ints, maps of strings: cannot fail
	}
	return b
}

// Hash is the SHA-256 of Canonical().
func (r *Result) Hash() [32]byte { return sha256.Sum256(r.Canonical()) }

// Kept is a result as stored: signed and linked.
type Kept struct {
	Seq    int
	Result *Result
	Hash   string // hex SHA-256 of Canonical()
	Note   []byte // the signed note
	Path   string // of the .note file
}

// Chain is a provider's kept reconciliations, oldest first.
type Chain struct {
	Provider string
	Dir      string
	Kept     []Kept
}

// Last returns the last kept result, or nil.
func (c *Chain) Last() *Kept {
	if len(c.Kept) == 0 {
		return nil
	}
	return &c.Kept[len(c.Kept)-1]
}

// Dir is the directory of provider's reconciliations under root.
func Dir(root, provider string) string { return filepath.Join(root, url.PathEscape(provider)) }

// Load reads and checks provider's chain under root: every signature
// against v, every previous-hash link and seq, the sequence without gaps,
// and that each file holds a canonical result of that provider. A provider
// without reconciliations has an empty chain. Errors wrap ErrChain.
func Load(root, provider string, v note.Verifier) (*Chain, error) {
	c := &Chain{Provider: provider, Dir: Dir(root, provider)}
	names, err := filepath.Glob(filepath.Join(c.Dir, "*.note"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	prev := ""
	for i, path := range names {
		seq, err := strconv.Atoi(strings.SplitN(filepath.Base(path), "-", 2)[0])
		if err != nil || seq != i+1 {
			return nil, fmt.Errorf("%s: want reconciliation %d of %s: %w", path, i+1, provider, ErrChain)
		}
		b, err := store.ReadFileMax(path, MaxNoteBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", path, err, ErrChain)
		}
		r, err := Open(b, v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", path, err, ErrChain)
		}
		if r.Provider != provider || r.Seq != seq || r.Previous != prev {
			return nil, fmt.Errorf("%s: provider %q seq %d previous %q, want %q, %d and %q: %w", path, r.Provider, r.Seq, r.Previous, provider, seq, prev, ErrChain)
		}
		h := r.Hash()
		prev = hex.EncodeToString(h[:])
		c.Kept = append(c.Kept, Kept{Seq: seq, Result: r, Hash: prev, Note: b, Path: path})
	}
	return c, nil
}

// Open verifies a signed reconciliation note against v and returns its
// result. The text must be exactly a canonical result and a newline.
func Open(b []byte, v note.Verifier) (*Result, error) {
	return store.OpenCanonical(b, v, "reconciliation", (*Result).Canonical)
}

// Keep links r to the chain's last result (sets Seq and Previous), signs it
// and writes the CSV, the JSON and the note, in that order. It returns the
// kept result and appends it to c.
func (c *Chain) Keep(r *Result, signer note.Signer) (Kept, error) {
	if r.Provider != c.Provider {
		return Kept{}, fmt.Errorf("keep a reconciliation of %s in the chain of %s", r.Provider, c.Provider)
	}
	if strings.ContainsAny(r.Period, `/\`) || r.Period == "" || strings.HasPrefix(r.Period, ".") {
		return Kept{}, fmt.Errorf("period %q cannot name a file", r.Period)
	}
	r.Seq = len(c.Kept) + 1
	r.Previous = ""
	if last := c.Last(); last != nil {
		r.Previous = last.Hash
	}
	text := r.Canonical()
	b, err := store.SignCanonical(text, signer)
	if err != nil {
		return Kept{}, fmt.Errorf("sign reconciliation: %w", err)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return Kept{}, fmt.Errorf("reconciliations dir: %w", err)
	}
	base := filepath.Join(c.Dir, fmt.Sprintf("%06d-%s", r.Seq, r.Period))
	if err := store.WriteFileAtomic(base+".csv", CSV(r)); err != nil {
		return Kept{}, err
	}
	if err := store.WriteFileAtomic(base+".json", append(text, '\n')); err != nil {
		return Kept{}, err
	}
	if err := store.WriteFileAtomic(base+".note", b); err != nil {
		return Kept{}, err
	}
	h := r.Hash()
	k := Kept{Seq: r.Seq, Result: r, Hash: hex.EncodeToString(h[:]), Note: b, Path: base + ".note"}
	c.Kept = append(c.Kept, k)
	return k, nil
}

// CSVHeader is the header row of CSV.
var CSVHeader = []string{"provider", "period", "section", "id", "detail", "report_row", "report_type", "report_amount", "report_currency", "report_occurred_at",
	"ledger_partition", "ledger_index", "ledger_type", "ledger_amount", "ledger_currency", "ledger_occurred_at", "edge_node", "edge_seq"}

// CSV renders r as one table: a row per break (sections missing, extra,
// mismatched, duplicate, rejected, out_of_period) and per total, in the
// order of the result.
func CSV(r *Result) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(CSVHeader)
	num := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	row := func(section, id, detail string, rep, led *Item) {
		rec := []string{r.Provider, r.Period, section, id, detail}
		if rep != nil {
			rec = append(rec, strconv.Itoa(rep.Row), rep.Type, rep.Amount, rep.Currency, rep.OccurredAt)
		} else {
			rec = append(rec, "", "", "", "", "")
		}
		if led != nil {
			seq := ""
			if led.EdgeSeq != 0 {
				seq = strconv.FormatUint(led.EdgeSeq, 10)
			}
			rec = append(rec, num(led.Partition), num(led.Index), led.Type, led.Amount, led.Currency, led.OccurredAt, led.EdgeNode, seq)
		} else {
			rec = append(rec, "", "", "", "", "", "", "", "")
		}
		_ = w.Write(rec)
	}
	for i := range r.Missing {
		row("missing", r.Missing[i].ID, "in the report, not in the ledger", &r.Missing[i], nil)
	}
	for i := range r.Extra {
		row("extra", r.Extra[i].ID, "in the ledger, not in the report", nil, &r.Extra[i])
	}
	for i := range r.Mismatched {
		m := &r.Mismatched[i]
		row("mismatched", m.ID, strings.Join(m.Fields, " "), &m.Report, &m.Ledger)
	}
	for _, d := range r.Duplicates {
		kind := "conflicting"
		if d.Identical {
			kind = "identical"
		}
		rows := make([]string, len(d.Rows))
		for i, n := range d.Rows {
			rows[i] = strconv.Itoa(n)
		}
		row("duplicate", d.ID, kind+" rows "+strings.Join(rows, " "), nil, nil)
	}
	for _, j := range r.Rejected {
		row("rejected", j.ID, fmt.Sprintf("row %d %s: %s", j.Row, j.Code, j.Reason), nil, nil)
	}
	for i := range r.OutOfPeriod {
		row("out_of_period", r.OutOfPeriod[i].ID, "dated outside "+r.Period, &r.OutOfPeriod[i], nil)
	}
	for _, t := range r.Totals {
		_ = w.Write([]string{r.Provider, r.Period, "total", "",
			fmt.Sprintf("report %d, ledger %d, difference %s", t.ReportCount, t.LedgerCount, t.Difference),
			"", t.Type, t.ReportAmount, t.Currency, "",
			"", "", t.Type, t.LedgerAmount, t.Currency, "", "", ""})
	}
	w.Flush()
	return buf.Bytes()
}
