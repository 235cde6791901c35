package ingest

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/s2"

	"github.com/tally-mesh/tally/wire"
)

// Compressed groups (key layout 3, keys.go). A group value is stored either
// as written by groupStart/appendGroupRecord (plain) or compressed:
//
//	first seq | 1<<63 (8B BE) ‖ accepted-at (8B BE) ‖ CRC-32C (4B BE) ‖ S2 block
//
// The S2 block (github.com/klauspost/compress/s2, block format) holds the
// plain value's body: for each record uvarint length ‖ canonical JSON. The
// CRC-32C (Castagnoli) covers the first 16 bytes as stored (flag included)
// and the decoded body, so a flipped bit anywhere — header, S2 length, a
// literal byte, a copy offset — is ErrCorrupt, never a different record.
//
// The reading rule needs no migration: sequences start at 1 and stay far
// below 2^63, so a plain group never has the top bit of its first-seq field
// set, and the bit alone tells the two forms apart. A WAL may hold both
// (groups written before compression was turned on, or with
// ingest.wal_compression = "none", or groups S2 could not shrink).
const (
	groupCompressed       = 1 << 63
	groupCompressedHeader = groupHeader + 4
	// maxGroupBody bounds the decoded body of a compressed group. The writer
	// never gets near it (a group is at most half of a Badger transaction,
	// 15% of a memtable of at most 1 GiB: about 80 MiB); the reader refuses
	// more before allocating, so a corrupt length cannot ask for 4 GiB.
	maxGroupBody = 128 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// compresses reports whether the WAL stores groups compressed
// (Config.WALCompression; "" is the default, s2).
func (c Config) compresses() bool { return c.WALCompression != wire.CompressionNone }

// packGroups compresses the groups of c before it is written, when the WAL
// compresses, and corrects c's logical bytes to what is stored (retention
// frees the stored size, so m/bytes must count the same).
func (w *wal) packGroups(c *chunk) {
	if !w.cfg.compresses() {
		return
	}
	for _, g := range c.groups {
		v := compressGroup(g.v)
		c.bytes += int64(len(v) - len(g.v))
		g.v = v
	}
}

// packGroup is packGroups for one plain group value (migrate.go).
func (w *wal) packGroup(v []byte) []byte {
	if !w.cfg.compresses() {
		return v
	}
	return compressGroup(v)
}

// encodeScratch holds S2 output before it is copied into a value of its
// exact size (Badger keeps the value until the commit is written).
var encodeScratch = sync.Pool{New: func() any { return new([]byte) }}

// compressGroup returns the compressed form of the plain group value v, or v
// itself when compression would not make it smaller.
func compressGroup(v []byte) []byte {
	if len(v) < groupHeader || len(v)-groupHeader > maxGroupBody {
		return v
	}
	body := v[groupHeader:]
	sp := encodeScratch.Get().(*[]byte)
	defer encodeScratch.Put(sp)
	if n := s2.MaxEncodedLen(len(body)); cap(*sp) < n {
		*sp = make([]byte, n)
	}
	enc := s2.Encode((*sp)[:cap(*sp)], body)
	if groupCompressedHeader+len(enc) >= len(v) {
		return v
	}
	out := make([]byte, groupCompressedHeader+len(enc))
	binary.BigEndian.PutUint64(out, binary.BigEndian.Uint64(v)|groupCompressed)
	copy(out[8:groupHeader], v[8:groupHeader])
	crc := crc32.Update(crc32.Checksum(out[:groupHeader], castagnoli), castagnoli, body)
	binary.BigEndian.PutUint32(out[groupHeader:], crc)
	copy(out[groupCompressedHeader:], enc)
	if cap(*sp) > 8<<20 { // do not keep a huge buffer for the next small group
		*sp = nil
	}
	return out
}

// groupReader splits group values, decoding compressed ones into a buffer
// it reuses; the payloads of the group it returns are valid until its next
// split (or release).
type groupReader struct {
	buf      []byte
	payloads [][]byte
}

var groupReaders = sync.Pool{New: func() any { return new(groupReader) }}

// getGroupReader takes a reader from the pool; release gives it back.
func getGroupReader() *groupReader { return groupReaders.Get().(*groupReader) }

func (r *groupReader) release() {
	clear(r.payloads) // they alias Badger's memory and the buffer
	r.payloads = r.payloads[:0]
	if cap(r.buf) > 8<<20 {
		r.buf = nil
	}
	groupReaders.Put(r)
}

// splitGroup decodes the group stored under key (whose last 8 bytes are the
// last sequence), plain or compressed. It checks that the value holds exactly
// last-first+1 records. Payloads alias v (plain) or a new buffer (compressed).
func splitGroup(key, v []byte) (group, error) {
	var r groupReader
	return r.split(key, v)
}

// split is splitGroup with r's buffers.
func (r *groupReader) split(key, v []byte) (group, error) {
	var g group
	if len(key) < 8 || len(v) < groupHeader {
		return g, fmt.Errorf("%w: group %q too short", ErrCorrupt, key)
	}
	g.last = binary.BigEndian.Uint64(key[len(key)-8:])
	g.first = binary.BigEndian.Uint64(v)
	g.at = int64(binary.BigEndian.Uint64(v[8:]))
	rest := v[groupHeader:]
	if g.first&groupCompressed != 0 {
		g.first &^= groupCompressed
		body, err := r.decode(key, v)
		if err != nil {
			return g, err
		}
		rest = body
	}
	if g.first == 0 || g.first > g.last || g.last-g.first >= 1<<24 {
		return g, fmt.Errorf("%w: group %q spans %d-%d", ErrCorrupt, key, g.first, g.last)
	}
	want := g.last - g.first + 1
	g.payloads = r.payloads[:0]
	for len(rest) > 0 {
		n, k := binary.Uvarint(rest)
		if uint64(len(g.payloads)) == want {
			return g, fmt.Errorf("%w: group %q holds more than %d records", ErrCorrupt, key, want)
		}
		if k <= 0 || uint64(len(rest)-k) < n {
			return g, fmt.Errorf("%w: group %q record %d truncated", ErrCorrupt, key, g.first+uint64(len(g.payloads)))
		}
		g.payloads = append(g.payloads, rest[k:k+int(n)])
		rest = rest[k+int(n):]
	}
	r.payloads = g.payloads
	if uint64(len(g.payloads)) != want {
		return g, fmt.Errorf("%w: group %q holds %d records, want %d", ErrCorrupt, key, len(g.payloads), want)
	}
	return g, nil
}

// decode returns the body of the compressed group value v, checked against
// its CRC-32C, in r.buf.
func (r *groupReader) decode(key, v []byte) ([]byte, error) {
	if len(v) < groupCompressedHeader {
		return nil, fmt.Errorf("%w: compressed group %q too short", ErrCorrupt, key)
	}
	block := v[groupCompressedHeader:]
	n, err := s2.DecodedLen(block)
	if err != nil || n > maxGroupBody {
		return nil, fmt.Errorf("%w: compressed group %q: bad S2 length (%d, %v)", ErrCorrupt, key, n, err)
	}
	body, err := s2.Decode(r.buf[:cap(r.buf)], block)
	if err != nil {
		return nil, fmt.Errorf("%w: compressed group %q: %v", ErrCorrupt, key, err)
	}
	if cap(body) > cap(r.buf) {
		r.buf = body[:0]
	}
	crc := crc32.Update(crc32.Checksum(v[:groupHeader], castagnoli), castagnoli, body)
	if crc != binary.BigEndian.Uint32(v[groupHeader:]) {
		return nil, fmt.Errorf("%w: compressed group %q fails its checksum", ErrCorrupt, key)
	}
	return body, nil
}
