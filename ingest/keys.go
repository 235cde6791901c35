package ingest

import (
	"encoding/binary"
	"fmt"
)

// Key layout of the WAL (one Badger DB). Providers are wire.ValidToken
// strings, so they never contain '/' and every prefix below is unambiguous.
//
//	g/<provider>/<last 8B BE> group: the provider's records of one commit, packed
//	                          (see groupValue); keyed by the last sequence so a
//	                          Seek to g/<provider>/<seq> lands on the group holding seq
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

// layoutVersion is the key layout this code writes and reads.
const layoutVersion = 2

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

// A group value is first seq (8B BE) ‖ accepted-at unix ns (8B BE) ‖ for each
// record first..last: uvarint length ‖ canonical JSON. All records of a group
// were accepted by one commit, so they share the accept time.
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

// splitGroup decodes the group stored under key (whose last 8 bytes are the
// last sequence). It checks that the value holds exactly last-first+1 records.
func splitGroup(key, v []byte) (group, error) {
	var g group
	if len(key) < 8 || len(v) < groupHeader {
		return g, fmt.Errorf("%w: group %q too short", ErrCorrupt, key)
	}
	g.last = binary.BigEndian.Uint64(key[len(key)-8:])
	g.first = binary.BigEndian.Uint64(v)
	g.at = int64(binary.BigEndian.Uint64(v[8:]))
	if g.first == 0 || g.first > g.last || g.last-g.first >= 1<<24 {
		return g, fmt.Errorf("%w: group %q spans %d-%d", ErrCorrupt, key, g.first, g.last)
	}
	g.payloads = make([][]byte, 0, g.last-g.first+1)
	rest := v[groupHeader:]
	for len(rest) > 0 {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return g, fmt.Errorf("%w: group %q record %d truncated", ErrCorrupt, key, g.first+uint64(len(g.payloads)))
		}
		g.payloads = append(g.payloads, rest[k:k+int(n)])
		rest = rest[k+int(n):]
	}
	if uint64(len(g.payloads)) != g.last-g.first+1 {
		return g, fmt.Errorf("%w: group %q holds %d records, want %d", ErrCorrupt, key, len(g.payloads), g.last-g.first+1)
	}
	return g, nil
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
