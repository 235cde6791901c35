package store

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"
)

// VerifierKeyFile is the name, inside a ledger directory, of the file that
// holds the verifier key of the ledger's checkpoints. Verify reads it when no
// key is given; an auditor who pins the key out of band is better protected,
// since whoever can rewrite the ledger can rewrite this file too.
const VerifierKeyFile = "verifier.key"

// maxKeyFile bounds key files read from disk.
const maxKeyFile = 4 << 10

// GenerateKey returns a new Ed25519 signed-note key pair named name
// (golang.org/x/mod/sumdb/note format), drawn from crypto/rand.
func GenerateKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	return skey, vkey, nil
}

// LoadOrCreateKey reads the signer key in path (one line, note.NewSigner
// format), creating it with GenerateKey if it does not exist, and returns the
// signer (a *LogSigner: a Ledger signs each partition under its origin
// name with it) and its verifier key. The file is created 0600 and refused if group
// or others can read it. If name is not empty, the key must be named name.
func LoadOrCreateKey(path, name string) (note.Signer, string, error) {
	b, err := readFileMax(path, maxKeyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if name == "" {
			return nil, "", fmt.Errorf("create key %s: no key name", path)
		}
		skey, _, err := GenerateKey(name)
		if err != nil {
			return nil, "", err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", fmt.Errorf("create key %s: %w", path, err)
		}
		if _, err := writeFileAtomic(path, []byte(skey+"\n"), 0o600); err != nil {
			return nil, "", fmt.Errorf("create key: %w", err)
		}
		b = []byte(skey + "\n")
	case err != nil:
		return nil, "", fmt.Errorf("read key: %w", err)
	default:
		st, err := os.Stat(path)
		if err != nil {
			return nil, "", fmt.Errorf("read key: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, "", fmt.Errorf("key %s has mode %v: make it 0600 (chmod 600 %s)", path, st.Mode().Perm(), path)
		}
	}
	skey := strings.TrimSpace(string(b))
	signer, err := NewLogSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("key %s: %w", path, err)
	}
	if name != "" && signer.Name() != name {
		return nil, "", fmt.Errorf("key %s is named %q, want %q", path, signer.Name(), name)
	}
	vkey, err := VerifierKey(skey)
	if err != nil {
		return nil, "", fmt.Errorf("key %s: %w", path, err)
	}
	return signer, vkey, nil
}

// VerifierKey derives the verifier key of an Ed25519 signer key.
func VerifierKey(skey string) (string, error) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return "", err
	}
	parts := strings.SplitN(skey, "+", 5) // the base64 key may contain "+"
	if len(parts) != 5 {
		return "", errors.New("malformed signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("signer key is not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return "", err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil || v.KeyHash() != signer.KeyHash() {
		return "", errors.New("derived verifier key does not match the signer key")
	}
	return vkey, nil
}

// WriteVerifierKey records vkey in dir/verifier.key (creating dir), for
// auditors and for Verify. If the file exists with another key it fails
// with ErrKeyMismatch: a ledger is signed by one key.
func WriteVerifierKey(dir, vkey string) error {
	if _, err := note.NewVerifier(vkey); err != nil {
		return fmt.Errorf("write verifier key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write verifier key: %w", err)
	}
	old, err := ReadVerifierKey(dir)
	switch {
	case err == nil && old == vkey:
		return nil
	case err == nil:
		return fmt.Errorf("write verifier key: %s holds %s, signing key is %s: %w", filepath.Join(dir, VerifierKeyFile), old, vkey, ErrKeyMismatch)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("write verifier key: %w", err)
	}
	return WriteFileAtomic(filepath.Join(dir, VerifierKeyFile), []byte(vkey+"\n"))
}

// ReadVerifierKey returns the key in dir/verifier.key.
func ReadVerifierKey(dir string) (string, error) {
	b, err := readFileMax(filepath.Join(dir, VerifierKeyFile), maxKeyFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// LogSigner is the ledger's signing key: one Ed25519 key named like the
// origin stem (for example tally.example/ledger). It is a note.Signer under
// that name, and Named gives the same private key under another name:
// Ledger.Sign signs partition p's checkpoint under its origin
// "<stem>/p<p>", as C2SP tlog-checkpoint asks (the signature line's key
// name matches the checkpoint origin). Every settle node of a region holds
// the same key file, so a partition that changes hands keeps its verifier.
type LogSigner struct {
	note.Signer
	seed []byte // the Ed25519 seed
	pub  ed25519.PublicKey
	mu   sync.Mutex
	byN  map[string]note.Signer
}

// NewLogSigner parses an Ed25519 note signer key (note.GenerateKey format).
func NewLogSigner(skey string) (*LogSigner, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	parts := strings.SplitN(skey, "+", 5) // the base64 key may contain "+"
	if len(parts) != 5 {
		return nil, errors.New("malformed signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("signer key is not an Ed25519 key")
	}
	seed := raw[1:]
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	return &LogSigner{Signer: s, seed: seed, pub: pub, byN: map[string]note.Signer{s.Name(): s}}, nil
}

// Named returns a signer with the same private key under name (a valid
// note key name). The key hash depends on the name, so the result verifies
// only with a verifier key of that name (VerifierKeyNamed).
func (s *LogSigner) Named(name string) (note.Signer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns, ok := s.byN[name]; ok {
		return ns, nil
	}
	vkey, err := note.NewEd25519VerifierKey(name, s.pub)
	if err != nil {
		return nil, err
	}
	parts := strings.SplitN(vkey, "+", 3) // name+hash+base64; names hold no "+"
	if len(parts) != 3 {
		return nil, errors.New("malformed verifier key")
	}
	ns, err := note.NewSigner("PRIVATE+KEY+" + name + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, s.seed...)))
	if err != nil {
		return nil, fmt.Errorf("signer named %q: %w", name, err)
	}
	s.byN[name] = ns
	return ns, nil
}

// VerifierKey is the verifier key of the signer under its own name.
func (s *LogSigner) VerifierKey() string {
	vkey, _ := note.NewEd25519VerifierKey(s.Name(), s.pub) // the name came from a valid key
	return vkey
}

// VerifierKeyNamed returns the verifier key for vkey's public key under
// another name: "name+hash+base64(alg ‖ public key)" with the hash of the
// new name. Only Ed25519 keys (algorithm 1) are supported.
func VerifierKeyNamed(vkey, name string) (string, error) {
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", fmt.Errorf("verifier key: %w", err)
	}
	parts := strings.SplitN(vkey, "+", 3)
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		return "", errors.New("verifier key is not an Ed25519 key")
	}
	k, err := note.NewEd25519VerifierKey(name, ed25519.PublicKey(raw[1:]))
	if err != nil {
		return "", fmt.Errorf("verifier key named %q: %w", name, err)
	}
	return k, nil
}

// PartitionVerifierKey returns partition p's verifier key from the ledger's
// verifier key vkey (named like the origin stem): the same public key named
// "<stem>/p<p>", the origin of p's checkpoints. A stock C2SP verifier
// (golang.org/x/mod/sumdb/note, transparency-dev) checks p's checkpoints and
// receipts with it. A key that already is p's is returned as it is.
func PartitionVerifierKey(vkey string, p uint32) (string, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return "", fmt.Errorf("verifier key: %w", err)
	}
	if _, q, ok := splitOrigin(v.Name()); ok && q == p {
		return vkey, nil
	}
	return VerifierKeyNamed(vkey, partitionOrigin(v.Name(), p))
}

// splitOrigin splits a partition origin "<stem>/p<p>".
func splitOrigin(origin string) (stem string, p uint32, ok bool) {
	p, ok = originPartition(origin)
	if !ok {
		return "", 0, false
	}
	return origin[:strings.LastIndex(origin, "/p")], p, true
}

// OpenCheckpoint checks the signature of a checkpoint note with the
// verifier key vkey and returns the note and the key name it verified
// under. vkey is the ledger's key (named like the origin stem) or the
// checkpoint's partition key (named like its origin, PartitionVerifierKey).
//
// A checkpoint of origin "<stem>/p<p>" is accepted signed under either name
// with vkey's public key:
//
//   - "<stem>/p<p>", its origin: how tally signs since checkpoints follow
//     C2SP tlog-checkpoint (the key name matches the origin);
//   - "<stem>": how tally signed before, one name for every partition. Such
//     checkpoints are told apart by that signature line alone.
//
// Any other name, or another public key, fails as note.Open does
// (*note.UnverifiedNoteError: "signed by a different key"). A checkpoint
// whose origin is not a partition origin must be signed under vkey's name.
func OpenCheckpoint(msg []byte, vkey string) (*note.Note, string, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, "", fmt.Errorf("verifier key: %w", err)
	}
	list := []note.Verifier{v}
	origin := ""
	if text, err := noteText(msg); err == nil {
		if h, err := ParseCheckpointHead(text); err == nil {
			origin = h.Origin
		}
	}
	// The names vkey may sign this checkpoint under: the key is the stem
	// key (name N: N/p<p> and N) or p's own key (name N = S/p<p>: N and S).
	stem := v.Name()
	if _, p, ok := splitOrigin(origin); ok {
		if s, q, ok := splitOrigin(v.Name()); ok && q == p {
			stem = s
		}
		for _, name := range []string{partitionOrigin(stem, p), stem} {
			if name == v.Name() {
				continue
			}
			k, err := VerifierKeyNamed(vkey, name)
			if err != nil {
				return nil, "", err
			}
			nv, err := note.NewVerifier(k)
			if err != nil {
				return nil, "", err
			}
			list = append(list, nv)
		}
	}
	n, err := note.Open(msg, note.VerifierList(list...))
	if err != nil {
		return n, "", err
	}
	signer := n.Sigs[0].Name
	if s, _, ok := splitOrigin(origin); ok && signer != origin && signer != s {
		return n, signer, fmt.Errorf("checkpoint of origin %q is signed under key name %q, which is neither its origin nor its stem %q: %w", origin, signer, s, ErrMalformed)
	}
	return n, signer, nil
}

// CheckpointVerifierKey is the verifier key a stock C2SP verifier checks
// msg (and receipts that carry it) with: vkey's public key under the name
// the checkpoint is signed with — its origin, or the stem for checkpoints
// signed before tally named keys after origins. It verifies msg first.
func CheckpointVerifierKey(msg []byte, vkey string) (string, error) {
	_, name, err := OpenCheckpoint(msg, vkey)
	if err != nil {
		return "", err
	}
	return VerifierKeyNamed(vkey, name)
}
