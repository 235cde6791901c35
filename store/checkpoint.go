package store

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// maxCheckpoint bounds a checkpoint file (body plus signature lines).
const maxCheckpoint = 16 << 10

// segmentLine is the keyword of the checkpoint's one extension line.
const segmentLine = "tally-segment"

// Checkpoint is the body of a signed checkpoint: a C2SP tlog-checkpoint
// (origin, size, root) plus one extension line naming the segment that ends
// at Size and that segment file's hash, so that the last segment's header is
// covered by the signature too.
type Checkpoint struct {
	Origin      string   // Options.Origin + "/p" + partition
	Size        uint64   // leaves in the tree
	Root        [32]byte // RFC 6962 root at Size
	Segment     uint64   // the segment whose last entry is leaf Size−1 (0 for an empty tree)
	SegmentHash [32]byte // SHA-256 of that segment file (zero for an empty tree)
}

// Body renders the note text:
//
//	<origin>\n<size>\n<base64 root>\ntally-segment <n> <base64 segment hash>\n
func (c Checkpoint) Body() string {
	return fmt.Sprintf("%s\n%d\n%s\n%s %d %s\n", c.Origin, c.Size,
		base64.StdEncoding.EncodeToString(c.Root[:]), segmentLine, c.Segment,
		base64.StdEncoding.EncodeToString(c.SegmentHash[:]))
}

// ParseCheckpoint parses a checkpoint body strictly: exactly the four lines
// Body writes, canonical decimal and base64.
func ParseCheckpoint(text string) (Checkpoint, error) {
	var c Checkpoint
	if !strings.HasSuffix(text, "\n") {
		return c, fmt.Errorf("checkpoint does not end in a newline: %w", ErrMalformed)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 4 {
		return c, fmt.Errorf("checkpoint has %d lines, want 4: %w", len(lines), ErrMalformed)
	}
	c.Origin = lines[0]
	if c.Origin == "" || strings.ContainsAny(c.Origin, " \t") {
		return c, fmt.Errorf("checkpoint origin %q: %w", c.Origin, ErrMalformed)
	}
	var err error
	if c.Size, err = parseDecimal(lines[1]); err != nil {
		return c, fmt.Errorf("checkpoint size: %w", err)
	}
	if c.Root, err = parseHash(lines[2]); err != nil {
		return c, fmt.Errorf("checkpoint root: %w", err)
	}
	f := strings.Split(lines[3], " ")
	if len(f) != 3 || f[0] != segmentLine {
		return c, fmt.Errorf("checkpoint line 4 %q is not %q: %w", lines[3], segmentLine+" <n> <hash>", ErrMalformed)
	}
	if c.Segment, err = parseDecimal(f[1]); err != nil {
		return c, fmt.Errorf("checkpoint segment: %w", err)
	}
	if c.SegmentHash, err = parseHash(f[2]); err != nil {
		return c, fmt.Errorf("checkpoint segment hash: %w", err)
	}
	if (c.Size == 0) != (c.Segment == 0) {
		return c, fmt.Errorf("checkpoint size %d with segment %d: %w", c.Size, c.Segment, ErrMalformed)
	}
	return c, nil
}

func parseDecimal(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("%q is not a canonical decimal: %w", s, ErrMalformed)
	}
	return n, nil
}

func parseHash(s string) ([32]byte, error) {
	var h [32]byte
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 32 {
		return h, fmt.Errorf("%q is not a base64 SHA-256 hash: %w", s, ErrMalformed)
	}
	copy(h[:], b)
	return h, nil
}

// noteText returns the text of a signed note without checking signatures:
// everything up to the blank line before the signature lines.
func noteText(msg []byte) (string, error) {
	i := bytes.Index(msg, []byte("\n\n"))
	if i < 0 {
		return "", fmt.Errorf("not a signed note: %w", ErrMalformed)
	}
	return string(msg[:i+1]), nil
}

func partitionOrigin(stem string, p uint32) string { return fmt.Sprintf("%s/p%d", stem, p) }

// ParseCheckpointNote parses the body of a signed checkpoint note strictly
// (ParseCheckpoint) WITHOUT checking its signature: for a node serving its own
// checkpoint. Auditors use note.Open with the verifier key.
func ParseCheckpointNote(msg []byte) (Checkpoint, error) {
	text, err := noteText(msg)
	if err != nil {
		return Checkpoint{}, err
	}
	return ParseCheckpoint(text)
}
