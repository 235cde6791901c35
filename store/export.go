package store

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tally-mesh/tally/store/merkle"
)

// ExportFormat names the export layout (docs/ledger-format.md, "Export").
const ExportFormat = "tally-ledger-export/1"

// ManifestFile is written last into an export: its presence means the
// export is complete.
const ManifestFile = "manifest.json"

// maxManifest bounds manifest.json.
const maxManifest = 64 << 20

// Manifest describes an export. It is not signed: it lets an auditor check
// that the copy arrived whole (every file's size and SHA-256). What proves the
// ledger are the signed checkpoints, which Verify checks.
type Manifest struct {
	Format      string              `json:"format"`
	CreatedAt   time.Time           `json:"created_at"`
	Origin      string              `json:"origin"` // checkpoint origin stem
	VerifierKey string              `json:"verifier_key"`
	Partitions  []ManifestPartition `json:"partitions"`
	Files       []ManifestFileEntry `json:"files"`
}

// ManifestPartition is one partition as exported.
type ManifestPartition struct {
	Partition      uint32 `json:"partition"`
	Segments       uint64 `json:"segments"`
	Size           uint64 `json:"size"`
	Root           string `json:"root"` // base64, as in checkpoints
	SignedSegments uint64 `json:"signed_segments"`
	SignedSize     uint64 `json:"signed_size"`
}

// ManifestFileEntry is one exported file.
type ManifestFileEntry struct {
	Path   string `json:"path"` // slash-separated, relative to the export
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// ExportOptions choose what Export copies.
type ExportOptions struct {
	// Segments, per partition, is how many segments to export (the settle
	// index's committed count, so that exported balances match). A partition
	// not in the map (or a nil map) is exported up to its checkpoint.
	Segments map[uint32]uint64
	// Files are extra files to write at the top of the export (for example
	// balances.json), by name.
	Files map[string][]byte
	Now   time.Time
}

// Export copies the ledger in ledgerDir to outDir (which must not exist or
// be empty) in the documented layout: verifier.key, rules/, for every
// partition its checkpoint, its segment files 1..n and the part of its hash
// cache that covers them, the extra files, and manifest.json last. It only
// reads ledgerDir, so it may run while a node appends: the checkpoint is
// read before the segments, and only segments up to the requested count are
// copied. Every file is written durably.
func Export(ledgerDir, outDir string, o ExportOptions) (Manifest, error) {
	m := Manifest{Format: ExportFormat, CreatedAt: o.Now.UTC()}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now().UTC()
	}
	if des, err := os.ReadDir(outDir); err == nil && len(des) > 0 {
		return m, fmt.Errorf("export: %s exists and is not empty", outDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return m, fmt.Errorf("export: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return m, fmt.Errorf("export: %w", err)
	}
	write := func(rel string, data []byte) error {
		path := filepath.Join(outDir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := WriteFileAtomic(path, data); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		m.Files = append(m.Files, ManifestFileEntry{Path: rel, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
		return nil
	}
	writeFrom := func(rel string, src io.Reader) error {
		path := filepath.Join(outDir, filepath.FromSlash(rel))
		size, sum, err := copyFileAtomic(path, src)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, ManifestFileEntry{Path: rel, Size: size, SHA256: hex.EncodeToString(sum[:])})
		return nil
	}
	vkey, err := ReadVerifierKey(ledgerDir)
	if err != nil {
		return m, fmt.Errorf("export: verifier key: %w", err)
	}
	m.VerifierKey = vkey
	if err := write(VerifierKeyFile, []byte(vkey+"\n")); err != nil {
		return m, fmt.Errorf("export: %w", err)
	}
	rules, _ := filepath.Glob(filepath.Join(ledgerDir, "rules", "*.json"))
	slices.Sort(rules)
	for _, r := range rules {
		b, err := readFileMax(r, 16<<20)
		if err != nil {
			return m, fmt.Errorf("export: %w", err)
		}
		if err := write("rules/"+filepath.Base(r), b); err != nil {
			return m, fmt.Errorf("export: %w", err)
		}
	}
	ps, err := listPartitions(ledgerDir)
	if err != nil {
		return m, fmt.Errorf("export: %w", err)
	}
	for _, p := range ps {
		mp, err := exportPartition(ledgerDir, p, o.Segments, write, writeFrom)
		if err != nil {
			return m, fmt.Errorf("export partition %d: %w", p, err)
		}
		if mp.origin != "" {
			if m.Origin != "" && m.Origin != mp.origin {
				return m, fmt.Errorf("export: partition %d has origin stem %q, others %q", p, mp.origin, m.Origin)
			}
			m.Origin = mp.origin
		}
		m.Partitions = append(m.Partitions, mp.ManifestPartition)
	}
	names := make([]string, 0, len(o.Files))
	for name := range o.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if strings.ContainsAny(name, `/\`) || name == ManifestFile || name == VerifierKeyFile {
			return m, fmt.Errorf("export: extra file name %q", name)
		}
		if err := write(name, o.Files[name]); err != nil {
			return m, fmt.Errorf("export: %w", err)
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	if err := WriteFileAtomic(filepath.Join(outDir, ManifestFile), append(b, '\n')); err != nil {
		return m, fmt.Errorf("export: %w", err)
	}
	return m, nil
}

type exportedPartition struct {
	ManifestPartition
	origin string
}

func exportPartition(ledgerDir string, p uint32, want map[uint32]uint64, write func(string, []byte) error, writeFrom func(string, io.Reader) error) (exportedPartition, error) {
	ep := exportedPartition{ManifestPartition: ManifestPartition{Partition: p}}
	dir := partitionDir(ledgerDir, p)
	rel := filepath.Base(dir) + "/"
	// The checkpoint first: segments it covers are on disk before it is.
	ckb, err := readFileMax(filepath.Join(dir, checkpointFile), maxCheckpoint)
	var ck Checkpoint
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return ep, err
	default:
		text, err := noteText(ckb)
		if err != nil {
			return ep, err
		}
		if ck, err = ParseCheckpoint(text); err != nil {
			return ep, err
		}
		stem, ok := strings.CutSuffix(ck.Origin, fmt.Sprintf("/p%d", p))
		if !ok {
			return ep, fmt.Errorf("checkpoint origin %q does not end in /p%d", ck.Origin, p)
		}
		ep.origin = stem
	}
	n, _, err := listSegments(dir, p)
	if err != nil {
		return ep, err
	}
	k := ck.Segment
	if w, ok := want[p]; ok {
		if w < ck.Segment {
			return ep, fmt.Errorf("asked for %d segments, the checkpoint covers %d", w, ck.Segment)
		}
		k = w
	}
	if k > n {
		return ep, fmt.Errorf("asked for %d segments, %d are on disk", k, n)
	}
	if ckb != nil {
		if err := write(rel+checkpointFile, ckb); err != nil {
			return ep, err
		}
	}
	var size uint64
	var root = merkle.EmptyRoot()
	for s := uint64(1); s <= k; s++ {
		b, err := readFileMax(segmentPath(dir, s), MaxSegmentBytes)
		if err != nil {
			return ep, err
		}
		h, err := readHeader(segmentPath(dir, s))
		if err != nil {
			return ep, corrupt(p, s, -1, err, "read segment header")
		}
		size, root = h.TreeSize, h.Root
		if err := write(rel+filepath.Base(segmentPath(dir, s)), b); err != nil {
			return ep, err
		}
	}
	// The hash cache helps the verifier name a changed entry and serves
	// proofs; it is copied only if it agrees with the last exported root.
	if f, err := os.Open(filepath.Join(dir, hashesFile)); err == nil {
		defer f.Close()
		read := func(i uint64) (merkle.Hash, error) {
			var h merkle.Hash
			_, err := f.ReadAt(h[:], int64(i)*32)
			return h, err
		}
		if r, err := merkle.RootAt(read, size); err == nil && r == root {
			if err := writeFrom(rel+hashesFile, io.NewSectionReader(f, 0, int64(merkle.StoredCount(size))*32)); err != nil {
				return ep, err
			}
		}
	}
	ep.Segments, ep.Size, ep.Root = k, size, base64.StdEncoding.EncodeToString(root[:])
	ep.SignedSegments, ep.SignedSize = ck.Segment, ck.Size
	return ep, nil
}

// ReadManifest reads dir/manifest.json; fs.ErrNotExist if dir is not an export.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := readFileMax(filepath.Join(dir, ManifestFile), maxManifest)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if m.Format != ExportFormat {
		return m, fmt.Errorf("%s: format %q, this tally reads %q", ManifestFile, m.Format, ExportFormat)
	}
	return m, nil
}

// CheckManifest checks that every file the manifest of export dir lists is
// there with its size and SHA-256, and that no segment or checkpoint file is
// there that it does not list. It returns the manifest.
func CheckManifest(dir string) (Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return m, err
	}
	listed := map[string]bool{}
	for _, f := range m.Files {
		if f.Path == "" || strings.Contains(f.Path, "..") || filepath.IsAbs(f.Path) {
			return m, fmt.Errorf("%s lists path %q: %w", ManifestFile, f.Path, ErrCorrupt)
		}
		listed[f.Path] = true
		size, sum, err := fileSHA256(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return m, fmt.Errorf("export file %s: %v: %w", f.Path, err, ErrCorrupt)
		}
		if size != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			return m, fmt.Errorf("export file %s is %d bytes with SHA-256 %x, the manifest says %d bytes %s: %w", f.Path, size, sum, f.Size, f.SHA256, ErrCorrupt)
		}
	}
	ps, err := listPartitions(dir)
	if err != nil {
		return m, err
	}
	for _, p := range ps {
		des, err := os.ReadDir(partitionDir(dir, p))
		if err != nil {
			return m, err
		}
		for _, de := range des {
			rel := filepath.Base(partitionDir(dir, p)) + "/" + de.Name()
			if (strings.HasSuffix(de.Name(), segmentExt) || de.Name() == checkpointFile) && !listed[rel] {
				return m, fmt.Errorf("export file %s is not in the manifest: %w", rel, ErrCorrupt)
			}
		}
	}
	return m, nil
}

func fileSHA256(path string) (int64, [32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return 0, sum, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	h.Sum(sum[:0])
	return n, sum, err
}

// copyFileAtomic writes src to path durably (temporary file, fsync, rename,
// fsync of the directory) and returns its size and SHA-256.
func copyFileAtomic(path string, src io.Reader) (int64, [32]byte, error) {
	var sum [32]byte
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, sum, err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, sum, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), src)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return 0, sum, fmt.Errorf("write %s: %w", path, err)
	}
	h.Sum(sum[:0])
	return n, sum, syncDir(dir)
}
