package store

import (
	"errors"
	"fmt"
)

var (
	// ErrCorrupt marks a ledger whose files disagree with each other or with
	// their signature: a broken chain, a bad root, a missing or extra
	// segment, an entry that does not decode or does not balance. It is
	// always wrapped in a *CorruptError that says where.
	ErrCorrupt = errors.New("ledger corrupt")

	// ErrMalformed is returned by the decoders (UnmarshalEntry,
	// DecodeSegment) for bytes that are not exactly one canonical encoding:
	// truncated, oversize, non-minimal varints, unsorted meta, trailing bytes.
	ErrMalformed = errors.New("malformed encoding")

	// ErrInvalidEntry is returned for an entry that cannot be encoded or
	// sealed: an unknown currency, an amount that does not fit the
	// currency's exponent or an int64 of minor units, a zero time, a string
	// over its limit, a net that is not ±amount.
	ErrInvalidEntry = errors.New("invalid entry")

	// ErrUnbalanced is returned when an entry's shares do not sum exactly to
	// its net. Seal refuses such entries; Verify reports them as corrupt.
	ErrUnbalanced = errors.New("shares do not sum to net")

	// ErrLimit is returned when a segment would exceed MaxSegmentEntries or
	// MaxSegmentBytes, or is empty.
	ErrLimit = errors.New("segment limit")

	// ErrInconsistent is returned by Sign when the current tree is not an
	// extension of the last signed checkpoint. Signing it would fork the log,
	// so the ledger refuses; an operator must investigate.
	ErrInconsistent = errors.New("tree is not an extension of the last signed checkpoint")

	// ErrSigned is returned by Recover when dropping segments would drop
	// entries already covered by a signed checkpoint.
	ErrSigned = errors.New("segments are covered by a signed checkpoint")

	// ErrKeyMismatch is returned by WriteVerifierKey when the ledger
	// directory already names a different verifier key.
	ErrKeyMismatch = errors.New("verifier key does not match the ledger's")

	// ErrClosed is returned by every method of a closed Ledger.
	ErrClosed = errors.New("ledger closed")
)

// CorruptError says where a ledger is broken. errors.Is(err, ErrCorrupt)
// holds for every *CorruptError; Err, when set, is the underlying cause
// (for example ErrMalformed or ErrUnbalanced) and matches errors.Is too.
type CorruptError struct {
	Partition uint32
	Segment   uint64 // segment number (1-based); 0 when the problem is not in a segment
	Index     int64  // leaf index of the entry, −1 when not about one entry
	Reason    string // what differs, with the expected and found values
	Err       error  // underlying cause, may be nil
}

func (e *CorruptError) Error() string {
	s := fmt.Sprintf("ledger corrupt: partition %d", e.Partition)
	if e.Segment > 0 {
		s += fmt.Sprintf(" segment %d", e.Segment)
	}
	if e.Index >= 0 {
		s += fmt.Sprintf(" entry %d", e.Index)
	}
	s += ": " + e.Reason
	if e.Err != nil && !errors.Is(e.Err, ErrCorrupt) {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrCorrupt and the underlying cause.
func (e *CorruptError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrCorrupt, e.Err}
	}
	return []error{ErrCorrupt}
}

func corrupt(p uint32, seg uint64, index int64, err error, format string, args ...any) *CorruptError {
	return &CorruptError{Partition: p, Segment: seg, Index: index, Reason: fmt.Sprintf(format, args...), Err: err}
}
