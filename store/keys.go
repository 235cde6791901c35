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
// signer and its verifier key. The file is created 0600 and refused if group
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
	signer, err := note.NewSigner(skey)
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
