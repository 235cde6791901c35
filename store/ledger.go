package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/store/merkle"
)

// File names inside a partition directory.
const (
	checkpointFile = "checkpoint"
	hashesFile     = "hashes"
	segmentExt     = ".seg"
	tmpExt         = ".tmp"
)

// Options configure a Ledger. Every field is required except Logger
// (discarded when nil) and Signer (Sign fails without one).
type Options struct {
	Dir    string // ledger directory (created if missing)
	Origin string // checkpoint origin stem; partition p's origin is Origin+"/p"+p
	// Signer signs checkpoints. A *LogSigner (NewLogSigner,
	// LoadOrCreateKey), named like Origin, signs partition p's checkpoint
	// under the key name Origin+"/p"+p, its origin (C2SP tlog-checkpoint).
	// Any other note.Signer signs every partition under its own name, the
	// form tally wrote before; OpenCheckpoint and Verify accept both.
	Signer note.Signer
	Logger hclog.Logger // named sub-logger, e.g. log.Named("ledger")
}

// Head is the state of one partition's ledger.
type Head struct {
	Segments uint64   // segment files, numbered 1..Segments
	Size     uint64   // leaves in the tree
	Root     [32]byte // RFC 6962 root at Size
	LastHash [32]byte // SHA-256 of segment Segments (zero when there is none)
	Signed   uint64   // tree size of the last signed checkpoint
}

// Ledger appends segments to per-partition logs and signs their
// checkpoints. It is safe for concurrent use; calls on one partition are
// serialized, calls on different partitions run in parallel. Exactly one
// Ledger (one process) may have a directory open at a time.
type Ledger struct {
	opts Options
	log  hclog.Logger

	mu     sync.Mutex // guards parts and closed; taken before any partition's mu
	parts  map[uint32]*partition
	closed bool
}

// partition is one partition's files and tree state.
type partition struct {
	mu       sync.Mutex
	id       uint32
	dir      string
	origin   string
	segs     uint64        // segment files 1..segs exist and are committed to the tree
	tree     *merkle.Range // compact range at the end of segment segs
	lastHash [32]byte      // SHA-256 of segment segs
	hashes   *os.File      // storage-layout hashes, StoredCount(tree.Size()) of them
	signed   Checkpoint    // last signed checkpoint (valid when signedNote != nil)
	note     []byte        // last signed note, as persisted
}

// Open opens (creating if needed) the ledger in o.Dir and loads every
// partition found there: it checks that segment files are numbered 1..n,
// that the last segment parses and links to the one before it, that the
// hash cache (<p>/hashes) matches the last segment's root (rebuilding it
// from the segments, with a full chain check, when it does not), and that
// the last checkpoint is consistent with the tree. A full audit of every
// byte is Verify's job.
func Open(o Options) (*Ledger, error) {
	if o.Dir == "" {
		return nil, errors.New("open ledger: no directory")
	}
	if o.Origin == "" || strings.ContainsAny(o.Origin, " \t\n") {
		return nil, fmt.Errorf("open ledger: origin %q must be non-empty without spaces", o.Origin)
	}
	if ls, ok := o.Signer.(*LogSigner); ok && ls.Name() != o.Origin {
		return nil, fmt.Errorf("open ledger: the signing key is named %q, the origin is %q: partition keys are named <origin>/p<partition>", ls.Name(), o.Origin)
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	ps, err := listPartitions(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	l := &Ledger{opts: o, log: o.Logger, parts: map[uint32]*partition{}}
	for _, p := range ps {
		part, err := l.openPartition(p)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("open ledger partition %d: %w", p, err)
		}
		l.parts[p] = part
	}
	return l, nil
}

func partitionDir(root string, p uint32) string {
	return filepath.Join(root, fmt.Sprintf("p%03d", p))
}

func segmentPath(dir string, n uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016d%s", n, segmentExt))
}

// listPartitions returns the partitions with a directory under root, sorted.
// Names other than p<digits> are ignored; p<digits> not written as %03d is
// corrupt.
func listPartitions(root string) ([]uint32, error) {
	des, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, de := range des {
		name := de.Name()
		if !de.IsDir() || len(name) < 2 || name[0] != 'p' || strings.Trim(name[1:], "0123456789") != "" {
			continue
		}
		n, err := strconv.ParseUint(name[1:], 10, 32)
		if err != nil || fmt.Sprintf("p%03d", n) != name {
			return nil, corrupt(0, 0, -1, nil, "directory %s is not a canonical partition name (p%%03d)", name)
		}
		out = append(out, uint32(n))
	}
	slices.Sort(out)
	return out, nil
}

// listSegments returns the segment numbers in dir, sorted, checked to be
// exactly 1..n, and the names of leftover temporary files.
func listSegments(dir string, p uint32) (n uint64, tmps []string, err error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0, nil, err
	}
	var nums []uint64
	for _, de := range des {
		name := de.Name()
		switch {
		case strings.HasSuffix(name, tmpExt):
			tmps = append(tmps, name)
		case strings.HasSuffix(name, segmentExt):
			stem := strings.TrimSuffix(name, segmentExt)
			v, err := strconv.ParseUint(stem, 10, 64)
			if err != nil || len(stem) != 16 || v == 0 {
				return 0, nil, corrupt(p, 0, -1, nil, "file %s is not a canonical segment name (%%016d.seg, from 1)", name)
			}
			nums = append(nums, v)
		}
	}
	slices.Sort(nums)
	for i, v := range nums {
		if want := uint64(i) + 1; v != want {
			return 0, nil, corrupt(p, want, -1, nil, "segment file %s is missing (next present is segment %d)", filepath.Base(segmentPath(dir, want)), v)
		}
	}
	return uint64(len(nums)), tmps, nil
}

func (l *Ledger) openPartition(p uint32) (*partition, error) {
	dir := partitionDir(l.opts.Dir, p)
	n, tmps, err := listSegments(dir, p)
	if err != nil {
		return nil, err
	}
	for _, t := range tmps {
		l.log.Info("removing temporary file of an interrupted write", "partition", p, "file", t)
		if err := os.Remove(filepath.Join(dir, t)); err != nil {
			return nil, err
		}
	}
	part := &partition{id: p, dir: dir, origin: partitionOrigin(l.opts.Origin, p), tree: &merkle.Range{}}
	if part.hashes, err = os.OpenFile(filepath.Join(dir, hashesFile), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			part.hashes.Close()
		}
	}()
	if n > 0 {
		last, err := readFileMax(segmentPath(dir, n), MaxSegmentBytes)
		if err != nil {
			return nil, corrupt(p, n, -1, err, "read last segment")
		}
		seg, bad, err := splitSegment(last)
		if err != nil {
			return nil, corrupt(p, n, badIndex(seg.hdr, bad), err, "last segment does not parse")
		}
		h := seg.hdr
		switch {
		case h.Partition != p:
			return nil, corrupt(p, n, -1, nil, "header says partition %d", h.Partition)
		case h.Number != n:
			return nil, corrupt(p, n, -1, nil, "file holds segment %d", h.Number)
		case h.TreeSize != h.FirstIndex+uint64(h.Count):
			return nil, corrupt(p, n, -1, nil, "tree size %d is not first index %d + count %d", h.TreeSize, h.FirstIndex, h.Count)
		}
		var prev [32]byte
		if n > 1 {
			b, err := readFileMax(segmentPath(dir, n-1), MaxSegmentBytes)
			if err != nil {
				return nil, corrupt(p, n-1, -1, err, "read segment")
			}
			prev = SegmentHash(b)
		}
		if h.PrevHash != prev {
			return nil, corrupt(p, n, -1, nil, "prev hash %x does not match SHA-256 of segment %d (%x)", h.PrevHash, n-1, prev)
		}
		part.segs, part.lastHash = n, SegmentHash(last)
		if err := part.loadTree(h.TreeSize, h.Root); err != nil {
			l.log.Warn("hash cache does not match the segments, rebuilding it", "partition", p, "error", err)
			if err := part.rebuild(); err != nil {
				return nil, err
			}
		}
	} else if err := part.hashes.Truncate(0); err != nil {
		return nil, err
	}
	if err := part.loadCheckpoint(); err != nil {
		return nil, err
	}
	ok = true
	return part, nil
}

func badIndex(h SegmentHeader, bad int) int64 {
	if bad < 0 {
		return -1
	}
	return int64(h.FirstIndex) + int64(bad)
}

// read returns stored hash i from the hash cache.
func (part *partition) read(i uint64) (merkle.Hash, error) {
	var h merkle.Hash
	if _, err := part.hashes.ReadAt(h[:], int64(i)*32); err != nil {
		return h, fmt.Errorf("hash cache index %d: %w", i, err)
	}
	return h, nil
}

// loadTree restores the compact range from the hash cache, checking it
// against the last segment's root and cutting off hashes written by a Seal
// that did not finish.
func (part *partition) loadTree(size uint64, root [32]byte) error {
	st, err := part.hashes.Stat()
	if err != nil {
		return err
	}
	want := int64(merkle.StoredCount(size)) * 32
	if st.Size() < want {
		return fmt.Errorf("hash cache has %d bytes, tree of size %d needs %d", st.Size(), size, want)
	}
	r, err := merkle.RangeAt(part.read, size)
	if err != nil {
		return err
	}
	if r.Root() != root {
		return fmt.Errorf("hash cache root %x, segment root %x", r.Root(), root)
	}
	if st.Size() > want {
		if err := part.hashes.Truncate(want); err != nil {
			return err
		}
		if err := part.hashes.Sync(); err != nil {
			return err
		}
	}
	part.tree = r
	return nil
}

// rebuild recomputes the hash cache from every segment, checking the chain.
func (part *partition) rebuild() error {
	if err := part.hashes.Truncate(0); err != nil {
		return err
	}
	var buf []byte
	c := chain{p: part.id, tree: &merkle.Range{}, store: func(h merkle.Hash) { buf = append(buf, h[:]...) }}
	var off int64
	for n := uint64(1); n <= part.segs; n++ {
		b, err := readFileMax(segmentPath(part.dir, n), MaxSegmentBytes)
		if err != nil {
			return corrupt(part.id, n, -1, err, "read segment")
		}
		if _, err := c.add(b); err != nil {
			return err
		}
		if _, err := part.hashes.WriteAt(buf, off); err != nil {
			return err
		}
		off += int64(len(buf))
		buf = buf[:0]
	}
	if err := part.hashes.Sync(); err != nil {
		return err
	}
	part.tree = c.tree
	return nil
}

// loadCheckpoint reads the last signed checkpoint and checks it against the tree.
func (part *partition) loadCheckpoint() error {
	b, err := readFileMax(filepath.Join(part.dir, checkpointFile), maxCheckpoint)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return corrupt(part.id, 0, -1, err, "read checkpoint")
	}
	text, err := noteText(b)
	if err != nil {
		return corrupt(part.id, 0, -1, err, "checkpoint")
	}
	c, err := ParseCheckpoint(text)
	if err != nil {
		return corrupt(part.id, 0, -1, err, "checkpoint")
	}
	if c.Origin != part.origin {
		return fmt.Errorf("checkpoint origin is %q, configured origin gives %q: %w", c.Origin, part.origin, ErrInconsistent)
	}
	if c.Size > part.tree.Size() || c.Segment > part.segs {
		return corrupt(part.id, c.Segment, -1, nil, "checkpoint covers segment %d (size %d), ledger has %d segments (size %d)", c.Segment, c.Size, part.segs, part.tree.Size())
	}
	root, err := merkle.RootAt(part.read, c.Size)
	if err != nil || root != c.Root {
		return corrupt(part.id, c.Segment, -1, err, "checkpoint root %x at size %d, tree has %x", c.Root, c.Size, root)
	}
	if c.Segment == part.segs && c.SegmentHash != part.lastHash {
		return corrupt(part.id, c.Segment, -1, nil, "checkpoint segment hash %x, file hash %x", c.SegmentHash, part.lastHash)
	}
	part.signed, part.note = c, b
	return nil
}

// partition returns partition p, creating its directory if create is set.
// It returns nil, nil for an unknown partition when create is not set.
func (l *Ledger) partition(p uint32, create bool) (*partition, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if part := l.parts[p]; part != nil || !create {
		return part, nil
	}
	dir := partitionDir(l.opts.Dir, p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := syncDir(l.opts.Dir); err != nil {
		return nil, err
	}
	h, err := os.OpenFile(filepath.Join(dir, hashesFile), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	part := &partition{id: p, dir: dir, origin: partitionOrigin(l.opts.Origin, p), tree: &merkle.Range{}, hashes: h}
	l.parts[p] = part
	return part, nil
}

// Seal appends entries to partition p as the next segment: Prepare, then
// Commit. It assigns each entry its Index (and SettledAt = now if zero) and
// returns the header and the exact bytes of the file.
//
// On error nothing changes: the tree, the segment count and the caller's
// entries are untouched, and no segment file is left behind.
func (l *Ledger) Seal(p uint32, entries []Entry, now time.Time) (SegmentHeader, []byte, error) {
	pr, err := l.Prepare(p, entries, now)
	if err != nil {
		return SegmentHeader{}, nil, err
	}
	if err := l.Commit(pr); err != nil {
		return SegmentHeader{}, nil, err
	}
	copy(entries, pr.Entries)
	return pr.Header, pr.Bytes, nil
}

// Prepared is a segment built by Prepare and not written yet: its exact
// bytes, its header, its entries with their leaf indexes, and the tree it
// leads to. A settle node publishes Bytes and writes it with Commit only
// once the stream has accepted it.
type Prepared struct {
	Header  SegmentHeader
	Bytes   []byte
	Entries []Entry // copies of the caller's entries with Index and SettledAt set

	stored   []byte        // new hash-cache entries
	tree     *merkle.Range // tree after this segment
	prevSegs uint64        // the partition this was built on: segment count...
	prevHash [32]byte      // ...and SHA-256 of its last segment
}

// Prepare builds entries as the next segment of partition p without
// writing anything: it assigns each entry its Index (and SettledAt = now if
// zero), checks every entry (Validate: shares sum exactly to Net,
// |Net| == amount) and that it is for partition p, and encodes the segment.
// The caller's entries are not changed.
func (l *Ledger) Prepare(p uint32, entries []Entry, now time.Time) (*Prepared, error) {
	part, err := l.partition(p, true)
	if err != nil {
		return nil, fmt.Errorf("prepare segment: %w", err)
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	pr, err := part.build(entries, now)
	if err != nil {
		return nil, fmt.Errorf("prepare segment: partition %d: %w", p, err)
	}
	return pr, nil
}

// Commit writes a prepared segment: the new tree hashes to the hash cache
// (fsynced), then the segment file durably (temporary file, fsync, rename,
// fsync of the directory), and only then advances the tree. The partition
// must still be where Prepare found it (ErrInconsistent otherwise). On
// error nothing changes and no segment file is left behind.
func (l *Ledger) Commit(pr *Prepared) error {
	p := pr.Header.Partition
	part, err := l.partition(p, true)
	if err != nil {
		return fmt.Errorf("commit segment: %w", err)
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	if part.segs != pr.prevSegs || part.lastHash != pr.prevHash {
		return fmt.Errorf("commit segment %d of partition %d: built on segment %d, partition has %d: %w", pr.Header.Number, p, pr.prevSegs, part.segs, ErrInconsistent)
	}
	if err := part.write(pr); err != nil {
		return fmt.Errorf("commit segment %d of partition %d: %w", pr.Header.Number, p, err)
	}
	l.log.Debug("sealed segment", "partition", p, "segment", pr.Header.Number, "entries", pr.Header.Count, "size", pr.Header.TreeSize)
	return nil
}

// Append checks seg as the next segment of partition p exactly as Verify
// checks a segment file (framing, number, partition, first index, link to
// the previous segment, every entry decoded and validated, recomputed root,
// totals) and writes it as Commit does. It is how a segment taken from the
// ledger stream joins the local files. It returns the header and the
// decoded entries. A segment that fails a check is a *CorruptError and
// nothing is written.
func (l *Ledger) Append(p uint32, seg []byte) (SegmentHeader, []Entry, error) {
	part, err := l.partition(p, true)
	if err != nil {
		return SegmentHeader{}, nil, fmt.Errorf("append segment: %w", err)
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	if len(seg) > MaxSegmentBytes {
		return SegmentHeader{}, nil, fmt.Errorf("append segment: partition %d: %d bytes exceed %d: %w", p, len(seg), MaxSegmentBytes, ErrLimit)
	}
	var stored []byte
	var entries []Entry
	c := chain{p: p, segs: part.segs, tree: part.tree.Clone(), prev: part.lastHash, decode: true,
		store:   func(h merkle.Hash) { stored = append(stored, h[:]...) },
		onEntry: func(_ uint64, e *Entry) error { entries = append(entries, *e); return nil },
	}
	hdr, err := c.add(seg)
	if err != nil {
		return SegmentHeader{}, nil, err
	}
	pr := &Prepared{Header: hdr, Bytes: seg, Entries: entries, stored: stored, tree: c.tree, prevSegs: part.segs, prevHash: part.lastHash}
	if err := part.write(pr); err != nil {
		return SegmentHeader{}, nil, fmt.Errorf("append segment %d of partition %d: %w", hdr.Number, p, err)
	}
	l.log.Debug("appended segment", "partition", p, "segment", hdr.Number, "entries", hdr.Count, "size", hdr.TreeSize)
	return hdr, entries, nil
}

func (part *partition) build(entries []Entry, now time.Time) (*Prepared, error) {
	switch {
	case len(entries) == 0:
		return nil, fmt.Errorf("no entries: %w", ErrLimit)
	case len(entries) > MaxSegmentEntries:
		return nil, fmt.Errorf("%d entries exceed the limit of %d: %w", len(entries), MaxSegmentEntries, ErrLimit)
	case now.IsZero():
		return nil, fmt.Errorf("zero seal time: %w", ErrInvalidEntry)
	}
	now = now.UTC()
	first := part.tree.Size()
	tree := part.tree.Clone()
	stored := make([]byte, 0, 2*32*(len(entries)+1))
	raws := make([][]byte, len(entries))
	arena := make([]byte, 0, 256*len(entries)) // every entry's encoding, one allocation (regrown if needed)
	out := make([]Entry, len(entries))
	tot := totals{}
	for i := range entries {
		out[i] = entries[i] // a copy: the caller's entries never change
		e := &out[i]        // (built in place: a local copy escaped, one allocation per entry)
		if e.Partition != part.id {
			return nil, fmt.Errorf("entry %d (%s/%s) is for partition %d: %w", i, e.Provider, e.Tx.ID, e.Partition, ErrInvalidEntry)
		}
		e.Index = first + uint64(i)
		if e.SettledAt.IsZero() {
			e.SettledAt = now
		}
		start := len(arena)
		enc, balanced, err := e.appendBinary(arena)
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s/%s): %w", i, e.Provider, e.Tx.ID, err)
		}
		if !balanced { // not shown on the minor units: the decimal check decides and names the problem
			if err := e.Validate(); err != nil {
				return nil, fmt.Errorf("entry %d (%s/%s): %w", i, e.Provider, e.Tx.ID, err)
			}
		}
		// Earlier raws keep pointing at the old array if enc regrew: only appended to.
		arena = enc
		raws[i] = enc[start:len(enc):len(enc)]
		tot.add(e.Tx.Currency.Code, e.Net)
		tree.Append(merkle.HashLeaf(raws[i]), func(h merkle.Hash) { stored = append(stored, h[:]...) })
	}
	hdr := SegmentHeader{
		Version: SegmentVersion, Partition: part.id, Number: part.segs + 1,
		FirstIndex: first, Count: uint32(len(entries)), PrevHash: part.lastHash,
		TreeSize: tree.Size(), Root: tree.Root(), SealedAt: now, Totals: tot.list(),
	}
	seg, err := encodeSegment(&hdr, raws)
	if err != nil {
		return nil, err
	}
	return &Prepared{Header: hdr, Bytes: seg, Entries: out, stored: stored, tree: tree, prevSegs: part.segs, prevHash: part.lastHash}, nil
}

// write makes pr durable and advances the partition to it. The hashes are
// durable before the segment file appears, so the cache never lags a
// visible segment; a crash in between leaves extra hashes that Open cuts
// off. On error nothing changes.
func (part *partition) write(pr *Prepared) error {
	off := int64(merkle.StoredCount(pr.Header.FirstIndex)) * 32
	undo := func() { part.hashes.Truncate(off) }
	if _, err := part.hashes.WriteAt(pr.stored, off); err != nil {
		undo()
		return fmt.Errorf("hash cache: %w", err)
	}
	if err := part.hashes.Sync(); err != nil {
		undo()
		return fmt.Errorf("hash cache: %w", err)
	}
	path := segmentPath(part.dir, pr.Header.Number)
	if renamed, err := writeFileAtomic(path, pr.Bytes, 0o644); err != nil {
		if renamed {
			os.Remove(path)
			syncDir(part.dir)
		}
		undo()
		return err
	}
	part.tree, part.segs, part.lastHash = pr.tree.Clone(), pr.Header.Number, SegmentHash(pr.Bytes)
	return nil
}

// Sign signs a checkpoint of partition p's current tree and persists it to
// <p>/checkpoint durably before returning it. The note's text is a C2SP
// tlog-checkpoint body with one extension line (see Checkpoint.Body).
//
// It never signs two inconsistent checkpoints: the current tree must extend
// the last signed one (same root at the old size, recomputed from the hash
// cache), else it fails with ErrInconsistent. Signing an unchanged tree
// returns the last note again.
func (l *Ledger) Sign(p uint32) ([]byte, error) {
	if l.opts.Signer == nil {
		return nil, fmt.Errorf("sign partition %d: no signer", p)
	}
	part, err := l.partition(p, false)
	if err != nil {
		return nil, fmt.Errorf("sign partition %d: %w", p, err)
	}
	if part == nil {
		return nil, fmt.Errorf("sign partition %d: no segments", p)
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	c := Checkpoint{Origin: part.origin, Size: part.tree.Size(), Root: part.tree.Root(), Segment: part.segs, SegmentHash: part.lastHash}
	if part.note != nil {
		s := part.signed
		if s == c {
			return slices.Clone(part.note), nil
		}
		if s.Size > c.Size || s.Segment > c.Segment || (s.Segment == c.Segment && s != c) {
			return nil, fmt.Errorf("sign partition %d: signed segment %d size %d, now segment %d size %d: %w", p, s.Segment, s.Size, c.Segment, c.Size, ErrInconsistent)
		}
		root, err := merkle.RootAt(part.read, s.Size)
		if err != nil {
			return nil, fmt.Errorf("sign partition %d: %w", p, err)
		}
		if root != s.Root {
			return nil, fmt.Errorf("sign partition %d: signed root %x at size %d, tree has %x: %w", p, s.Root, s.Size, root, ErrInconsistent)
		}
	}
	signer := l.opts.Signer
	if ls, ok := signer.(*LogSigner); ok {
		if signer, err = ls.Named(part.origin); err != nil {
			return nil, fmt.Errorf("sign partition %d: %w", p, err)
		}
	}
	msg, err := note.Sign(&note.Note{Text: c.Body()}, signer)
	if err != nil {
		return nil, fmt.Errorf("sign partition %d: %w", p, err)
	}
	renamed, err := writeFileAtomic(filepath.Join(part.dir, checkpointFile), msg, 0o644)
	if renamed {
		part.signed, part.note = c, msg
	}
	if err != nil {
		return nil, fmt.Errorf("sign partition %d: %w", p, err)
	}
	return slices.Clone(msg), nil
}

// Recover makes partition p hold exactly its first committed segments:
// segment files numbered above committed (sealed, but the caller's index
// commit did not happen) are deleted, highest first, and the tree and hash
// cache are cut back to the end of segment committed.
//
// Fewer than committed segments on disk is corruption (ErrCorrupt).
// Dropping a segment covered by the last signed checkpoint would fork the
// log, so it fails with ErrSigned and changes nothing.
func (l *Ledger) Recover(p uint32, committed uint64) error {
	part, err := l.partition(p, false)
	if err != nil {
		return fmt.Errorf("recover partition %d: %w", p, err)
	}
	if part == nil {
		if committed > 0 {
			return corrupt(p, committed, -1, nil, "index committed %d segments, the partition has none on disk", committed)
		}
		return nil // nothing sealed, nothing committed
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	switch {
	case committed > part.segs:
		return corrupt(p, committed, -1, nil, "index committed %d segments, %d are on disk", committed, part.segs)
	case committed == part.segs:
		return nil
	case part.note != nil && part.signed.Segment > committed:
		return fmt.Errorf("recover partition %d to %d segments: checkpoint covers segment %d: %w", p, committed, part.signed.Segment, ErrSigned)
	}
	var size uint64
	var last [32]byte
	if committed > 0 {
		b, err := readFileMax(segmentPath(part.dir, committed), MaxSegmentBytes)
		if err != nil {
			return corrupt(p, committed, -1, err, "read segment")
		}
		seg, bad, err := splitSegment(b)
		if err != nil {
			return corrupt(p, committed, badIndex(seg.hdr, bad), err, "segment does not parse")
		}
		size, last = seg.hdr.TreeSize, SegmentHash(b)
	}
	tree, err := merkle.RangeAt(part.read, size)
	if err != nil {
		return fmt.Errorf("recover partition %d: %w", p, err)
	}
	for n := part.segs; n > committed; n-- {
		if err := os.Remove(segmentPath(part.dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("recover partition %d: %w", p, err)
		}
		part.segs = n - 1 // a partial failure leaves segs honest; Open re-derives the rest
	}
	if err := syncDir(part.dir); err != nil {
		return fmt.Errorf("recover partition %d: %w", p, err)
	}
	l.log.Warn("dropped uncommitted segments", "partition", p, "kept", committed, "size", size)
	part.tree, part.lastHash = tree, last
	if err := part.hashes.Truncate(int64(merkle.StoredCount(size)) * 32); err != nil {
		return fmt.Errorf("recover partition %d: %w", p, err)
	}
	if err := part.hashes.Sync(); err != nil {
		return fmt.Errorf("recover partition %d: %w", p, err)
	}
	return nil
}

// Head returns partition p's state; the zero Head (with the empty root)
// for a partition with no segments.
func (l *Ledger) Head(p uint32) Head {
	part, _ := l.partition(p, false)
	if part == nil {
		return Head{Root: merkle.EmptyRoot()}
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	h := Head{Segments: part.segs, Size: part.tree.Size(), Root: part.tree.Root(), LastHash: part.lastHash}
	if part.note != nil {
		h.Signed = part.signed.Size
	}
	return h
}

// Checkpoint returns partition p's last signed checkpoint note, or nil.
func (l *Ledger) Checkpoint(p uint32) []byte {
	part, _ := l.partition(p, false)
	if part == nil {
		return nil
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	return slices.Clone(part.note)
}

// Partitions lists the partitions that have a directory, sorted.
func (l *Ledger) Partitions() []uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]uint32, 0, len(l.parts))
	for p := range l.parts {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// SegmentBytes returns the file of segment n (1-based) of partition p.
func (l *Ledger) SegmentBytes(p uint32, n uint64) ([]byte, error) {
	part, err := l.locked(p)
	if err != nil {
		return nil, fmt.Errorf("read partition %d segment %d: %w", p, n, err)
	}
	defer part.mu.Unlock()
	if n == 0 || n > part.segs {
		return nil, fmt.Errorf("read partition %d segment %d: have segments 1..%d: %w", p, n, part.segs, fs.ErrNotExist)
	}
	return readFileMax(segmentPath(part.dir, n), MaxSegmentBytes)
}

// locked returns partition p with its mutex held, or an error if it has no segments.
func (l *Ledger) locked(p uint32) (*partition, error) {
	part, err := l.partition(p, false)
	if err != nil {
		return nil, err
	}
	if part == nil {
		return nil, fmt.Errorf("no segments: %w", fs.ErrNotExist)
	}
	part.mu.Lock()
	return part, nil
}

// Entry returns the entry at leaf index i of partition p and the number of
// the segment holding it. It finds the segment by binary search over the
// segment headers: O(log segments) header reads and one segment read.
func (l *Ledger) Entry(p uint32, i uint64) (Entry, uint64, error) {
	dir, segs, size, err := l.snapshot(p)
	if err != nil {
		return Entry{}, 0, fmt.Errorf("entry %d of partition %d: %w", i, p, err)
	}
	return findEntry(dir, p, segs, size, i)
}

// Entries returns the entries with leaf indexes in [start, end) of partition
// p, at most max of them (max ≤ 0: no limit), reading segment files in order.
// Segments are immutable once sealed, so the files are read without holding
// the partition: a Seal in parallel is not delayed.
func (l *Ledger) Entries(p uint32, start, end uint64, max int) ([]IndexedEntry, error) {
	dir, segs, size, err := l.snapshot(p)
	if err != nil {
		return nil, fmt.Errorf("entries of partition %d: %w", p, err)
	}
	return readEntries(dir, p, segs, size, start, end, max)
}

// snapshot returns partition p's directory, segment count and tree size.
func (l *Ledger) snapshot(p uint32) (string, uint64, uint64, error) {
	part, err := l.locked(p)
	if err != nil {
		return "", 0, 0, err
	}
	defer part.mu.Unlock()
	return part.dir, part.segs, part.tree.Size(), nil
}

// readHeader decodes the header at the start of a segment file.
func readHeader(path string) (SegmentHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return SegmentHeader{}, err
	}
	defer f.Close()
	buf := make([]byte, 8<<10)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return SegmentHeader{}, err
	}
	d := dec{b: buf[:n]}
	var h SegmentHeader
	h.decode(&d)
	if d.err != nil && n == len(buf) {
		// Only a header with very many currencies is this long.
		b, err := readFileMax(path, MaxSegmentBytes)
		if err != nil {
			return SegmentHeader{}, err
		}
		d, h = dec{b: b}, SegmentHeader{}
		h.decode(&d)
	}
	return h, d.err
}

// InclusionProof returns the RFC 6962 inclusion proof of leaf index in
// partition p's tree at size (≤ the current size), bottom-up. It verifies
// with proof.VerifyInclusion of github.com/transparency-dev/merkle.
func (l *Ledger) InclusionProof(p uint32, index, size uint64) ([][32]byte, error) {
	part, err := l.locked(p)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof: partition %d: %w", p, err)
	}
	defer part.mu.Unlock()
	if size > part.tree.Size() {
		return nil, fmt.Errorf("inclusion proof: partition %d: size %d beyond tree size %d: %w", p, size, part.tree.Size(), merkle.ErrRange)
	}
	return merkle.InclusionProof(part.read, index, size)
}

// ConsistencyProof returns the RFC 6962 consistency proof between sizes
// size1 ≤ size2 (≤ the current size) of partition p's tree.
func (l *Ledger) ConsistencyProof(p uint32, size1, size2 uint64) ([][32]byte, error) {
	part, err := l.locked(p)
	if err != nil {
		return nil, fmt.Errorf("consistency proof: partition %d: %w", p, err)
	}
	defer part.mu.Unlock()
	if size2 > part.tree.Size() {
		return nil, fmt.Errorf("consistency proof: partition %d: size %d beyond tree size %d: %w", p, size2, part.tree.Size(), merkle.ErrRange)
	}
	return merkle.ConsistencyProof(part.read, size1, size2)
}

// RootAt returns the root of partition p's tree at size (≤ the current size).
func (l *Ledger) RootAt(p uint32, size uint64) ([32]byte, error) {
	part, err := l.locked(p)
	if err != nil {
		return [32]byte{}, fmt.Errorf("root: partition %d: %w", p, err)
	}
	defer part.mu.Unlock()
	if size > part.tree.Size() {
		return [32]byte{}, fmt.Errorf("root: partition %d: size %d beyond tree size %d: %w", p, size, part.tree.Size(), merkle.ErrRange)
	}
	return merkle.RootAt(part.read, size)
}

// Close closes the hash cache files. Every later call fails with ErrClosed;
// Close itself is idempotent.
func (l *Ledger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	parts := l.parts
	l.mu.Unlock()
	var first error
	for _, part := range parts {
		part.mu.Lock()
		if err := part.hashes.Close(); err != nil && first == nil {
			first = fmt.Errorf("close ledger partition %d: %w", part.id, err)
		}
		part.mu.Unlock()
	}
	return first
}
