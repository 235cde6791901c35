package settle

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Dedup record value layout (binary, version 1). Every (provider, id) the
// partition ever settled keeps one, so it is written once per transaction
// and read once per new transaction: JSON here cost more CPU than the
// split itself. Integers are unsigned LEB128 varints unless noted; str and
// bytes are a varint length then the bytes.
//
//	tag       0xD1 (never '{', so values written as JSON by earlier builds still read)
//	flags     byte: bit 0 Held, bit 1 Left present (nil Left means "all of Shares")
//	partition uint32 big-endian
//	index     varint
//	hash      bytes (≤ 64)
//	currency  str
//	net       str
//	reversed  str
//	rule set  bytes (≤ 64)
//	shares    varint count, count × { party str, amount str }
//	left      only with flag bit 1: varint count, count × { party str, amount str }
//
// Decoding is strict: unknown tag or flags, truncation, a non-minimal varint,
// a length past its limit, invalid UTF-8 or trailing bytes are errors.
const (
	dedupTag      = 0xD1
	dedupHeld     = 1 << 0
	dedupHasLeft  = 1 << 1
	dedupMaxBytes = 64      // hash and rule set
	dedupMaxStr   = 1024    // currency, amounts, parties
	dedupMaxPairs = 1 << 10 // shares (money.MaxParts)
)

// appendDedup encodes r onto dst.
func appendDedup(dst []byte, r *dedupRec) []byte {
	flags := byte(0)
	if r.Held {
		flags |= dedupHeld
	}
	if r.Left != nil {
		flags |= dedupHasLeft
	}
	dst = append(dst, dedupTag, flags)
	dst = binary.BigEndian.AppendUint32(dst, r.Partition)
	dst = binary.AppendUvarint(dst, r.Index)
	dst = appendLV(dst, r.Hash)
	dst = appendLVs(dst, r.Currency)
	dst = appendLVs(dst, r.Net)
	dst = appendLVs(dst, r.Reversed)
	dst = appendLV(dst, r.RuleSet)
	dst = appendPairs(dst, r.Shares)
	if r.Left != nil {
		dst = appendPairs(dst, r.Left)
	}
	return dst
}

func appendLV(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendLVs(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendPairs(dst []byte, ps [][2]string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ps)))
	for _, p := range ps {
		dst = appendLVs(dst, p[0])
		dst = appendLVs(dst, p[1])
	}
	return dst
}

// decodeDedup fills r from a stored value: the binary layout above, or the
// JSON of builds before it.
func decodeDedup(v []byte, r *dedupRec) error {
	*r = dedupRec{}
	if len(v) > 0 && v[0] == '{' {
		return json.Unmarshal(v, r)
	}
	d := dedupDec{b: v}
	if tag := d.byte(); d.err == nil && tag != dedupTag {
		return fmt.Errorf("dedup record: unknown tag %#x", tag)
	}
	flags := d.byte()
	if d.err == nil && flags&^(dedupHeld|dedupHasLeft) != 0 {
		return fmt.Errorf("dedup record: unknown flags %#x", flags)
	}
	r.Held = flags&dedupHeld != 0
	r.Partition = d.u32()
	r.Index = d.uvarint(1<<63 - 1)
	r.Hash = d.bytes(dedupMaxBytes)
	r.Currency = d.str()
	r.Net = d.str()
	r.Reversed = d.str()
	r.RuleSet = d.bytes(dedupMaxBytes)
	r.Shares = d.pairs()
	if flags&dedupHasLeft != 0 {
		r.Left = d.pairs()
		if r.Left == nil && d.err == nil {
			r.Left = [][2]string{}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		*r = dedupRec{}
		return fmt.Errorf("dedup record: %w", d.err)
	}
	return nil
}

// dedupDec reads the layout; the first problem sticks in err.
type dedupDec struct {
	b   []byte
	err error
}

func (d *dedupDec) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("need %d bytes, %d left", n, len(d.b))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *dedupDec) byte() byte {
	p := d.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *dedupDec) u32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (d *dedupDec) uvarint(max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	switch {
	case n <= 0:
		d.err = fmt.Errorf("bad varint")
		return 0
	case n > 1 && d.b[n-1] == 0:
		d.err = fmt.Errorf("non-minimal varint")
		return 0
	case v > max:
		d.err = fmt.Errorf("%d exceeds the limit of %d", v, max)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dedupDec) bytes(max uint64) []byte {
	n := d.uvarint(max)
	p := d.take(n)
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...) // the caller keeps it past the Badger txn
}

func (d *dedupDec) str() string {
	p := d.take(d.uvarint(dedupMaxStr))
	if d.err == nil && !utf8.Valid(p) {
		d.err = fmt.Errorf("invalid UTF-8")
	}
	return string(p)
}

func (d *dedupDec) pairs() [][2]string {
	n := d.uvarint(dedupMaxPairs)
	if n == 0 || d.err != nil {
		return nil
	}
	out := make([][2]string, 0, min(n, uint64(len(d.b)/2)+1))
	for range n {
		a, b := d.str(), d.str()
		if d.err != nil {
			return nil
		}
		out = append(out, [2]string{a, b})
	}
	return out
}
