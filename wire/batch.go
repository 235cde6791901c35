package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Record is one accepted transaction as the edge stored it: its edge sequence
// (gapless per edge node and provider) and its canonical JSON.
type Record struct {
	Seq     uint64
	Payload []byte
}

// Batch body layout (all integers unsigned LEB128 varints):
//
//	version byte (1)
//	count
//	count × { seq, len(payload), payload }
//
// Sequences are strictly increasing and contiguous within a batch.
const batchVersion = 1

// ErrBadBatch marks a batch body that does not parse.
var ErrBadBatch = errors.New("bad batch")

// AppendBatch encodes records into dst.
func AppendBatch(dst []byte, recs []Record) []byte {
	dst = append(dst, batchVersion)
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	for _, r := range recs {
		dst = binary.AppendUvarint(dst, r.Seq)
		dst = binary.AppendUvarint(dst, uint64(len(r.Payload)))
		dst = append(dst, r.Payload...)
	}
	return dst
}

// DecodeBatch parses a batch body. It checks that sequences are contiguous and
// never reads past the body. Payload slices alias b.
func DecodeBatch(b []byte, maxRecords int) ([]Record, error) {
	if len(b) < 2 || b[0] != batchVersion {
		return nil, fmt.Errorf("%w: unknown version", ErrBadBatch)
	}
	b = b[1:]
	n, k := uvarint(b)
	if k <= 0 || n == 0 || n > uint64(maxRecords) {
		return nil, fmt.Errorf("%w: record count", ErrBadBatch)
	}
	b = b[k:]
	recs := make([]Record, 0, n)
	for i := uint64(0); i < n; i++ {
		seq, k := uvarint(b)
		if k <= 0 {
			return nil, fmt.Errorf("%w: record %d seq", ErrBadBatch, i)
		}
		b = b[k:]
		l, k := uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: record %d length", ErrBadBatch, i)
		}
		b = b[k:]
		if i > 0 && seq != recs[i-1].Seq+1 {
			return nil, fmt.Errorf("%w: record %d seq %d not contiguous", ErrBadBatch, i, seq)
		}
		recs = append(recs, Record{Seq: seq, Payload: b[:l]})
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadBatch, len(b))
	}
	return recs, nil
}

// uvarint is binary.Uvarint that also refuses non-minimal encodings, so every
// batch has exactly one byte form.
func uvarint(b []byte) (uint64, int) {
	v, k := binary.Uvarint(b)
	if k > 1 && b[k-1] == 0 {
		return 0, -1
	}
	return v, k
}

// Message-size rules shared by the hub, the edge and the forwarder
// (docs/config.md, "Limits").
const (
	// HeaderRoom is the part of a NATS message kept for headers: the hub's
	// max_payload is ingest.request_bytes + HeaderRoom, and a forwarded batch
	// body is at most max_payload − HeaderRoom.
	HeaderRoom = 4 << 10
	// batchRecordOverhead bounds a batch's framing for one record (version,
	// count, seq and length varints).
	batchRecordOverhead = 36
)

// MaxRecordBytes bounds the forwarded form of one transaction whose payload
// is at most payloadBytes: the canonical JSON holds only what the payload
// held, but JSON escaping may write a payload byte as six ("<" is \u003c),
// and a dialect adds key names and reformats amounts and times (+512), plus
// the batch framing. A forwarded batch body must be able to hold one such
// record, so ingest.request_bytes is at least this.
func MaxRecordBytes(payloadBytes int) int64 {
	return 6*int64(payloadBytes) + 512 + batchRecordOverhead
}
