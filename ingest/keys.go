package ingest

import (
	"encoding/binary"
	"fmt"
)

// Key layout of the WAL (one Badger DB). Providers are wire.ValidToken
// strings, so they never contain '/' and every prefix below is unambiguous.
//
//	q/<provider>/<seq 8B BE>  record: accepted-at unix ns (8B BE) ‖ canonical JSON
//	d/<provider>/<id>         dedup:  seq (8B BE) ‖ SHA-256 of the canonical JSON (32B)
//	s/<provider>              last committed edge sequence (8B BE)
//	c/<provider>              cursor: last sequence JetStream acknowledged contiguously (8B BE)
//	m/bytes                   bytes written by the committer (8B BE)
//	m/freed                   bytes deleted by retention (8B BE); m/bytes − m/freed is checked against the budget
//	r/<provider>              retention floor: first seq still held (8B BE); absent = 1
//	x/<n 8B BE>               dead letter n (JSON deadLetter); oldest trimmed past DLQMax
//	k/<provider>              node id whose claim on the provider the hub confirmed (claims.go)
//
// q, d and s of one group are written in one Badger transaction; c only by the
// forwarder; x and m/bytes with the group; r, m/freed and the deletions of q
// and d (records at or below the persisted cursor) by the retention GC.
const (
	pfxRecord = "q/"
	pfxDedup  = "d/"
	pfxSeq    = "s/"
	pfxCursor = "c/"
	pfxDead   = "x/"
	keyBytes  = "m/bytes"
	keyFreed  = "m/freed"
	pfxFloor  = "r/"
	pfxClaim  = "k/"
)

func claimKey(provider string) []byte { return []byte(pfxClaim + provider) }

func floorKey(provider string) []byte { return []byte(pfxFloor + provider) }

func recordPrefix(provider string) []byte { return []byte(pfxRecord + provider + "/") }

func recordKey(provider string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(recordPrefix(provider), seq)
}

func dedupKey(provider, id string) []byte { return []byte(pfxDedup + provider + "/" + id) }
func seqKey(provider string) []byte       { return []byte(pfxSeq + provider) }
func cursorKey(provider string) []byte    { return []byte(pfxCursor + provider) }
func deadKey(n uint64) []byte             { return binary.BigEndian.AppendUint64([]byte(pfxDead), n) }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func readU64(k, v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: key %q holds %d bytes, want 8", ErrCorrupt, k, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// recordValue is the stored form of an accepted transaction.
func recordValue(acceptedAt int64, canonical []byte) []byte {
	v := make([]byte, 8, 8+len(canonical))
	binary.BigEndian.PutUint64(v, uint64(acceptedAt))
	return append(v, canonical...)
}

// splitRecord returns the accept time and canonical payload of a record value.
func splitRecord(v []byte) (int64, []byte, bool) {
	if len(v) < 8 {
		return 0, nil, false
	}
	return int64(binary.BigEndian.Uint64(v)), v[8:], true
}

// dedupValue is seq ‖ hash.
func dedupValue(seq uint64, hash [32]byte) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 40), seq)
	return append(v, hash[:]...)
}

func splitDedup(v []byte) (uint64, [32]byte, bool) {
	var h [32]byte
	if len(v) != 40 {
		return 0, h, false
	}
	copy(h[:], v[8:])
	return binary.BigEndian.Uint64(v), h, true
}
