package ingest

import (
	"encoding/binary"
	"fmt"
)

// Key layout of the WAL (one Badger DB). Providers are wire.ValidToken
// strings, so they never contain '/' and every prefix below is unambiguous.
//
//	g/<provider>/<last 8B BE> group: the provider's records of one commit, packed
//	                          (groupStart below), S2-compressed when that is smaller
//	                          and ingest.wal_compression = "s2" (groupcodec.go);
//	                          keyed by the last sequence so a Seek to
//	                          g/<provider>/<seq> lands on the group holding seq
//	d/<provider>/<id>         dedup:  seq (8B BE) ‖ SHA-256 of the canonical JSON (32B)
//	s/<provider>              last committed edge sequence (8B BE)
//	c/<provider>              cursor: last sequence JetStream acknowledged contiguously (8B BE)
//	m/bytes                   bytes written by the committer (8B BE)
//	m/freed                   bytes deleted by retention (8B BE); m/bytes − m/freed is checked against the budget
//	r/<provider>              retention floor: first seq still held (8B BE); absent = 1
//	x/<n 8B BE>               dead letter n (JSON deadLetter); oldest trimmed past DLQMax
//	k/<provider>              node id whose claim on the provider the hub confirmed (claims.go)
//	m/layout                  key layout version (8B BE): layoutVersion
//
// g, d and s of one commit are written in one Badger transaction; c only by the
// forwarder; x and m/bytes with the group; r, m/freed and the deletions of
// whole groups and their d keys (groups at or below the persisted cursor) by
// the retention GC.
//
// Layout 1 (before m/layout existed) stored one q/<provider>/<seq> entry per
// record (accepted-at 8B BE ‖ canonical JSON); New migrates it (migrate.go).
// Layout 2 is layout 3 without compressed groups; New only rewrites m/layout.
const (
	pfxRecord = "g/"
	pfxOldRec = "q/" // layout 1, migrated at open
	keyLayout = "m/layout"
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

// layoutVersion is the key layout this code writes and reads. Layout 3 is
// layout 2 plus compressed groups (groupcodec.go): a layout-2 WAL is read as
// it is (its groups are all plain) and only m/layout is rewritten at open;
// a tally that reads layout 2 refuses a layout-3 WAL instead of misreading
// its compressed groups.
const layoutVersion = 3

func recordPrefix(provider string) []byte { return []byte(pfxRecord + provider + "/") }

// groupKey is the key of provider's group whose last record is seq; a Seek to
// groupKey(p, s) lands on the group holding s.
func groupKey(provider string, last uint64) []byte {
	return binary.BigEndian.AppendUint64(recordPrefix(provider), last)
}

func oldRecordPrefix(provider string) []byte { return []byte(pfxOldRec + provider + "/") }

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

// A plain group value is first seq (8B BE) ‖ accepted-at unix ns (8B BE) ‖ for
// each record first..last: uvarint length ‖ canonical JSON. All records of a
// group were accepted by one commit, so they share the accept time. Layout 3
// also stores groups compressed, marked by the top bit of the first-seq field
// (groupcodec.go); splitGroup reads both.
const groupHeader = 16

func groupStart(first uint64, acceptedAt int64) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 4096), first)
	return binary.BigEndian.AppendUint64(v, uint64(acceptedAt))
}

func appendGroupRecord(v, canonical []byte) []byte {
	v = binary.AppendUvarint(v, uint64(len(canonical)))
	return append(v, canonical...)
}

// group is a decoded group value; payloads alias the value.
type group struct {
	first, last uint64
	at          int64
	payloads    [][]byte
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
