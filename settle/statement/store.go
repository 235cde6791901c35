package statement

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/store"
)

// On disk, under a statements directory (<data>/statements):
//
//	<party, URL path-escaped>/<seq, 6 digits>-<period>-<currency>.note
//	<party, URL path-escaped>/<seq, 6 digits>-<period>-<currency>.csv
//
// The .note file is a signed note (golang.org/x/mod/sumdb/note, Ed25519, the
// format and key of the ledger's checkpoints) whose text is the statement's
// canonical JSON and a newline; the statement's hash is the SHA-256 of that
// JSON. seq numbers the party's statements from 1, in issue order; each
// statement's "previous" is the hash of the party's statement seq − 1. The
// .csv file is the same statement as a table, for spreadsheets; it is not
// signed (recompute it from the note). Both are written temp + fsync +
// rename, the note last, so a crash leaves either the whole statement or an
// unreferenced CSV that the next issue overwrites.
//
// Provisional statements (a period not yet ended) are signed the same way
// but written under <party>/provisional/<period>-<currency>.note (and .csv),
// outside the chain: Load ignores that directory and refuses a provisional
// statement among the chain's files.

// MaxNoteBytes bounds a statement file read from disk.
const MaxNoteBytes = 16 << 20

// ErrChain means a party's statements on disk do not form an intact chain:
// a bad signature, a wrong previous hash, a gap in the sequence or a file
// that is not a canonical statement.
var ErrChain = errors.New("statement chain broken")

// Canonical is the JSON encoding that is hashed and signed: Go's encoding of
// Statement (fixed field order, times in RFC 3339 UTC, amounts as strings).
func (s *Statement) Canonical() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic("statement: canonical encoding failed: " + err.Error()) // strings, ints and times: cannot fail
	}
	return b
}

// Hash is the SHA-256 of Canonical().
func (s *Statement) Hash() [32]byte { return sha256.Sum256(s.Canonical()) }

// Issued is a statement as stored: signed and linked.
type Issued struct {
	Seq       int
	Statement *Statement
	Hash      string // hex SHA-256 of Canonical()
	Note      []byte // the signed note
	Path      string // of the .note file
}

// Chain is a party's issued statements, oldest first.
type Chain struct {
	Party  string
	Dir    string
	Issued []Issued
}

// Last returns the last issued statement, or nil.
func (c *Chain) Last() *Issued {
	if len(c.Issued) == 0 {
		return nil
	}
	return &c.Issued[len(c.Issued)-1]
}

// LastIn returns the last issued statement in currency, or nil.
func (c *Chain) LastIn(currency string) *Issued {
	for i := len(c.Issued) - 1; i >= 0; i-- {
		if c.Issued[i].Statement.Currency == currency {
			return &c.Issued[i]
		}
	}
	return nil
}

// Find returns the issued statement for period and currency, or nil.
func (c *Chain) Find(period, currency string) *Issued {
	for i := range c.Issued {
		if s := c.Issued[i].Statement; s.Period == period && s.Currency == currency {
			return &c.Issued[i]
		}
	}
	return nil
}

func partyDir(root, party string) string { return filepath.Join(root, url.PathEscape(party)) }

// Load reads and checks party's chain under root: every signature against
// v, every previous-hash link, the sequence without gaps, and that each file
// holds a canonical statement of that party. A party without statements has
// an empty chain. Errors wrap ErrChain with the file at fault.
func Load(root, party string, v note.Verifier) (*Chain, error) {
	c := &Chain{Party: party, Dir: partyDir(root, party)}
	names, err := filepath.Glob(filepath.Join(c.Dir, "*.note"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	prev := ""
	for i, path := range names {
		seq, err := strconv.Atoi(strings.SplitN(filepath.Base(path), "-", 2)[0])
		if err != nil || seq != i+1 {
			return nil, fmt.Errorf("%s: want statement %d of %s: %w", path, i+1, party, ErrChain)
		}
		b, err := readMax(path, MaxNoteBytes)
		if err != nil {
			return nil, err
		}
		sp, err := store.OpenCanonical(b, v, "statement", (*Statement).Canonical)
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", path, err, ErrChain)
		}
		s := *sp
		if s.Provisional {
			return nil, fmt.Errorf("%s: a provisional statement in the chain (provisional statements live under provisional/ and are never part of it): %w", path, ErrChain)
		}
		if s.Party != party || s.Previous != prev {
			return nil, fmt.Errorf("%s: party %q previous %q, want %q and %q: %w", path, s.Party, s.Previous, party, prev, ErrChain)
		}
		h := s.Hash()
		prev = hex.EncodeToString(h[:])
		c.Issued = append(c.Issued, Issued{Seq: seq, Statement: &s, Hash: prev, Note: b, Path: path})
	}
	return c, nil
}

// Issue links s to the chain's last statement, signs it and writes it (CSV
// first, then the note). It returns the issued statement and appends it to c.
func (c *Chain) Issue(s *Statement, signer note.Signer) (Issued, error) {
	if s.Party != c.Party {
		return Issued{}, fmt.Errorf("issue statement of %s in the chain of %s", s.Party, c.Party)
	}
	if s.Provisional {
		return Issued{}, fmt.Errorf("statement %s %s %s is provisional: it is never part of the chain (IssueProvisional): %w", s.Party, s.Period, s.Currency, ErrProvisional)
	}
	s.Previous = ""
	if last := c.Last(); last != nil {
		s.Previous = last.Hash
	}
	b, err := store.SignCanonical(s.Canonical(), signer)
	if err != nil {
		return Issued{}, fmt.Errorf("sign statement: %w", err)
	}
	seq := len(c.Issued) + 1
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return Issued{}, fmt.Errorf("statements dir: %w", err)
	}
	base := filepath.Join(c.Dir, fmt.Sprintf("%06d-%s-%s", seq, s.Period, s.Currency))
	if err := store.WriteFileAtomic(base+".csv", CSV(s)); err != nil {
		return Issued{}, err
	}
	if err := store.WriteFileAtomic(base+".note", b); err != nil {
		return Issued{}, err
	}
	h := s.Hash()
	is := Issued{Seq: seq, Statement: s, Hash: hex.EncodeToString(h[:]), Note: b, Path: base + ".note"}
	c.Issued = append(c.Issued, is)
	return is, nil
}

// ErrProvisional means a provisional statement was given where only a
// final one may go (the chain), or the reverse.
var ErrProvisional = errors.New("provisional statement")

// IssueProvisional signs a provisional statement s (s.Provisional set) and
// writes it under the party's provisional/ directory as
// <period>-<currency>.note and .csv, replacing an earlier provisional of the
// same period. Previous links it to the chain's last final statement, the
// place its final version will take; the chain itself is not changed.
func (c *Chain) IssueProvisional(s *Statement, signer note.Signer) (Issued, error) {
	if s.Party != c.Party {
		return Issued{}, fmt.Errorf("issue statement of %s in the chain of %s", s.Party, c.Party)
	}
	if !s.Provisional {
		return Issued{}, fmt.Errorf("statement %s %s %s is final: issue it in the chain: %w", s.Party, s.Period, s.Currency, ErrProvisional)
	}
	s.Previous = ""
	if last := c.Last(); last != nil {
		s.Previous = last.Hash
	}
	b, err := note.Sign(&note.Note{Text: string(s.Canonical()) + "\n"}, signer)
	if err != nil {
		return Issued{}, fmt.Errorf("sign statement: %w", err)
	}
	dir := filepath.Join(c.Dir, "provisional")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Issued{}, fmt.Errorf("statements dir: %w", err)
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%s", s.Period, s.Currency))
	if err := store.WriteFileAtomic(base+".csv", CSV(s)); err != nil {
		return Issued{}, err
	}
	if err := store.WriteFileAtomic(base+".note", b); err != nil {
		return Issued{}, err
	}
	h := s.Hash()
	return Issued{Statement: s, Hash: hex.EncodeToString(h[:]), Note: b, Path: base + ".note"}, nil
}

// StoredParties lists the parties with a statement directory under root.
func StoredParties(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		p, err := url.PathUnescape(e.Name())
		if err != nil {
			return nil, fmt.Errorf("statements dir %s: %w", e.Name(), err)
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

func readMax(path string, max int64) ([]byte, error) {
	b, err := store.ReadFileMax(path, max)
	if errors.Is(err, store.ErrMalformed) {
		return nil, fmt.Errorf("%v: %w", err, ErrChain)
	}
	return b, err
}
