package store

import (
	"encoding/binary"
	"fmt"
	"time"
	"unicode/utf8"
)

// enc appends the primitive encodings the package doc defines. Every field
// has one encoding, so equal values encode to equal bytes.
type enc struct{ b []byte }

func (e *enc) u8(v byte)        { e.b = append(e.b, v) }
func (e *enc) u32(v uint32)     { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64)     { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *enc) i64(v int64)      { e.u64(uint64(v)) }
func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) hash(h [32]byte)  { e.b = append(e.b, h[:]...) }
func (e *enc) time(t time.Time) { e.i64(t.UnixNano()) }
func (e *enc) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *enc) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) raw(p []byte)     { e.b = append(e.b, p...) }
func (e *enc) len() int         { return len(e.b) }
func (e *enc) result() []byte   { return e.b }

// dec reads what enc writes, strictly: the first problem sticks in err and
// every later read returns zero values, so callers check err once.
type dec struct {
	b   []byte
	off int
	err error
	// s, when set, is string(b): str returns substrings of it, one
	// allocation for every string of a decoded entry instead of one each.
	// Set only for small inputs (sharedStringMax), so a string kept from the
	// result pins a few hundred bytes, never a large entry or a segment.
	s string
}

// sharedStringMax is the largest input whose strings share one copy.
const sharedStringMax = 1 << 10

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("offset %d: %s: %w", d.off, fmt.Sprintf(format, args...), ErrMalformed)
	}
}

func (d *dec) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.fail("%s: need %d bytes, %d left", what, n, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *dec) u8(what string) byte {
	p := d.take(1, what)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *dec) u32(what string) uint32 {
	p := d.take(4, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (d *dec) u64(what string) uint64 {
	p := d.take(8, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (d *dec) i64(what string) int64 { return int64(d.u64(what)) }

func (d *dec) hash(what string) (h [32]byte) {
	copy(h[:], d.take(32, what))
	return h
}

func (d *dec) time(what string) time.Time {
	n := d.i64(what)
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// uvarint reads a minimal unsigned varint no larger than max.
func (d *dec) uvarint(what string, max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		d.fail("%s: truncated varint", what)
		return 0
	case n < 0:
		d.fail("%s: varint overflows 64 bits", what)
		return 0
	case n > 1 && d.b[d.off+n-1] == 0:
		d.fail("%s: non-minimal varint", what)
		return 0
	case v > max:
		d.fail("%s: %d exceeds the limit of %d", what, v, max)
		return 0
	}
	d.off += n
	return v
}

// length reads the uvarint length of field what. The name "<what> length"
// is built only when the read fails (it is read again under that name):
// building it for every field was an allocation per string decoded.
func (d *dec) length(what string, max uint64) uint64 {
	off, failed := d.off, d.err != nil
	v := d.uvarint("", max)
	if d.err != nil && !failed {
		d.off, d.err = off, nil
		return d.uvarint(what+" length", max)
	}
	return v
}

// str reads a length-prefixed UTF-8 string of at most max bytes.
func (d *dec) str(what string, max int) string {
	n := d.length(what, uint64(max))
	p := d.take(int(n), what)
	if d.err != nil {
		return ""
	}
	if !utf8.Valid(p) {
		d.fail("%s: not valid UTF-8", what)
		return ""
	}
	if len(d.s) == len(d.b) && len(p) > 0 {
		return d.s[d.off-len(p) : d.off]
	}
	return string(p)
}

// bytes reads a length-prefixed byte string of at most max bytes.
func (d *dec) bytes(what string, max int) []byte {
	n := d.length(what, uint64(max))
	return d.take(int(n), what)
}

// done fails unless every byte was consumed.
func (d *dec) done() {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
}
