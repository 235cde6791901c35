package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shopspring/decimal"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/store/merkle"
)

// Report is what Verify checked.
type Report struct {
	Dir        string
	Key        string // the verifier key the checkpoints were checked with
	KeySource  string // "pinned" or the path of the verifier.key file it came from
	Origin     string // the checkpoints' origin stem
	Partitions []PartitionReport
	Segments   uint64
	Entries    uint64
	Totals     []CurrencyTotal // Σ Net per currency over every entry
	Parties    []PartyTotal    // Σ shares per party and currency over every entry
	Export     *Manifest       // the export's manifest, checked; nil for a ledger directory
}

// PartitionReport is what Verify checked in one partition.
type PartitionReport struct {
	Partition  uint32
	Segments   uint64
	Entries    uint64
	Root       [32]byte // recomputed root over every entry
	Checkpoint string   // the signed note, as stored
	// SignedSize and SignedSegments are what the checkpoint covers. When the
	// node stopped between sealing and signing, the last segments are
	// checked like the others but not covered by a signature: Segments −
	// SignedSegments of them.
	SignedSize     uint64
	SignedSegments uint64
	Totals         []CurrencyTotal
}

// PartyTotal is the sum of one party's shares in one currency.
type PartyTotal struct {
	Party    string
	Currency string
	Amount   decimal.Decimal
}

// Unsigned is the number of segments past the signed checkpoint.
func (r PartitionReport) Unsigned() uint64 { return r.Segments - r.SignedSegments }

// Verify audits the ledger in ledgerDir offline. For every partition
// directory p<NNN> it checks, in file order, stopping at the first problem:
//
//   - segment files are named canonically and numbered 1..n with no gap;
//   - every file parses strictly (magic, version, limits, framing, no
//     trailing bytes), and its header names this partition and its number;
//   - FirstIndex continues the previous segment, PrevHash is the SHA-256 of
//     the previous file (zero for segment 1), TreeSize = FirstIndex+Count;
//   - every entry decodes canonically, names this partition and its own leaf
//     index, has shares summing exactly to Net, |Net| = amount, the sign of
//     its type, and amounts within its currency's exponent;
//   - the RFC 6962 tree recomputed from the entries has the header's root at
//     every segment boundary, and the header's per-currency totals match;
//   - the checkpoint's signature verifies with verifierKey (OpenCheckpoint:
//     signed under its origin's name, or under the stem for checkpoints
//     written before tally named keys after origins), its origin is
//     <stem>/p<partition> with one stem for all partitions, and its size,
//     root, segment number and segment hash are those of a segment boundary.
//
// A checkpoint may lag the last segment (a node stopped between sealing and
// signing); the report counts the unsigned segments. A partition with
// segments and no checkpoint is corrupt.
//
// With verifierKey "", the key is read from ledgerDir/verifier.key. That
// file sits next to the data it vouches for; an auditor who pins the key
// obtained out of band is protected against a rewritten ledger too.
//
// Problems in the ledger are *CorruptError (errors.Is ErrCorrupt); other
// errors (unreadable directory, bad key) are returned as they are. progress,
// if not nil, receives a line per partition and every 1024 segments.
func Verify(ledgerDir string, verifierKey string, progress func(string)) (Report, error) {
	return VerifyWith(ledgerDir, VerifyOptions{Key: verifierKey, Progress: progress})
}

// VerifyOptions extend Verify.
type VerifyOptions struct {
	Key      string       // pinned verifier key; "" reads ledgerDir/verifier.key
	Progress func(string) // progress lines, may be nil

	// Entry, if set, is called with every entry that passed its own checks,
	// in partition and leaf order, with the number of its segment. A non-nil
	// error stops Verify and is reported as a *CorruptError at that entry
	// (an error that already is one is returned as it is). audit.Verify uses
	// it to recompute splits and check exactly-once.
	Entry func(segment uint64, e *Entry) error

	// Trusted are checkpoints (signed notes) the auditor kept from earlier
	// audits. Each must verify with the key, and its partition's ledger must
	// still contain its tree: a segment ending at its size with its root.
	// This detects what a single audit cannot: a tail truncated together
	// with the checkpoint replaced by an older, genuinely signed one.
	Trusted [][]byte
}

// VerifyWith is Verify with options.
func VerifyWith(ledgerDir string, o VerifyOptions) (Report, error) {
	verifierKey, progress := o.Key, o.Progress
	rep := Report{Dir: ledgerDir, Key: verifierKey, KeySource: "pinned"}
	if progress == nil {
		progress = func(string) {}
	}
	if rep.Key == "" {
		k, err := ReadVerifierKey(ledgerDir)
		if err != nil {
			return rep, fmt.Errorf("verify: no verifier key given and none in the ledger: %w", err)
		}
		rep.Key, rep.KeySource = k, filepath.Join(ledgerDir, VerifierKeyFile)
	}
	v, err := note.NewVerifier(rep.Key)
	if err != nil {
		return rep, fmt.Errorf("verify: verifier key: %w", err)
	}
	// An export carries a manifest of every file; check the copy is whole
	// before anything else (it proves nothing the signatures do not).
	if m, err := CheckManifest(ledgerDir); err == nil {
		rep.Export = &m
		progress(fmt.Sprintf("export manifest: %d files, sizes and SHA-256 match", len(m.Files)))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("verify export: %w", err)
	}
	ps, err := listPartitions(ledgerDir)
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	if len(ps) == 0 {
		return rep, fmt.Errorf("verify: no partition directories (p000, p001, ...) in %s", ledgerDir)
	}
	trusted := map[uint32][]Checkpoint{}
	for i, msg := range o.Trusted {
		nt, _, err := OpenCheckpoint(msg, rep.Key)
		if err != nil {
			return rep, fmt.Errorf("verify: trusted checkpoint %d does not verify with key %s: %w", i+1, v.Name(), err)
		}
		ck, err := ParseCheckpoint(nt.Text)
		if err != nil {
			return rep, fmt.Errorf("verify: trusted checkpoint %d: %w", i+1, err)
		}
		p, ok := originPartition(ck.Origin)
		if !ok {
			return rep, fmt.Errorf("verify: trusted checkpoint %d: origin %q does not end in /p<partition>", i+1, ck.Origin)
		}
		trusted[p] = append(trusted[p], ck)
	}
	for p, cks := range trusted {
		if !slices.Contains(ps, p) {
			ck := cks[0]
			return rep, corrupt(p, ck.Segment, -1, nil, "partition directory is missing; a trusted checkpoint covers %d entries in %d segments", ck.Size, ck.Segment)
		}
	}
	all := totals{}
	parties := map[[2]string]decimal.Decimal{}
	for _, p := range ps {
		pr, stem, err := verifyPartition(ledgerDir, p, rep.Key, all, parties, progress, o.Entry, trusted[p])
		rep.Partitions = append(rep.Partitions, pr)
		rep.Segments += pr.Segments
		rep.Entries += pr.Entries
		if err != nil {
			return rep, err
		}
		switch {
		case stem == "":
		case rep.Origin == "":
			rep.Origin = stem
		case stem != rep.Origin:
			return rep, corrupt(p, pr.SignedSegments, -1, nil, "checkpoint origin stem %q, other partitions use %q", stem, rep.Origin)
		}
	}
	if m := rep.Export; m != nil {
		if len(m.Partitions) != len(rep.Partitions) {
			return rep, fmt.Errorf("verify export: manifest lists %d partitions, the export has %d: %w", len(m.Partitions), len(rep.Partitions), ErrCorrupt)
		}
		for i, mp := range m.Partitions {
			if pr := rep.Partitions[i]; mp.Partition != pr.Partition || mp.Segments != pr.Segments || mp.Size != pr.Entries {
				return rep, corrupt(pr.Partition, pr.Segments, -1, nil, "manifest says partition %d has %d segments and %d entries, the export has %d and %d", mp.Partition, mp.Segments, mp.Size, pr.Segments, pr.Entries)
			}
		}
	}
	rep.Totals = all.list()
	for k, a := range parties {
		rep.Parties = append(rep.Parties, PartyTotal{Party: k[0], Currency: k[1], Amount: a})
	}
	slices.SortFunc(rep.Parties, func(a, b PartyTotal) int {
		if c := strings.Compare(a.Party, b.Party); c != 0 {
			return c
		}
		return strings.Compare(a.Currency, b.Currency)
	})
	progress(fmt.Sprintf("verified %d partitions, %d segments, %d entries", len(rep.Partitions), rep.Segments, rep.Entries))
	return rep, nil
}

// boundary is what a checkpoint must match at the end of a segment.
type boundary struct {
	size uint64
	root [32]byte
	hash [32]byte
}

func verifyPartition(root string, p uint32, vkey string, all totals, parties map[[2]string]decimal.Decimal, progress func(string), hook func(uint64, *Entry) error, trusted []Checkpoint) (PartitionReport, string, error) {
	pr := PartitionReport{Partition: p}
	dir := partitionDir(root, p)
	n, _, err := listSegments(dir, p)
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return pr, "", err
		}
		return pr, "", fmt.Errorf("verify partition %d: %w", p, err)
	}
	progress(fmt.Sprintf("partition %d: %d segments", p, n))
	tot := totals{}
	c := chain{p: p, tree: &merkle.Range{}, decode: true, onEntry: func(seg uint64, e *Entry) error {
		if hook != nil {
			if err := hook(seg, e); err != nil {
				return err
			}
		}
		all.add(e.Tx.Currency.Code, e.Net)
		tot.add(e.Tx.Currency.Code, e.Net)
		for _, s := range e.Shares {
			k := [2]string{s.Party, e.Tx.Currency.Code}
			parties[k] = parties[k].Add(s.Amount)
		}
		return nil
	}}
	// The node's hash cache is never trusted; it only helps name the entry
	// that changed when a root does not match.
	if f, err := os.Open(filepath.Join(dir, hashesFile)); err == nil {
		defer f.Close()
		c.cache = func(i uint64) (merkle.Hash, error) {
			var h merkle.Hash
			_, err := f.ReadAt(h[:], int64(i)*32)
			return h, err
		}
	}
	bounds := []boundary{{root: merkle.EmptyRoot()}}
	for k := uint64(1); k <= n; k++ {
		b, err := readFileMax(segmentPath(dir, k), MaxSegmentBytes)
		if err != nil {
			return pr, "", corrupt(p, k, -1, err, "read segment file")
		}
		h, err := c.add(b)
		if err != nil {
			return pr, "", err
		}
		pr.Segments, pr.Entries, pr.Root = k, h.TreeSize, h.Root
		bounds = append(bounds, boundary{size: h.TreeSize, root: h.Root, hash: c.prev})
		if k%1024 == 0 {
			progress(fmt.Sprintf("partition %d: segment %d/%d, %d entries", p, k, n, h.TreeSize))
		}
	}
	pr.Root = c.tree.Root()
	pr.Totals = tot.list()

	for _, ck := range trusted {
		if ck.Segment > n || bounds[ck.Segment].size != ck.Size {
			return pr, "", corrupt(p, ck.Segment, -1, nil, "a trusted checkpoint covers %d entries in %d segments, the ledger has %d entries in %d segments: the tail was truncated or rewritten", ck.Size, ck.Segment, pr.Entries, n)
		}
		if b := bounds[ck.Segment]; b.root != ck.Root || b.hash != ck.SegmentHash {
			return pr, "", c.rewritten(dir, ck.Segment, fmt.Sprintf("root %x at size %d, a trusted checkpoint says %x: the ledger was rewritten", b.root, ck.Size, ck.Root))
		}
	}
	msg, err := readFileMax(filepath.Join(dir, checkpointFile), maxCheckpoint)
	if errors.Is(err, fs.ErrNotExist) {
		if n == 0 {
			return pr, "", nil
		}
		return pr, "", corrupt(p, n, -1, nil, "no checkpoint: %d segments are not covered by any signature", n)
	}
	if err != nil {
		return pr, "", corrupt(p, n, -1, err, "read checkpoint")
	}
	pr.Checkpoint = string(msg)
	// Name the segment the checkpoint claims, if its text says, before
	// trusting anything in it.
	claimed := n
	if text, err := noteText(msg); err == nil {
		if ck, err := ParseCheckpoint(text); err == nil {
			claimed = ck.Segment
		}
	}
	nt, _, err := OpenCheckpoint(msg, vkey)
	if err != nil {
		name, _, _ := strings.Cut(vkey, "+")
		return pr, "", corrupt(p, claimed, -1, err, "checkpoint signature does not verify with key %s (or its partition key %s)", name, partitionOrigin(name, p))
	}
	ck, err := ParseCheckpoint(nt.Text)
	if err != nil {
		return pr, "", corrupt(p, claimed, -1, err, "checkpoint body")
	}
	stem, ok := strings.CutSuffix(ck.Origin, fmt.Sprintf("/p%d", p))
	if !ok || stem == "" {
		return pr, "", corrupt(p, ck.Segment, -1, nil, "checkpoint origin %q does not end in /p%d", ck.Origin, p)
	}
	if ck.Segment > n {
		return pr, "", corrupt(p, ck.Segment, -1, nil, "checkpoint covers segment %d (size %d), the partition has %d segments: segment files are missing", ck.Segment, ck.Size, n)
	}
	b := bounds[ck.Segment]
	switch {
	case ck.Size != b.size:
		return pr, "", c.rewritten(dir, ck.Segment, fmt.Sprintf("checkpoint size %d, segment ends at size %d", ck.Size, b.size))
	case ck.Root != b.root:
		return pr, "", c.rewritten(dir, ck.Segment, fmt.Sprintf("checkpoint root %x, recomputed root %x", ck.Root, b.root))
	case ck.SegmentHash != b.hash:
		return pr, "", c.rewritten(dir, ck.Segment, fmt.Sprintf("checkpoint segment hash %x, file hash %x", ck.SegmentHash, b.hash))
	}
	pr.SignedSize, pr.SignedSegments = ck.Size, ck.Segment
	if pr.Unsigned() > 0 {
		progress(fmt.Sprintf("partition %d: %d segments after the checkpoint are not signed", p, pr.Unsigned()))
	}
	progress(fmt.Sprintf("partition %d: ok, %d segments, %d entries, root %x", p, pr.Segments, pr.Entries, pr.Root))
	return pr, stem, nil
}

// rewritten reports segment k as changed although it is consistent in
// itself (its root matches its entries): a signature or a later segment
// says otherwise. With the node's hash cache it names the first entry whose
// leaf hash differs.
func (c *chain) rewritten(dir string, k uint64, reason string) *CorruptError {
	if c.cache != nil && k > 0 {
		if b, err := readFileMax(segmentPath(dir, k), MaxSegmentBytes); err == nil {
			if seg, _, err := splitSegment(b); err == nil {
				leaves := make([]merkle.Hash, len(seg.entries))
				for i, raw := range seg.entries {
					leaves[i] = merkle.HashLeaf(raw)
				}
				if i := c.locate(seg.hdr.FirstIndex, leaves); i >= 0 {
					return corrupt(c.p, k, i, nil, "%s; this entry's leaf hash differs from the node's hash cache", reason)
				}
			}
		}
	}
	return corrupt(c.p, k, -1, nil, "%s", reason)
}

// originPartition returns p from an origin "<stem>/p<p>".
func originPartition(origin string) (uint32, bool) {
	i := strings.LastIndex(origin, "/p")
	if i <= 0 {
		return 0, false
	}
	n, err := parseDecimal(origin[i+2:])
	if err != nil || n > 1<<32-1 {
		return 0, false
	}
	return uint32(n), true
}
