package store

import (
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store/merkle"
	"github.com/tally-mesh/tally/txn"
)

// EntryVersion is the first byte of every encoded entry. A new layout gets a
// new version; decoders reject versions they do not know.
const EntryVersion byte = 1

// Limits on what an entry may hold. Every length read from disk is checked
// against one of these before anything is allocated.
const (
	MaxStringLen = 1024    // bytes in any one string field
	MaxMetaKeys  = 64      // entries in Tx.Meta
	MaxShares    = 1024    // shares per entry (money.MaxParts)
	MaxEntrySize = 1 << 16 // bytes of one encoded entry
)

// Entry is one settled transaction with its shares: one leaf of its
// partition's Merkle tree. The package doc draws its encoding.
type Entry struct {
	Partition uint32
	Index     uint64 // leaf index in the partition's tree; assigned by Seal
	EdgeNode  string
	EdgeSeq   uint64
	Provider  string
	Tx        txn.Tx          // the settled transaction, all fields
	RuleSet   [32]byte        // hash of the rule-set version that produced the shares (for reversals: the parent's)
	Rule      string          // name of the rule that matched ("" for reversals)
	Net       decimal.Decimal // signed effect; equals money.Sum(Shares) exactly; |Net| == Tx.Amount
	Shares    []money.Share
	SettledAt time.Time
}

// MarshalBinary returns the canonical encoding of e (see the package doc).
// It fails with ErrInvalidEntry if a field cannot be represented: an unknown
// currency, an amount with more decimals than the currency has or beyond an
// int64 of minor units, a negative Tx.Amount, a time outside int64 Unix
// nanoseconds (including the zero time), invalid UTF-8 or a field over its
// limit. It does not check that the shares balance; Validate does.
func (e *Entry) MarshalBinary() ([]byte, error) {
	b, _, err := e.appendBinary(make([]byte, 0, 256)) // a typical entry fits: no regrowth
	return b, err
}

// appendBinary appends e's encoding to dst. balanced reports what Validate
// checks, computed exactly on the minor units the encoding already holds (no
// decimal arithmetic): shares sum to net, |net| == amount, and net has the
// type's sign unless a reversal. false means "not shown here" (including an
// int64 overflow of the sum): the caller runs Validate for the verdict.
func (e *Entry) appendBinary(dst []byte) (out []byte, balanced bool, err error) {
	out, sum, amount, net, ok, err := e.encode(dst)
	if err != nil || !ok {
		return out, false, err
	}
	signed := amount
	if e.Tx.Type.Sign() < 0 {
		signed = -amount
	}
	balanced = sum == net && (net == amount || net == -amount) && (e.Tx.Type.Reversal() || net == signed) &&
		!e.Tx.Type.Operator() && e.Provider != txn.OpsID && e.EdgeNode != txn.OpsID // operator entries: Validate recomputes them
	return out, balanced, nil
}

// encode writes the encoding and returns the minor units of amount, net and
// the sum of the shares (sumOK false if the sum overflowed an int64).
func (e *Entry) encode(dst []byte) (_ []byte, sum, amount, net int64, sumOK bool, _ error) {
	fail := func(err error) ([]byte, int64, int64, int64, bool, error) { return nil, 0, 0, 0, false, err }
	cur, err := currencyOf(e.Tx.Currency)
	if err != nil {
		return fail(err)
	}
	amount, err = minor(cur, e.Tx.Amount, "amount")
	if err != nil {
		return fail(err)
	}
	if amount < 0 {
		return fail(fmt.Errorf("amount %s is negative: %w", e.Tx.Amount, ErrInvalidEntry))
	}
	net, err = minor(cur, e.Net, "net")
	if err != nil {
		return fail(err)
	}
	if len(e.Shares) > MaxShares {
		return fail(fmt.Errorf("%d shares exceed the limit of %d: %w", len(e.Shares), MaxShares, ErrInvalidEntry))
	}
	if len(e.Tx.Meta) > MaxMetaKeys {
		return fail(fmt.Errorf("%d meta keys exceed the limit of %d: %w", len(e.Tx.Meta), MaxMetaKeys, ErrInvalidEntry))
	}
	if !e.Tx.Type.Valid() {
		return fail(fmt.Errorf("transaction type %q: %w", e.Tx.Type, ErrInvalidEntry))
	}
	for _, s := range []struct{ name, v string }{
		{"edge node", e.EdgeNode}, {"provider", e.Provider}, {"id", e.Tx.ID}, {"round", e.Tx.Round},
		{"parent", e.Tx.Parent}, {"game", e.Tx.Game}, {"category", e.Tx.Category},
		{"jurisdiction", e.Tx.Jurisdiction}, {"brand", e.Tx.Brand}, {"affiliate", e.Tx.Affiliate},
		{"player", e.Tx.Player}, {"rule", e.Rule},
	} {
		if err := checkString(s.name, s.v); err != nil {
			return fail(err)
		}
	}
	for k, v := range e.Tx.Meta {
		if err := checkString("meta key", k); err != nil {
			return fail(err)
		}
		if err := checkString("meta value", v); err != nil {
			return fail(err)
		}
	}
	for _, t := range []struct {
		name string
		v    time.Time
	}{{"occurred_at", e.Tx.OccurredAt}, {"settled_at", e.SettledAt}} {
		if err := checkTime(t.name, t.v); err != nil {
			return fail(err)
		}
	}

	sumOK = true
	w := enc{b: dst}
	w.u8(EntryVersion)
	w.u32(e.Partition)
	w.u64(e.Index)
	w.str(e.EdgeNode)
	w.u64(e.EdgeSeq)
	w.str(e.Provider)
	w.str(e.Tx.ID)
	w.str(string(e.Tx.Type))
	w.str(cur.Code)
	w.u8(byte(cur.Exponent))
	w.i64(amount)
	w.time(e.Tx.OccurredAt)
	w.str(e.Tx.Round)
	w.str(e.Tx.Parent)
	w.u64(e.Tx.Seq)
	w.str(e.Tx.Game)
	w.str(e.Tx.Category)
	w.str(e.Tx.Jurisdiction)
	w.str(e.Tx.Brand)
	w.str(e.Tx.Affiliate)
	w.str(e.Tx.Player)
	w.uvarint(uint64(len(e.Tx.Meta)))
	switch len(e.Tx.Meta) {
	case 0: // nothing to sort: no iterator, no key slice
	case 1:
		for k, v := range e.Tx.Meta { // one key is sorted already: no key slice
			w.str(k)
			w.str(v)
		}
	default:
		for _, k := range slices.Sorted(maps.Keys(e.Tx.Meta)) {
			w.str(k)
			w.str(e.Tx.Meta[k])
		}
	}
	w.hash(e.RuleSet)
	w.str(e.Rule)
	w.i64(net)
	w.uvarint(uint64(len(e.Shares)))
	for i, s := range e.Shares {
		if err := checkString("share party", s.Party); err != nil {
			return fail(err)
		}
		m, err := minor(cur, s.Amount, "")
		if err != nil {
			return fail(fmt.Errorf("share %d: %w", i, err)) // named only on failure: a Sprintf per share cost an allocation
		}
		w.str(s.Party)
		w.i64(m)
		if t := sum + m; (sum > 0 && m > 0 && t < 0) || (sum < 0 && m < 0 && t >= 0) {
			sumOK = false // overflow: Validate decides with decimals
		} else {
			sum = t
		}
	}
	w.time(e.SettledAt)
	if n := w.len() - len(dst); n > MaxEntrySize {
		return fail(fmt.Errorf("entry is %d bytes, limit is %d: %w", n, MaxEntrySize, ErrInvalidEntry))
	}
	return w.result(), sum, amount, net, sumOK, nil
}

// UnmarshalEntry decodes one entry. It accepts exactly the bytes
// MarshalBinary produces and nothing else: an unknown version, a truncated
// or oversize field, a non-minimal varint, unsorted or duplicate meta keys,
// invalid UTF-8, an unknown currency or type, a wrong exponent, a negative
// amount or trailing bytes are ErrMalformed. Re-encoding the result gives
// back b byte for byte.
func UnmarshalEntry(b []byte) (Entry, error) {
	if len(b) > MaxEntrySize {
		return Entry{}, fmt.Errorf("entry is %d bytes, limit is %d: %w", len(b), MaxEntrySize, ErrMalformed)
	}
	d := dec{b: b}
	if len(b) <= sharedStringMax {
		d.s = string(b) // the entry's strings are substrings of one copy (dec.s)
	}
	var e Entry
	if v := d.u8("version"); d.err == nil && v != EntryVersion {
		d.fail("unknown entry version %d", v)
	}
	e.Partition = d.u32("partition")
	e.Index = d.u64("index")
	e.EdgeNode = d.str("edge node", MaxStringLen)
	e.EdgeSeq = d.u64("edge seq")
	e.Provider = d.str("provider", MaxStringLen)
	e.Tx.ID = d.str("id", MaxStringLen)
	e.Tx.Type = txn.Type(d.str("type", MaxStringLen))
	if d.err == nil && !e.Tx.Type.Valid() {
		d.fail("unknown transaction type %q", e.Tx.Type)
	}
	code := d.str("currency", MaxStringLen)
	exp := d.u8("exponent")
	cur, ok := money.Lookup(code)
	switch {
	case d.err != nil:
	case !ok:
		d.fail("unknown currency %q", code)
	case int32(exp) != cur.Exponent:
		d.fail("currency %s has exponent %d, entry says %d", code, cur.Exponent, exp)
	}
	e.Tx.Currency = cur
	amount := d.i64("amount")
	if d.err == nil && amount < 0 {
		d.fail("negative amount %d", amount)
	}
	e.Tx.Amount = cur.FromMinor(amount)
	e.Tx.OccurredAt = d.time("occurred_at")
	e.Tx.Round = d.str("round", MaxStringLen)
	e.Tx.Parent = d.str("parent", MaxStringLen)
	e.Tx.Seq = d.u64("seq")
	e.Tx.Game = d.str("game", MaxStringLen)
	e.Tx.Category = d.str("category", MaxStringLen)
	e.Tx.Jurisdiction = d.str("jurisdiction", MaxStringLen)
	e.Tx.Brand = d.str("brand", MaxStringLen)
	e.Tx.Affiliate = d.str("affiliate", MaxStringLen)
	e.Tx.Player = d.str("player", MaxStringLen)
	if n := d.uvarint("meta count", MaxMetaKeys); n > 0 {
		e.Tx.Meta = make(map[string]string, n)
		prev := ""
		for i := range n {
			k := d.str("meta key", MaxStringLen)
			v := d.str("meta value", MaxStringLen)
			if d.err != nil {
				break
			}
			if i > 0 && k <= prev {
				d.fail("meta key %q is not after %q", k, prev)
				break
			}
			e.Tx.Meta[k] = v
			prev = k
		}
	}
	e.RuleSet = d.hash("rule set")
	e.Rule = d.str("rule", MaxStringLen)
	e.Net = cur.FromMinor(d.i64("net"))
	if n := d.uvarint("share count", MaxShares); n > 0 {
		e.Shares = make([]money.Share, 0, n)
		for range n {
			party := d.str("share party", MaxStringLen)
			m := d.i64("share amount")
			if d.err != nil {
				break
			}
			e.Shares = append(e.Shares, money.Share{Party: party, Amount: cur.FromMinor(m)})
		}
	}
	e.SettledAt = d.time("settled_at")
	d.done()
	if d.err != nil {
		return Entry{}, fmt.Errorf("decode entry: %w", d.err)
	}
	return e, nil
}

// LeafHash is the RFC 6962 leaf hash of the entry: SHA-256(0x00 ‖ encoding).
// It panics if the entry cannot be encoded; Seal and Verify only call it on
// entries that were encoded or decoded successfully.
func (e *Entry) LeafHash() [32]byte {
	b, err := e.MarshalBinary()
	if err != nil {
		panic(fmt.Sprintf("store: leaf hash of an unencodable entry: %v", err))
	}
	return merkle.HashLeaf(b)
}

// Validate checks what the encoding cannot: the shares sum exactly to Net
// (ErrUnbalanced), |Net| == Tx.Amount, and for a transaction that is not a
// reversal, Net carries the sign of its type (ErrInvalidEntry). An operator
// entry (correction, fx_rate, payout_run) is recomputed from its meta
// (validateOperator).
// Seal calls it on every entry; Verify on every decoded one.
func (e *Entry) Validate() error {
	if !money.SumEquals(e.Shares, e.Net) {
		return fmt.Errorf("shares sum to %s, net is %s: %w", money.Sum(e.Shares), e.Net, ErrUnbalanced)
	}
	if !e.Net.Abs().Equal(e.Tx.Amount) {
		return fmt.Errorf("net %s is not ±amount %s: %w", e.Net, e.Tx.Amount, ErrInvalidEntry)
	}
	if e.Tx.Type.Operator() || e.Provider == txn.OpsID || e.EdgeNode == txn.OpsID {
		return e.validateOperator()
	}
	if !e.Tx.Type.Reversal() && !e.Net.Equal(e.Tx.Signed()) {
		return fmt.Errorf("net %s does not carry the sign of %s (want %s): %w", e.Net, e.Tx.Type, e.Tx.Signed(), ErrInvalidEntry)
	}
	return nil
}

// validateOperator recomputes an operator entry (docs/ledger-format.md,
// "Operator entries"): it comes from (_tally, _tally) and nothing else does;
// rule set zero and rule = its type; a correction's meta parses strictly
// (txn.ParseCorrection: approvers distinct, none the proposer, enough of
// them, lines in canonical form) and its shares are its lines in order, so
// net = Σ lines; an fx_rate's meta parses (txn.ParseFXRate), a payout_run's
// (txn.ParsePayoutRun: statements each once, maker ≠ checker), and they have
// no shares and net 0. That no two payout_run entries pay one statement is a
// check across entries: `tally verify` (audit) makes it.
func (e *Entry) validateOperator() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s %s: %s: %w", e.Tx.Type, e.Tx.ID, fmt.Sprintf(format, args...), ErrInvalidEntry)
	}
	switch {
	case !e.Tx.Type.Operator():
		return bad("edge node %q, provider %q are reserved for operator entries (correction, fx_rate, payout_run)", e.EdgeNode, e.Provider)
	case e.Provider != txn.OpsID || e.EdgeNode != txn.OpsID:
		return bad("an operator entry must come from edge node and provider %q, not %q, %q", txn.OpsID, e.EdgeNode, e.Provider)
	case e.RuleSet != [32]byte{}:
		return bad("rule set %x; an operator entry has none (all zero)", e.RuleSet[:8])
	case e.Rule != string(e.Tx.Type):
		return bad("rule %q, want %q", e.Rule, e.Tx.Type)
	}
	switch e.Tx.Type {
	case txn.FXRate, txn.PayoutRun:
		var err error
		if e.Tx.Type == txn.FXRate {
			_, err = txn.ParseFXRate(e.Tx)
		} else {
			_, err = txn.ParsePayoutRun(e.Tx)
		}
		if err != nil {
			return bad("%v", err)
		}
		if len(e.Shares) != 0 || !e.Net.IsZero() {
			return bad("an %s has no shares and net 0, this one %d shares and net %s", e.Tx.Type, len(e.Shares), e.Net)
		}
		return nil
	}
	c, err := txn.ParseCorrection(e.Tx)
	if err != nil {
		return bad("%v", err)
	}
	if len(e.Shares) != len(c.Lines) {
		return bad("%d shares, meta.lines has %d", len(e.Shares), len(c.Lines))
	}
	for i, l := range c.Lines {
		if s := e.Shares[i]; s.Party != l.Party || !s.Amount.Equal(l.Amount) {
			return bad("share %d is %s %s, meta.lines says %s %s", i, s.Party, s.Amount, l.Party, l.Amount)
		}
	}
	if !e.Net.Equal(c.Net()) {
		return bad("net %s, Σ lines is %s", e.Net, c.Net())
	}
	return nil
}

// currencyOf checks c against the registry: the code must be known and the
// exponent the registry's.
func currencyOf(c money.Currency) (money.Currency, error) {
	r, ok := money.Lookup(c.Code)
	if !ok {
		return money.Currency{}, fmt.Errorf("unknown currency %q: %w", c.Code, ErrInvalidEntry)
	}
	if r.Exponent != c.Exponent {
		return money.Currency{}, fmt.Errorf("currency %s has exponent %d, not %d: %w", c.Code, r.Exponent, c.Exponent, ErrInvalidEntry)
	}
	return r, nil
}

func minor(cur money.Currency, d decimal.Decimal, what string) (int64, error) {
	if m, ok := money.MinorUnits(d, cur.Exponent); ok { // without allocating
		return m, nil
	}
	m, err := cur.Minor(d)
	if err != nil {
		if what == "" {
			return 0, fmt.Errorf("%v: %w", err, ErrInvalidEntry)
		}
		return 0, fmt.Errorf("%s: %v: %w", what, err, ErrInvalidEntry)
	}
	return m, nil
}

func checkString(what, s string) error {
	switch {
	case len(s) > MaxStringLen:
		return fmt.Errorf("%s is %d bytes, limit is %d: %w", what, len(s), MaxStringLen, ErrInvalidEntry)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8: %w", what, ErrInvalidEntry)
	}
	return nil
}

func checkTime(what string, t time.Time) error {
	if t.IsZero() || !time.Unix(0, t.UnixNano()).Equal(t) {
		return fmt.Errorf("%s %s is zero or outside int64 Unix nanoseconds: %w", what, t, ErrInvalidEntry)
	}
	return nil
}
