package settle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/wire"
)

// A message on TALLY_LEDGER (subject tally.ledger.<p>) is one commit of
// partition p: the segment it sealed, if any, and the state record, which
// holds what the index needs and the entries do not say. Body:
//
//	segment bytes (HdrSegmentBytes of them, 0 when the commit sealed no entries)
//	state record: stateVersion (1 byte) + JSON of stateRec
//
// Headers: Tally-Partition, Tally-Segment (the partition's segment count
// after this message), Tally-Ledger-Format ("2"), Tally-Segment-Bytes and
// Tally-State-Hash (hex SHA-256 of the state record). Messages of earlier
// builds have no format header and are a bare segment.
//
// The state record is hashed but not part of the Merkle tree or the signed
// checkpoint: the ledger format and its vectors are unchanged, and what an
// auditor checks (entries, chain, roots) needs none of it. It is what lets a
// node rebuild its index from the stream alone (docs/settle.md).
const (
	HdrLedgerFormat = "Tally-Ledger-Format"
	HdrSegmentBytes = "Tally-Segment-Bytes"
	HdrStateHash    = "Tally-State-Hash"

	ledgerFormat = "2"
	stateVersion = 1
)

// stateRec is the index delta of one commit beyond its entries. Keys are
// relative (relKey, dedupRel). The entries' own dedup records and the
// balance changes follow from the segment and are not repeated.
type stateRec struct {
	// Marks are the high-water marks this commit moved, by node\x00provider:
	// records that produced no entry (duplicates, conflicts, held reversals,
	// exceptions) move them too.
	Marks map[string]uint64 `json:"marks,omitempty"`
	// Dedup are (provider, id) records written that the segment's entries do
	// not imply: held reversals, exceptions, parents a reversal reduced.
	// Values are dedupRec in binary version 1 (dedupcodec.go): self-contained,
	// unlike the index's version 2, whose rule sets are numbers of one index.
	Dedup map[string][]byte `json:"dedup,omitempty"`
	// Hold are reversals newly held, by provider\x00parent\x00id; Release
	// the ones released or expired.
	Hold    map[string]orphanRec `json:"hold,omitempty"`
	Release []string             `json:"release,omitempty"`
	// Exceptions raised by this commit, in order.
	Exceptions []Exception `json:"exceptions,omitempty"`
	// Counters of the partition after this commit.
	Counters Counters `json:"counters"`
}

// encodeLedgerMsg builds the TALLY_LEDGER message of a commit.
func encodeLedgerMsg(subj string, p uint32, segs uint64, seg []byte, r *stateRec) (*nats.Msg, error) {
	js, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subj)
	m.Data = make([]byte, 0, len(seg)+1+len(js))
	m.Data = append(append(append(m.Data, seg...), stateVersion), js...)
	sum := sha256.Sum256(m.Data[len(seg):])
	m.Header.Set(wire.HdrPartition, strconv.FormatUint(uint64(p), 10))
	m.Header.Set(wire.HdrSegment, strconv.FormatUint(segs, 10))
	m.Header.Set(HdrLedgerFormat, ledgerFormat)
	m.Header.Set(HdrSegmentBytes, strconv.Itoa(len(seg)))
	m.Header.Set(HdrStateHash, hex.EncodeToString(sum[:]))
	return m, nil
}

// errBadLedgerMsg marks a TALLY_LEDGER message that does not parse.
var errBadLedgerMsg = errors.New("bad ledger message")

// decodeLedgerMsg splits a TALLY_LEDGER message of partition p into its
// segment bytes (nil if none), its state record (nil for a message of an
// earlier build) and the segment count it states.
func decodeLedgerMsg(h nats.Header, data []byte, p uint32) (seg []byte, r *stateRec, segs uint64, err error) {
	bad := func(f string, a ...any) ([]byte, *stateRec, uint64, error) {
		return nil, nil, 0, fmt.Errorf("%w: partition %d: %s", errBadLedgerMsg, p, fmt.Sprintf(f, a...))
	}
	if got := h.Get(wire.HdrPartition); got != strconv.FormatUint(uint64(p), 10) {
		return bad("partition header %q", got)
	}
	if segs, err = strconv.ParseUint(h.Get(wire.HdrSegment), 10, 64); err != nil {
		return bad("segment header %q", h.Get(wire.HdrSegment))
	}
	switch f := h.Get(HdrLedgerFormat); f {
	case "":
		return data, nil, segs, nil // a bare segment of an earlier build
	case ledgerFormat:
	default:
		return bad("format %q is not known to this build", f)
	}
	n, err := strconv.Atoi(h.Get(HdrSegmentBytes))
	if err != nil || n < 0 || n >= len(data) {
		return bad("segment length %q of a %d-byte body", h.Get(HdrSegmentBytes), len(data))
	}
	state := data[n:]
	sum := sha256.Sum256(state)
	if want := h.Get(HdrStateHash); want != hex.EncodeToString(sum[:]) {
		return bad("state record hash %x, header says %s", sum, want)
	}
	if state[0] != stateVersion {
		return bad("state record version %d is not known to this build", state[0])
	}
	r = &stateRec{}
	dec := json.NewDecoder(bytes.NewReader(state[1:]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return bad("state record: %v", err)
	}
	if n > 0 {
		seg = data[:n]
	}
	return seg, r, segs, nil
}

// record builds the state record of batch b, whose entries (if any) were
// prepared as pr.
func (b *batch) record(pr *store.Prepared) *stateRec {
	r := &stateRec{Counters: b.cnt}
	if len(b.hwm) > 0 {
		r.Marks = make(map[string]uint64, len(b.hwm))
		for k, v := range b.hwm {
			r.Marks[relKey(k)] = v
		}
	}
	// An entry's own record is what EntryRecord derives from the entry
	// (the engine builds it with the same function) unless a reversal in
	// the same batch reduced it since: only those are carried.
	entries := map[string]bool{}
	if pr != nil {
		for i := range pr.Entries {
			entries[string(keyDedup(pr.Entries[i].Provider, pr.Entries[i].Tx.ID))] = true
		}
	}
	for k, rec := range b.dedup {
		if entries[k] && rec.Left == nil && rec.Reversed == "" {
			continue
		}
		if r.Dedup == nil {
			r.Dedup = map[string][]byte{}
		}
		r.Dedup[dedupRel(k)] = appendDedup(nil, rec)
	}
	for k, o := range b.orphansAdd {
		if r.Hold == nil {
			r.Hold = map[string]orphanRec{}
		}
		r.Hold[relKey(k)] = o
	}
	for k := range b.orphansDel {
		r.Release = append(r.Release, relKey(k))
	}
	slices.Sort(r.Release)
	r.Exceptions = b.exceptions
	return r
}

// SegmentOf returns the segment bytes of a TALLY_LEDGER message (nil when
// the commit sealed no entries), for readers that only want the entries,
// such as `tally bench`'s latency sampling. It checks nothing beyond the
// framing; catch-up uses decodeLedgerMsg.
func SegmentOf(h nats.Header, data []byte) []byte {
	if h.Get(HdrLedgerFormat) == "" {
		return data
	}
	n, err := strconv.Atoi(h.Get(HdrSegmentBytes))
	if err != nil || n <= 0 || n > len(data) {
		return nil
	}
	return data[:n]
}
