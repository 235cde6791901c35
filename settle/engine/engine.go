// Package engine is settlement's pure decision code: per record, decode,
// (provider, id) dedup and conflict check, orphan hold and release, rules
// for new transactions, recorded-share replay for reversals; and the record
// types the settle index stores. No NATS, no Badger, no clock, no
// goroutines: the settle worker runs it over its Badger batch, `tally rules
// eval` over MemState, so a contract tested offline settles identically in
// production.
package engine

import (
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// Limits decode forwarded records. They are wider than any edge's limits:
// a record the edge accepted must never be refused here for size.
// They alone admit the operator types (Operator): whether a record may carry
// one is decided by its (edge node, provider), below.
var Limits = txn.Limits{PayloadBytes: 1 << 20, IDLen: 1024, FieldLen: 1024, MetaKeys: 1024, MetaBytes: 1 << 20, AmountMax: decimal.New(1, 15), Operator: true}

// Engine makes the per-record settlement decisions of one partition: decode,
// (provider, id) dedup and conflict check, orphan hold and release, rules for
// new transactions, recorded-share replay for reversals. It is pure: no NATS,
// no Badger, no clock (Input.Now is the time), no goroutines. The settle
// worker runs it over its Badger batch (batchState) and `tally rules eval`
// runs the very same code over MemState, so a contract tested offline
// settles identically in production.
//
// Invariants: every entry handed to Sink.Entry has shares summing exactly to
// its Net (a violation panics: it is a bug in the rules engine, never rounded
// away); a (provider, id) is applied at most once; a reversal never gives a
// party back more than the parent gave it; nothing is written to State for a
// duplicate or a conflict.
type Engine struct {
	Book      *rules.Book
	Partition uint32
}

// Input is one forwarded record.
type Input struct {
	Provider string // from the edge's headers (credentials), never the payload
	EdgeNode string
	EdgeSeq  uint64
	Payload  []byte    // canonical transaction JSON
	Now      time.Time // settled_at of entries, time of exceptions and of holding an orphan
}

// State is what the engine reads and writes between records: the permanent
// (provider, id) index and the reversals held for a parent. Reads MUST see
// the effect of earlier writes (the worker's batch is an overlay over the
// index). The record types are the index's own: batchState over Badger (package
// settle) and MemState here implement it.
type State interface {
	// Dedup returns a copy of the record of (provider, id) the caller may
	// modify, or nil if there is none.
	Dedup(provider, id string) (*DedupRec, error)
	// PutDedup records (provider, id).
	PutDedup(provider, id string, r *DedupRec)
	// Held lists the reversals held for parent of provider, ordered by Key;
	// with provider == "" every reversal held in the partition.
	Held(provider, parent string) ([]Held, error)
	// Hold keeps reversal id of provider until parent arrives.
	Hold(provider, parent, id string, o OrphanRec)
	// Release forgets a held reversal.
	Release(h Held)
	// Paid returns the id of the payout_run entry that pays the statement
	// (its hex SHA-256), or "" if none does.
	Paid(statement string) (by string, err error)
	// PutPaid records that payout_run by pays statement.
	PutPaid(statement, by string)
}

// Held is one reversal waiting for its parent.
type Held struct {
	Key      string // the State's own key, ordering and identity
	Provider string
	OrphanRec
}

// Sink receives what the engine decided. Counters are updated by the engine.
type Sink interface {
	// Entry is a new ledger entry: shares already checked, SettledAt = Now.
	Entry(e store.Entry)
	// Exception is a record that was accepted upstream but cannot settle.
	Exception(e Exception)
}

// Apply settles one record. Errors are State failures or corrupt index
// records, never properties of the input: bad input becomes an exception.
func (g Engine) Apply(st State, out Sink, cnt *Counters, in Input) error {
	tx, rej := txn.Decode(in.Payload, Limits)
	if rej != nil {
		g.exception(out, cnt, in, ExcUndecodable, rej.Error(), "")
		return nil
	}
	hash := tx.Hash()
	prev, err := st.Dedup(in.Provider, tx.ID)
	if err != nil {
		return err
	}
	if prev != nil {
		if string(prev.Hash) == string(hash[:]) {
			cnt.Duplicates++
		} else {
			cnt.Conflicts++
			g.exception(out, cnt, in, ExcConflict, "same (provider, id) as an earlier transaction with a different payload", tx.ID)
		}
		return nil
	}
	ops := in.Provider == txn.OpsID && in.EdgeNode == txn.OpsID
	if tx.Type.Operator() != ops || (!ops && (in.Provider == txn.OpsID || in.EdgeNode == txn.OpsID)) {
		// Only the operator log speaks as (_tally, _tally), and it posts
		// only operator types. A reversal from it would name an operator
		// entry as parent: refused here too.
		g.exception(out, cnt, in, ExcReserved, fmt.Sprintf("type %s from edge node %q, provider %q: operator types come only from (%s, %s), which sends nothing else", tx.Type, in.EdgeNode, in.Provider, txn.OpsID, txn.OpsID), tx.ID)
		st.PutDedup(in.Provider, tx.ID, &DedupRec{Hash: hashBytes(hash), Partition: g.Partition, Currency: tx.Currency.Code, Net: "0"})
		return nil
	}
	if ops {
		return g.operator(st, out, cnt, in, tx, hash)
	}
	if tx.Type.Reversal() {
		parent, err := st.Dedup(in.Provider, tx.Parent)
		if err != nil {
			return err
		}
		if parent == nil || parent.Held {
			st.PutDedup(in.Provider, tx.ID, &DedupRec{Hash: hashBytes(hash), Held: true, Partition: g.Partition, Currency: tx.Currency.Code})
			st.Hold(in.Provider, tx.Parent, tx.ID, OrphanRec{EdgeNode: in.EdgeNode, EdgeSeq: in.EdgeSeq, Payload: in.Payload, ReceivedAt: in.Now.UTC()})
			cnt.OrphansHeld++
			return nil
		}
		return g.reverse(st, out, cnt, in, tx, parent)
	}
	res, err := g.Book.Split(in.Provider, tx)
	if err != nil {
		g.exception(out, cnt, in, ExcNoRule, err.Error(), tx.ID)
		st.PutDedup(in.Provider, tx.ID, &DedupRec{Hash: hashBytes(hash), Partition: g.Partition, Currency: tx.Currency.Code, Net: "0"})
		return nil
	}
	g.entry(st, out, cnt, store.Entry{
		Partition: g.Partition, EdgeNode: in.EdgeNode, EdgeSeq: in.EdgeSeq, Provider: in.Provider, Tx: tx,
		RuleSet: res.Version.Hash(), Rule: res.Rule, Net: res.Net, Shares: res.Shares,
	}, hash, in.Now)
	// Reversals that arrived before this transaction apply right after it.
	held, err := st.Held(in.Provider, tx.ID)
	if err != nil {
		return err
	}
	for _, h := range held {
		st.Release(h)
		cnt.OrphansHeld--
		hin := Input{Provider: in.Provider, EdgeNode: h.EdgeNode, EdgeSeq: h.EdgeSeq, Payload: h.Payload, Now: in.Now}
		otx, rej := txn.Decode(h.Payload, Limits)
		if rej != nil {
			g.exception(out, cnt, hin, ExcUndecodable, rej.Error(), "")
			continue
		}
		cnt.OrphansReleased++
		parent, err := st.Dedup(in.Provider, tx.ID)
		if err != nil {
			return err
		}
		if err := g.reverse(st, out, cnt, hin, otx, parent); err != nil {
			return err
		}
	}
	return nil
}

// operator settles a correction (shares = its lines, net = Σ lines), an
// fx_rate or a payout_run (no shares, net 0). One that would not pass the store's and
// `tally verify`'s checks becomes an exception instead.
func (g Engine) operator(st State, out Sink, cnt *Counters, in Input, tx txn.Tx, hash [32]byte) error {
	e, err := OperatorEntry(tx, in.Now)
	if err != nil {
		g.exception(out, cnt, in, ExcUndecodable, fmt.Sprintf("%s %s is not a valid operator entry: %v", tx.Type, tx.ID, err), tx.ID)
		st.PutDedup(in.Provider, tx.ID, &DedupRec{Hash: hashBytes(hash), Partition: g.Partition, Currency: tx.Currency.Code, Net: "0"})
		return nil
	}
	e.Partition, e.EdgeNode, e.EdgeSeq, e.Provider = g.Partition, in.EdgeNode, in.EdgeSeq, in.Provider
	if tx.Type == txn.PayoutRun {
		p, _ := txn.ParsePayoutRun(tx) // OperatorEntry validated it: cannot fail
		for _, h := range p.Statements {
			by, err := st.Paid(h)
			if err != nil {
				return err
			}
			if by != "" {
				// Never pay twice: the whole run is refused, none of its
				// statements is recorded as paid by it.
				g.exception(out, cnt, in, ExcPaidTwice, fmt.Sprintf("statement %s is already paid by %s: payout run %s pays it again and is refused whole (%d statements)", h, by, p.Run, len(p.Statements)), tx.ID)
				st.PutDedup(in.Provider, tx.ID, &DedupRec{Hash: hashBytes(hash), Partition: g.Partition, Currency: tx.Currency.Code, Net: "0"})
				return nil
			}
		}
		for _, h := range p.Statements {
			st.PutPaid(h, tx.ID)
		}
	}
	g.entry(st, out, cnt, e, hash, in.Now)
	return nil
}

// OperatorEntry is the entry an operator transaction (correction, fx_rate,
// payout_run) settles as, from (_tally, _tally) at now: a correction's shares
// are its meta.lines in order and its net their sum, an fx_rate and a
// payout_run have no shares and net 0; rule = the type, rule set zero. It fails unless the entry encodes and
// passes store validation exactly as the ledger and `tally verify` will check
// it, so settle/oplog refuses to post what the engine would not settle.
func OperatorEntry(tx txn.Tx, now time.Time) (store.Entry, error) {
	e := store.Entry{EdgeNode: txn.OpsID, Provider: txn.OpsID, Tx: tx, Rule: string(tx.Type), Net: decimal.Zero, SettledAt: now.UTC()}
	switch tx.Type {
	case txn.Correction:
		c, err := txn.ParseCorrection(tx)
		if err != nil {
			return e, err
		}
		e.Shares, e.Net = c.Lines, c.Net()
	case txn.FXRate:
	case txn.PayoutRun:
	default:
		return e, fmt.Errorf("type %s is not an operator type", tx.Type)
	}
	if _, err := e.MarshalBinary(); err != nil {
		return e, err
	}
	return e, e.Validate()
}

// reverse applies a rollback or refund against its parent's recorded shares.
func (g Engine) reverse(st State, out Sink, cnt *Counters, in Input, tx txn.Tx, parent *DedupRec) error {
	hash := tx.Hash()
	in.Payload = tx.Canonical()
	reject := func(kind, reason string) {
		g.exception(out, cnt, in, kind, reason, tx.ID)
		st.PutDedup(in.Provider, tx.ID, &DedupRec{Hash: hashBytes(hash), Partition: g.Partition, Currency: tx.Currency.Code, Net: "0"})
	}
	if parent.Currency != tx.Currency.Code {
		reject(ExcCurrency, fmt.Sprintf("parent %s is in %s, reversal in %s", tx.Parent, parent.Currency, tx.Currency.Code))
		return nil
	}
	net, err := decimal.NewFromString(parent.Net)
	if err != nil {
		return fmt.Errorf("index: parent %s net: %w", tx.Parent, err)
	}
	reversed := decimal.Zero
	if parent.Reversed != "" {
		if reversed, err = decimal.NewFromString(parent.Reversed); err != nil {
			return fmt.Errorf("index: parent %s reversed: %w", tx.Parent, err)
		}
	}
	left := net.Abs().Sub(reversed)
	if tx.Amount.GreaterThan(left) {
		reject(ExcOverReversal, fmt.Sprintf("reverses %s of parent %s, only %s left", tx.Amount, tx.Parent, left))
		return nil
	}
	// Reverse what is left of the parent, so repeated partial reversals can
	// never give a party back more than it was given.
	leftRec := parent.Left
	if leftRec == nil {
		leftRec = parent.Shares
	}
	pshares := make([]money.Share, len(leftRec))
	for i, s := range leftRec {
		d, err := decimal.NewFromString(s[1])
		if err != nil {
			return fmt.Errorf("index: parent %s share: %w", tx.Parent, err)
		}
		pshares[i] = money.Share{Party: s[0], Amount: d}
	}
	shares, err := rules.Reverse(pshares, left, tx.Amount, tx.Currency)
	if err != nil {
		return fmt.Errorf("reverse %s: %w", tx.ID, err)
	}
	parent.Left = make([][2]string, len(pshares))
	for i, ps := range pshares {
		rest := ps.Amount
		for _, r := range shares {
			if r.Party == ps.Party {
				rest = rest.Add(r.Amount)
			}
		}
		parent.Left[i] = [2]string{ps.Party, rest.String()}
	}
	parent.Reversed = reversed.Add(tx.Amount).String()
	st.PutDedup(in.Provider, tx.Parent, parent)
	var rs [32]byte
	copy(rs[:], parent.RuleSet)
	g.entry(st, out, cnt, store.Entry{
		Partition: g.Partition, EdgeNode: in.EdgeNode, EdgeSeq: in.EdgeSeq, Provider: in.Provider, Tx: tx,
		RuleSet: rs, Net: money.Sum(shares), Shares: shares,
	}, hash, in.Now)
	return nil
}

func (g Engine) entry(st State, out Sink, cnt *Counters, e store.Entry, hash [32]byte, now time.Time) {
	if !money.SumEquals(e.Shares, e.Net) {
		// A split that does not sum is a bug in the rules engine, never rounded away.
		panic(fmt.Sprintf("settle: shares of %s/%s sum to %s, net is %s", e.Provider, e.Tx.ID, money.Sum(e.Shares), e.Net))
	}
	e.SettledAt = now.UTC()
	rec := entryRecord(&e, hash) // the record an index rebuilt from the ledger derives from the entry
	st.PutDedup(e.Provider, e.Tx.ID, &rec)
	cnt.Entries++
	out.Entry(e)
}

func (g Engine) exception(out Sink, cnt *Counters, in Input, kind, reason, id string) {
	cnt.Exceptions++
	out.Exception(Exception{Kind: kind, Reason: reason, Provider: in.Provider, ID: id, EdgeNode: in.EdgeNode, EdgeSeq: in.EdgeSeq, Payload: string(in.Payload), At: in.Now.UTC(), Partition: g.Partition})
}

// Expire turns reversals held since before now − timeout into exceptions
// (orphan_timeout). Their (provider, id) stays recorded: a resend is a
// duplicate, and the parent, if it ever arrives, settles alone.
func (g Engine) Expire(st State, out Sink, cnt *Counters, now time.Time, timeout time.Duration) error {
	all, err := st.Held("", "")
	if err != nil {
		return err
	}
	cutoff := now.Add(-timeout)
	for _, h := range all {
		if h.ReceivedAt.After(cutoff) {
			continue
		}
		st.Release(h)
		cnt.OrphansHeld--
		tx, _ := txn.Decode(h.Payload, Limits)
		in := Input{Provider: h.Provider, EdgeNode: h.EdgeNode, EdgeSeq: h.EdgeSeq, Payload: h.Payload, Now: now}
		g.exception(out, cnt, in, ExcOrphanTimout, fmt.Sprintf("parent %s not received within %s", tx.Parent, timeout), tx.ID)
	}
	return nil
}

// MemState is State in memory, for `tally rules eval` and tests. Not safe
// for concurrent use.
type MemState struct {
	dedup map[[2]string]DedupRec
	held  map[string]Held
	paid  map[string]string
}

// NewMemState returns an empty state.
func NewMemState() *MemState {
	return &MemState{dedup: map[[2]string]DedupRec{}, held: map[string]Held{}, paid: map[string]string{}}
}

// Paid implements State.
func (m *MemState) Paid(statement string) (string, error) { return m.paid[statement], nil }

// PutPaid implements State.
func (m *MemState) PutPaid(statement, by string) { m.paid[statement] = by }

// Dedup implements State.
func (m *MemState) Dedup(provider, id string) (*DedupRec, error) {
	r, ok := m.dedup[[2]string{provider, id}]
	if !ok {
		return nil, nil
	}
	return &r, nil
}

// PutDedup implements State.
func (m *MemState) PutDedup(provider, id string, r *DedupRec) { m.dedup[[2]string{provider, id}] = *r }

// Held implements State.
func (m *MemState) Held(provider, parent string) ([]Held, error) {
	prefix := ""
	if provider != "" {
		prefix = provider + "\x00" + parent + "\x00"
	}
	var out []Held
	for k, h := range m.held {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Hold implements State.
func (m *MemState) Hold(provider, parent, id string, o OrphanRec) {
	k := provider + "\x00" + parent + "\x00" + id
	m.held[k] = Held{Key: k, Provider: provider, OrphanRec: o}
}

// Release implements State.
func (m *MemState) Release(h Held) { delete(m.held, h.Key) }

// OpenOrphans is the number of reversals still waiting for their parent.
func (m *MemState) OpenOrphans() int { return len(m.held) }

// DedupRec is what the index remembers of a (provider, id) forever.
type DedupRec struct {
	Hash      []byte      `json:"h"`
	Held      bool        `json:"held,omitempty"` // a reversal waiting for its parent
	Partition uint32      `json:"p"`
	Index     uint64      `json:"i"`
	Currency  string      `json:"c"`
	Net       string      `json:"net"`
	Reversed  string      `json:"rev,omitempty"`  // absolute amount reversed so far
	Left      [][2]string `json:"left,omitempty"` // shares not yet reversed (absent: all of Shares)
	RuleSet   []byte      `json:"rs,omitempty"`
	Shares    [][2]string `json:"sh,omitempty"`
}

// OrphanRec is a reversal held until its parent arrives.
type OrphanRec struct {
	EdgeNode   string    `json:"node"`
	EdgeSeq    uint64    `json:"seq"`
	Payload    []byte    `json:"tx"`
	ReceivedAt time.Time `json:"at"`
}

// Counters are per-partition outcome counts, persisted with every commit.
type Counters struct {
	Entries         uint64 `json:"entries"`
	Segments        uint64 `json:"segments"`
	Duplicates      uint64 `json:"duplicates"`  // same (provider, id), same payload
	Redelivered     uint64 `json:"redelivered"` // records at or below the high-water mark
	Conflicts       uint64 `json:"conflicts"`
	OrphansHeld     uint64 `json:"orphans_held"` // reversals currently waiting for a parent
	OrphansReleased uint64 `json:"orphans_released"`
	Exceptions      uint64 `json:"exceptions"`
	Gaps            uint64 `json:"gaps"`
}

func (c *Counters) Add(o Counters) {
	c.Entries += o.Entries
	c.Segments += o.Segments
	c.Duplicates += o.Duplicates
	c.Redelivered += o.Redelivered
	c.Conflicts += o.Conflicts
	c.OrphansHeld += o.OrphansHeld
	c.OrphansReleased += o.OrphansReleased
	c.Exceptions += o.Exceptions
	c.Gaps += o.Gaps
}

// Exception is a transaction that was accepted upstream but could not be
// settled as is. It is kept with its payload for inspection and repair.
type Exception struct {
	Kind      string    `json:"kind"`
	Reason    string    `json:"reason"`
	Provider  string    `json:"provider"`
	ID        string    `json:"id"`
	EdgeNode  string    `json:"edge_node"`
	EdgeSeq   uint64    `json:"edge_seq"`
	Payload   string    `json:"payload"`
	At        time.Time `json:"at"`
	Partition uint32    `json:"partition"`
}

// Exception kinds recorded in the index and raised on tally.alert.exception.
const (
	ExcConflict     = "conflict"      // same (provider, id) as an applied tx, different payload
	ExcNoRule       = "no_rule"       // no rule version or rule matched
	ExcUndecodable  = "undecodable"   // a forwarded record failed canonical decoding
	ExcOverReversal = "over_reversal" // reversal larger than what is left of its parent
	ExcCurrency     = "currency"      // reversal currency differs from its parent
	ExcOrphanTimout = "orphan_timeout"
	// ExcReserved: an operator type (correction, fx_rate) from anyone but
	// (_tally, _tally), or anything else from it (a reversal of an
	// operator entry included).
	ExcReserved = "reserved"
	// ExcPaidTwice: a payout_run names a statement an earlier payout_run
	// entry (in the index, this commit or the one still landing) pays
	// already. The whole run is refused: no entry, no statement of it paid.
	ExcPaidTwice = "paid_twice"
)

// EntryRecord is the (provider, id) record an entry implies: what the engine
// writes when it settles it (Engine.entry), with its leaf index.
func EntryRecord(e *store.Entry) DedupRec { return entryRecord(e, e.Tx.Hash()) }

// entryRecord builds the record with three allocations whatever the number
// of shares: hash and rule set share one byte slice (copies, so the entry
// stays on its caller's stack), and the net and every share amount, each
// exactly Decimal.String (money.AppendString), are substrings of one string.
func entryRecord(e *store.Entry, hash [32]byte) DedupRec {
	hr := make([]byte, 64)
	copy(hr, hash[:])
	copy(hr[32:], e.RuleSet[:])
	var buf [128]byte
	var endsBuf [16]int
	b := money.AppendString(buf[:0], e.Net)
	ends := append(endsBuf[:0], len(b))
	for _, s := range e.Shares {
		b = money.AppendString(b, s.Amount)
		ends = append(ends, len(b))
	}
	figures := string(b)
	sh := make([][2]string, len(e.Shares))
	for i, s := range e.Shares {
		sh[i] = [2]string{s.Party, figures[ends[i]:ends[i+1]]}
	}
	return DedupRec{Hash: hr[:32:32], Partition: e.Partition, Index: e.Index, Currency: e.Tx.Currency.Code, Net: figures[:ends[0]], RuleSet: hr[32:64:64], Shares: sh}
}

// hashBytes is a heap copy of h for a record. Slicing the caller's array
// instead would move it to the heap on every path, the common one included.
func hashBytes(h [32]byte) []byte { return append([]byte(nil), h[:]...) }
