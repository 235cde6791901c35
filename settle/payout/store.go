package payout

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/store"
)

// On disk, under a payouts directory (<data>/payouts), beside the
// statements:
//
//	RUN-<seq, 6 digits>.note   the run record: a signed note (the ledger key,
//	                           as statements) whose text is the run's
//	                           canonical JSON and a newline
//	RUN-<seq>.xml, RUN-<seq>.csv  its pain.001 message and table, derived
//	                           from the record (not signed; WriteFiles
//	                           recomputes them)
//
// Each run's "previous" is the SHA-256 of run seq − 1's canonical JSON, so
// a removed or altered run breaks the chain. The note is published first,
// with a hard link that fails when the file exists, so two concurrent runs
// cannot both take the same seq; the XML and CSV follow. A crash between
// leaves a recorded run without its files, which WriteFiles (called for
// every recorded run by tally payouts) writes again from the record.

// MaxRunBytes bounds a run record read from disk.
const MaxRunBytes = 64 << 20

// ErrChain means the run records on disk do not form an intact chain.
var ErrChain = errors.New("payout run chain broken")

// ErrConflict means another run took the same sequence number first.
var ErrConflict = errors.New("payout run recorded concurrently")

// Canonical is the JSON encoding that is hashed and signed.
func (r *Run) Canonical() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic("payout: canonical encoding failed: " + err.Error()) // strings, ints and times: cannot fail
	}
	return b
}

// Hash is the hex SHA-256 of Canonical().
func (r *Run) Hash() string {
	h := sha256.Sum256(r.Canonical())
	return hex.EncodeToString(h[:])
}

// Recorded is a run as stored.
type Recorded struct {
	Run  *Run
	Hash string
	Path string // of the .note file
}

// Load reads and checks every run under root: signatures against v, the
// previous-hash links and the sequence without gaps. No directory: no runs.
func Load(root string, v note.Verifier) ([]Recorded, error) {
	names, err := filepath.Glob(filepath.Join(root, "RUN-*.note"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Recorded
	prev := ""
	for i, path := range names {
		if want := fmt.Sprintf("RUN-%06d.note", i+1); filepath.Base(path) != want {
			return nil, fmt.Errorf("%s: want %s: %w", path, want, ErrChain)
		}
		b, err := store.ReadFileMax(path, MaxRunBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", path, err, ErrChain)
		}
		rp, err := store.OpenCanonical(b, v, "run record", (*Run).Canonical)
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", path, err, ErrChain)
		}
		r := *rp
		if r.Seq != i+1 || r.Previous != prev {
			return nil, fmt.Errorf("%s: seq %d previous %q, want %d and %q: %w", path, r.Seq, r.Previous, i+1, prev, ErrChain)
		}
		prev = r.Hash()
		out = append(out, Recorded{Run: &r, Hash: prev, Path: path})
	}
	return out, nil
}

// Runs returns the runs of recs.
func Runs(recs []Recorded) []Run {
	out := make([]Run, len(recs))
	for i, r := range recs {
		out[i] = *r.Run
	}
	return out
}

// Record links r to the last of prior (as Load returned them), signs it and
// writes the XML, the CSV and then the note under root. It refuses a run
// whose seq is not the next one, and ErrConflict when the note already
// exists (a concurrent run).
func Record(root string, prior []Recorded, r *Run, signer note.Signer) (Recorded, error) {
	if r.Seq != len(prior)+1 {
		return Recorded{}, fmt.Errorf("run seq %d after %d runs: %w", r.Seq, len(prior), ErrChain)
	}
	r.Previous = ""
	if len(prior) > 0 {
		r.Previous = prior[len(prior)-1].Hash
	}
	b, err := store.SignCanonical(r.Canonical(), signer)
	if err != nil {
		return Recorded{}, fmt.Errorf("sign run: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Recorded{}, fmt.Errorf("payouts dir: %w", err)
	}
	base := filepath.Join(root, r.ID)
	tmp := base + ".note.tmp"
	if err := store.WriteFileAtomic(tmp, b); err != nil {
		return Recorded{}, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, base+".note"); err != nil {
		if errors.Is(err, os.ErrExist) {
			return Recorded{}, fmt.Errorf("%s.note exists: %w", base, ErrConflict)
		}
		return Recorded{}, fmt.Errorf("record run: %w", err)
	}
	if err := syncDir(root); err != nil {
		return Recorded{}, err
	}
	rec := Recorded{Run: r, Hash: r.Hash(), Path: base + ".note"}
	if err := WriteFiles(root, rec, false); err != nil {
		return Recorded{}, err
	}
	return rec, nil
}

// WriteFiles writes a recorded run's pain.001 XML and CSV under dir as
// <run id>.xml and .csv; with onlyMissing, only those that do not exist.
func WriteFiles(dir string, rec Recorded, onlyMissing bool) error {
	xmlDoc, err := rec.Run.Pain001()
	if err != nil {
		return err
	}
	base := filepath.Join(dir, rec.Run.ID)
	for _, f := range []struct {
		path string
		b    []byte
	}{{base + ".xml", xmlDoc}, {base + ".csv", rec.Run.CSV()}} {
		if onlyMissing {
			if _, err := os.Stat(f.path); err == nil {
				continue
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := store.WriteFileAtomic(f.path, f.b); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
