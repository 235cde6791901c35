package store

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/store/merkle"
)

// ReceiptHeader is the first line of a C2SP tlog-proof (c2sp.org/tlog-proof).
const ReceiptHeader = "c2sp.org/tlog-proof@v1"

// Limits on receipts read from outside.
const (
	MaxReceiptBytes = 64 << 10
	maxProofHashes  = 64 // a tree of at most 2^63 leaves has at most 63
	maxExtraBytes   = 16 << 10
)

// Receipt is an offline proof that an entry is in a partition's log: a C2SP
// tlog-proof. Its text is
//
//	c2sp.org/tlog-proof@v1
//	[extra <base64>]
//	index <leaf index>
//	<base64 hash>            (the inclusion path, leaf's sibling first)
//	...
//	                         (an empty line)
//	<the signed checkpoint, verbatim>
//
// Anyone holding the entry bytes and the partition's verifier key
// (PartitionVerifierKey; named like the checkpoint origin) can check it with
// note.Open and an RFC 6962 inclusion verifier; VerifyReceipt does that.
type Receipt struct {
	Extra      []byte // optional, NOT authenticated; tally writes none
	Index      uint64
	Proof      [][32]byte
	Checkpoint []byte // signed note whose size and root the proof leads to
}

// Marshal renders the receipt text.
func (r Receipt) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(ReceiptHeader + "\n")
	if len(r.Extra) > 0 {
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(r.Extra) + "\n")
	}
	fmt.Fprintf(&b, "index %d\n", r.Index)
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseReceipt parses a tlog-proof strictly: the header line, an optional
// extra line, a canonical index line, at most 64 base64 SHA-256 hashes, an
// empty line and a non-empty checkpoint. It does not check the signature or
// the proof (VerifyReceipt does).
func ParseReceipt(b []byte) (Receipt, error) {
	var r Receipt
	if len(b) > MaxReceiptBytes {
		return r, fmt.Errorf("receipt is %d bytes, limit is %d: %w", len(b), MaxReceiptBytes, ErrMalformed)
	}
	rest := string(b)
	line := func() (string, bool) {
		l, after, ok := strings.Cut(rest, "\n")
		if !ok {
			return "", false
		}
		rest = after
		return l, true
	}
	l, ok := line()
	if !ok || l != ReceiptHeader {
		return r, fmt.Errorf("receipt does not start with %q: %w", ReceiptHeader, ErrMalformed)
	}
	if l, ok = line(); !ok {
		return r, fmt.Errorf("receipt has no index line: %w", ErrMalformed)
	}
	if x, found := strings.CutPrefix(l, "extra "); found {
		e, err := base64.StdEncoding.Strict().DecodeString(x)
		if err != nil || len(e) == 0 || len(e) > maxExtraBytes {
			return r, fmt.Errorf("receipt extra line is not base64 of 1..%d bytes: %w", maxExtraBytes, ErrMalformed)
		}
		r.Extra = e
		if l, ok = line(); !ok {
			return r, fmt.Errorf("receipt has no index line: %w", ErrMalformed)
		}
	}
	idx, found := strings.CutPrefix(l, "index ")
	if !found {
		return r, fmt.Errorf("receipt line %q is not \"index N\": %w", l, ErrMalformed)
	}
	var err error
	if r.Index, err = parseDecimal(idx); err != nil {
		return r, fmt.Errorf("receipt index: %w", err)
	}
	for {
		if l, ok = line(); !ok {
			return r, fmt.Errorf("receipt ends inside the inclusion proof: %w", ErrMalformed)
		}
		if l == "" {
			break
		}
		if len(r.Proof) == maxProofHashes {
			return r, fmt.Errorf("receipt has more than %d proof hashes: %w", maxProofHashes, ErrMalformed)
		}
		h, err := parseHash(l)
		if err != nil {
			return r, fmt.Errorf("receipt proof line %d: %w", len(r.Proof)+1, err)
		}
		r.Proof = append(r.Proof, h)
	}
	if rest == "" {
		return r, fmt.Errorf("receipt has no checkpoint: %w", ErrMalformed)
	}
	r.Checkpoint = []byte(rest)
	return r, nil
}

// CheckpointHead is what every C2SP tlog-checkpoint client reads: the first
// three lines of the body.
type CheckpointHead struct {
	Origin string
	Size   uint64
	Root   [32]byte
}

// ParseCheckpointHead parses origin, size and root from a checkpoint body and
// ignores extension lines, as the tlog-checkpoint spec lets clients do. Use
// ParseCheckpoint for tally's own, stricter form.
func ParseCheckpointHead(text string) (CheckpointHead, error) {
	var c CheckpointHead
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return c, fmt.Errorf("checkpoint has fewer than 3 lines: %w", ErrMalformed)
	}
	c.Origin = lines[0]
	if c.Origin == "" {
		return c, fmt.Errorf("checkpoint has an empty origin: %w", ErrMalformed)
	}
	var err error
	if c.Size, err = parseDecimal(lines[1]); err != nil {
		return c, fmt.Errorf("checkpoint size: %w", err)
	}
	if c.Root, err = parseHash(lines[2]); err != nil {
		return c, fmt.Errorf("checkpoint root: %w", err)
	}
	return c, nil
}

// ErrReceipt marks a receipt that does not prove what it claims: a bad
// signature, or an inclusion proof that does not lead to the signed root.
var ErrReceipt = errors.New("receipt does not verify")

// ReceiptResult is what a verified receipt proves.
type ReceiptResult struct {
	Checkpoint CheckpointHead // signed by the verifier key
	Index      uint64         // the entry is leaf Index of that tree
	LeafHash   [32]byte
	Signer     string // the key name the checkpoint is signed under (its origin; the stem for old ledgers)
}

// VerifyReceipt checks that entry (the entry's bytes, exactly as stored) is
// leaf r.Index of the tree the receipt's checkpoint signs, with the verifier
// key vkey (the ledger's key or the partition's, see OpenCheckpoint):
// note.Open, then the RFC 6962 leaf hash SHA-256(0x00 ‖ entry),
// then the inclusion path. Failures wrap ErrReceipt (or ErrMalformed for
// unparsable input).
func VerifyReceipt(receipt []byte, vkey string, entry []byte) (ReceiptResult, error) {
	var res ReceiptResult
	r, err := ParseReceipt(receipt)
	if err != nil {
		return res, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return res, fmt.Errorf("verifier key: %w", err)
	}
	n, signer, err := OpenCheckpoint(r.Checkpoint, vkey)
	if err != nil {
		return res, fmt.Errorf("checkpoint signature does not verify with key %s: %v: %w", v.Name(), err, ErrReceipt)
	}
	head, err := ParseCheckpointHead(n.Text)
	if err != nil {
		return res, err
	}
	res.Checkpoint, res.Index, res.Signer = head, r.Index, signer
	res.LeafHash = merkle.HashLeaf(entry)
	if err := merkle.VerifyInclusion(r.Index, head.Size, res.LeafHash, r.Proof, head.Root); err != nil {
		return res, fmt.Errorf("entry is not leaf %d of %s at size %d: %v: %w", r.Index, head.Origin, head.Size, err, ErrReceipt)
	}
	return res, nil
}
