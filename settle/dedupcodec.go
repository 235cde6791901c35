package settle

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Dedup record values. Every (provider, id) the partition ever settled
// keeps one, so it is written once per transaction and read once per new
// transaction, and it is most of what the index holds and compacts
// (docs/performance.md): JSON cost more CPU than the split itself, and every
// byte is rewritten by each compaction that passes over it. Integers are
// unsigned LEB128 varints unless noted; svarint is a zig-zag signed varint;
// str and bytes are a varint length then the bytes.
//
// Version 2 (tag 0xD2), what the index writes:
//
//	tag       0xD2
//	flags     byte: bit 0 Held, bit 1 Left present (nil Left means "all of Shares"),
//	          bit 2 amounts in minor units, bit 3 Net present, bit 4 Reversed present
//	          (bits 3 and 4 only with bit 2)
//	partition varint (≤ 2³²−1)
//	index     varint
//	hash      bytes (≤ 64)
//	currency  str
//	rule set  varint: 0 none, n ≥ 1 the rule-set hash stored under r/<n> (keys.go,
//	          ruleSets below): the same 32 bytes in nearly every record, interned
//	amounts   with bit 2: exp byte (≤ 18), then net and reversed (each only if its
//	          flag is set) as svarint v meaning v × 10^−exp; without bit 2: net str,
//	          reversed str
//	shares    varint count, count × { party str, amount (svarint with bit 2, else str) }
//	left      only with flag bit 1: the same as shares
//
// Amounts in minor units are exact by construction: the record's strings are
// decimal.String()s (canonical: no '+', no leading or trailing zeros, no
// "-0"), exp is the largest number of decimals among them, and a record is
// written so only when every amount is canonical and fits an int64 at exp;
// decoding formats v × 10^−exp back to the same string. exp is stored, not
// taken from the currency registry, so a record never changes meaning if the
// registry does, and unknown currencies work the same.
//
// Version 1 (tag 0xD1) is what the ledger's state records carry (they must
// read without any index's rule-set table) and what indexes of earlier
// builds hold; the index reads it, and the JSON of builds before it:
//
//	tag       0xD1 (never '{')
//	flags     byte: bit 0 Held, bit 1 Left present
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
// a length past its limit, invalid UTF-8, trailing bytes, an unknown rule-set
// reference, a non-canonical exp, or a version-2 record in strings whose
// amounts would fit minor units are errors: every record has one encoding.
const (
	dedupTag      = 0xD1
	dedupTagV2    = 0xD2
	dedupHeld     = 1 << 0
	dedupHasLeft  = 1 << 1
	dedupMinor    = 1 << 2
	dedupHasNet   = 1 << 3
	dedupHasRev   = 1 << 4
	dedupMaxBytes = 64      // hash and rule set
	dedupMaxStr   = 1024    // currency, amounts, parties
	dedupMaxPairs = 1 << 10 // shares (money.MaxParts)
	dedupMaxExp   = 18      // decimals of an amount in minor units
)

// appendDedup encodes r onto dst in version 1 (the ledger's state records).
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

// appendDedupV2 encodes r onto dst in version 2 (the index); rs is the
// reference of r.RuleSet in the index's table (0 when r has none).
func appendDedupV2(dst []byte, r *dedupRec, rs uint64) []byte {
	flags := byte(0)
	if r.Held {
		flags |= dedupHeld
	}
	if r.Left != nil {
		flags |= dedupHasLeft
	}
	exp, minor := minorExp(r)
	if minor {
		flags |= dedupMinor
		if r.Net != "" {
			flags |= dedupHasNet
		}
		if r.Reversed != "" {
			flags |= dedupHasRev
		}
	}
	dst = append(dst, dedupTagV2, flags)
	dst = binary.AppendUvarint(dst, uint64(r.Partition))
	dst = binary.AppendUvarint(dst, r.Index)
	dst = appendLV(dst, r.Hash)
	dst = appendLVs(dst, r.Currency)
	dst = binary.AppendUvarint(dst, rs)
	if !minor {
		dst = appendLVs(dst, r.Net)
		dst = appendLVs(dst, r.Reversed)
		dst = appendPairs(dst, r.Shares)
		if r.Left != nil {
			dst = appendPairs(dst, r.Left)
		}
		return dst
	}
	dst = append(dst, byte(exp))
	for _, s := range [2]string{r.Net, r.Reversed} {
		if s != "" {
			v, _ := minorUnits(s, exp)
			dst = binary.AppendVarint(dst, v)
		}
	}
	dst = appendMinorPairs(dst, r.Shares, exp)
	if r.Left != nil {
		dst = appendMinorPairs(dst, r.Left, exp)
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

func appendMinorPairs(dst []byte, ps [][2]string, exp int) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ps)))
	for _, p := range ps {
		dst = appendLVs(dst, p[0])
		v, _ := minorUnits(p[1], exp)
		dst = binary.AppendVarint(dst, v)
	}
	return dst
}

// minorExp is the exponent r's amounts are written at in minor units (the
// largest number of decimals among them), and whether they all can be:
// every amount canonical (Net and Reversed may be empty, share amounts not)
// and within an int64 at that exponent.
func minorExp(r *dedupRec) (int, bool) {
	exp := 0
	ok := true
	each := func(s string, mayBeEmpty bool) {
		if !ok || (s == "" && mayBeEmpty) {
			return
		}
		sc, good := canonicalScale(s)
		if !good {
			ok = false
			return
		}
		exp = max(exp, sc)
	}
	each(r.Net, true)
	each(r.Reversed, true)
	for _, p := range r.Shares {
		each(p[1], false)
	}
	for _, p := range r.Left {
		each(p[1], false)
	}
	if !ok || exp > dedupMaxExp {
		return 0, false
	}
	check := func(s string) {
		if ok && s != "" {
			_, ok = minorUnits(s, exp)
		}
	}
	check(r.Net)
	check(r.Reversed)
	for _, p := range r.Shares {
		check(p[1])
	}
	for _, p := range r.Left {
		check(p[1])
	}
	return exp, ok
}

// canonicalScale is the number of decimals of s if s is a decimal as
// decimal.Decimal.String writes it: optional '-', an integer part without
// leading zeros, an optional fraction without trailing zeros, never "-0".
func canonicalScale(s string) (int, bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart := s[start:i]
	if len(intPart) == 0 || (len(intPart) > 1 && intPart[0] == '0') {
		return 0, false
	}
	if i == len(s) {
		return 0, !(s[0] == '-' && intPart == "0")
	}
	if s[i] != '.' {
		return 0, false
	}
	frac := s[i+1:]
	if len(frac) == 0 || frac[len(frac)-1] == '0' {
		return 0, false
	}
	for j := 0; j < len(frac); j++ {
		if frac[j] < '0' || frac[j] > '9' {
			return 0, false
		}
	}
	return len(frac), true
}

// minorUnits is canonical s × 10^exp as an int64, if it is an integer that
// fits (|v| ≤ MaxInt64).
func minorUnits(s string, exp int) (int64, bool) {
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var v uint64
	digits, sc := 0, -1
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			sc = 0
			continue
		}
		if sc >= 0 {
			sc++
		}
		d := uint64(s[i] - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, false
		}
		v = v*10 + d
		digits++
	}
	sc = max(sc, 0)
	if sc > exp {
		return 0, false
	}
	for range exp - sc {
		if v > math.MaxInt64/10 {
			return 0, false
		}
		v *= 10
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

// formatMinor is v × 10^−exp as decimal.Decimal.String writes it.
func formatMinor(v int64, exp int) string {
	var buf [48]byte
	b := buf[:0]
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		u = uint64(-v)
	}
	digits := strconv.AppendUint(nil, u, 10)
	for exp > 0 && len(digits) > 1 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp--
	}
	if exp > 0 && u == 0 {
		exp = 0
	}
	if exp == 0 {
		return string(append(b, digits...))
	}
	if len(digits) <= exp {
		b = append(b, '0', '.')
		for range exp - len(digits) {
			b = append(b, '0')
		}
		return string(append(b, digits...))
	}
	b = append(b, digits[:len(digits)-exp]...)
	b = append(b, '.')
	return string(append(b, digits[len(digits)-exp:]...))
}

// decodeDedup fills r from a stored value: version 2 (rule sets resolved by
// rs), version 1, or the JSON of builds before them. rs may be nil where no
// version-2 value can occur (the ledger's state records).
func decodeDedup(v []byte, r *dedupRec, rs func(uint64) ([]byte, error)) error {
	*r = dedupRec{}
	if len(v) > 0 && v[0] == '{' {
		return json.Unmarshal(v, r)
	}
	if len(v) > 0 && v[0] == dedupTagV2 {
		if rs == nil {
			return fmt.Errorf("dedup record: version 2 where only version 1 is valid")
		}
		return decodeDedupV2(v, r, rs)
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

func decodeDedupV2(v []byte, r *dedupRec, rs func(uint64) ([]byte, error)) error {
	d := dedupDec{b: v[1:]}
	flags := d.byte()
	if d.err == nil && (flags&^(dedupHeld|dedupHasLeft|dedupMinor|dedupHasNet|dedupHasRev) != 0 ||
		flags&dedupMinor == 0 && flags&(dedupHasNet|dedupHasRev) != 0) {
		return fmt.Errorf("dedup record: unknown flags %#x", flags)
	}
	minor := flags&dedupMinor != 0
	r.Held = flags&dedupHeld != 0
	r.Partition = uint32(d.uvarint(math.MaxUint32))
	r.Index = d.uvarint(1<<63 - 1)
	r.Hash = d.bytes(dedupMaxBytes)
	r.Currency = d.str()
	if ref := d.uvarint(math.MaxUint64); ref != 0 && d.err == nil {
		r.RuleSet, d.err = rs(ref)
	}
	if !minor {
		r.Net = d.str()
		r.Reversed = d.str()
		r.Shares = d.pairs()
		if flags&dedupHasLeft != 0 {
			r.Left = d.pairs()
		}
		if _, fits := minorExp(r); d.err == nil && fits {
			d.err = fmt.Errorf("amounts in strings that fit minor units")
		}
	} else {
		exp := int(d.byte())
		if d.err == nil && exp > dedupMaxExp {
			d.err = fmt.Errorf("exponent %d exceeds %d", exp, dedupMaxExp)
		}
		var tens bool // some amount is not a multiple of 10: exp is the least that works
		amount := func() string {
			v := d.varint()
			if d.err != nil {
				return ""
			}
			tens = tens || v%10 != 0
			return formatMinor(v, exp)
		}
		if flags&dedupHasNet != 0 {
			r.Net = amount()
		}
		if flags&dedupHasRev != 0 {
			r.Reversed = amount()
		}
		r.Shares = d.minorPairs(amount)
		if flags&dedupHasLeft != 0 {
			r.Left = d.minorPairs(amount)
		}
		if d.err == nil && exp > 0 && !tens {
			d.err = fmt.Errorf("exponent %d is not the least for its amounts", exp)
		}
	}
	if flags&dedupHasLeft != 0 && r.Left == nil && d.err == nil {
		r.Left = [][2]string{}
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

// varint reads a zig-zag signed varint within ±MaxInt64.
func (d *dedupDec) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	switch {
	case n <= 0:
		d.err = fmt.Errorf("bad varint")
		return 0
	case n > 1 && d.b[n-1] == 0:
		d.err = fmt.Errorf("non-minimal varint")
		return 0
	case v == math.MinInt64:
		d.err = fmt.Errorf("amount out of range")
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

func (d *dedupDec) minorPairs(amount func() string) [][2]string {
	n := d.uvarint(dedupMaxPairs)
	if n == 0 || d.err != nil {
		return nil
	}
	out := make([][2]string, 0, min(n, uint64(len(d.b)/2)+1))
	for range n {
		a := d.str()
		b := amount()
		if d.err != nil {
			return nil
		}
		out = append(out, [2]string{a, b})
	}
	return out
}
