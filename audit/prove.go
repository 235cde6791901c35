package audit

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/store/merkle"
)

// ErrNotSigned is returned for an entry (or a size) that no signed
// checkpoint covers yet; ask again after the next checkpoint.
var ErrNotSigned = errors.New("not covered by a signed checkpoint yet")

// ErrBadProof is returned when a proof computed from the node's hash cache
// does not verify against the signed root (a damaged cache): it is never
// handed out. Prove again from the segments (store.OpenReader with noCache).
var ErrBadProof = errors.New("computed proof does not verify against the signed root")

// ProofSource serves entries and proofs: a live *store.Ledger or a
// *store.Reader over a ledger directory or an export.
type ProofSource interface {
	Checkpoint(p uint32) []byte
	Entry(p uint32, i uint64) (store.Entry, uint64, error)
	InclusionProof(p uint32, index, size uint64) ([][32]byte, error)
	ConsistencyProof(p uint32, size1, size2 uint64) ([][32]byte, error)
	RootAt(p uint32, size uint64) ([32]byte, error)
}

var (
	_ ProofSource = (*store.Ledger)(nil)
	_ ProofSource = (*store.Reader)(nil)
)

// InclusionProof is `tally prove`'s output and the audit API's answer: an
// entry, its RFC 6962 inclusion proof in the tree of the partition's last
// signed checkpoint, and the same as a C2SP tlog-proof receipt. Hashes are
// standard base64, as in checkpoints.
type InclusionProof struct {
	Origin     string    `json:"origin"`
	Partition  uint32    `json:"partition"`
	Index      uint64    `json:"index"`
	Segment    uint64    `json:"segment"`
	TreeSize   uint64    `json:"tree_size"`
	Root       string    `json:"root"`
	LeafHash   string    `json:"leaf_hash"`
	EntryHex   string    `json:"entry_hex"` // the canonical entry bytes: the leaf data
	Entry      EntryView `json:"entry"`
	Proof      []string  `json:"proof"` // leaf's sibling first
	Checkpoint string    `json:"checkpoint"`
	Receipt    string    `json:"receipt"` // c2sp.org/tlog-proof@v1
	// VerifierKey checks Checkpoint and Receipt with a stock C2SP verifier:
	// the ledger key's public key named like the checkpoint's signature
	// line (the origin; the stem for checkpoints signed before tally named
	// keys after origins). Set by AddVerifierKey; empty when unknown.
	VerifierKey string `json:"verifier_key,omitempty"`
}

// AddVerifierKey sets pr.VerifierKey from the ledger's verifier key (or the
// partition's), after checking the checkpoint's signature with it.
func (pr *InclusionProof) AddVerifierKey(ledgerKey string) error {
	k, err := store.CheckpointVerifierKey([]byte(pr.Checkpoint), ledgerKey)
	if err != nil {
		return fmt.Errorf("partition %d checkpoint does not verify with %s: %w", pr.Partition, ledgerKey, err)
	}
	pr.VerifierKey = k
	return nil
}

// ConsistencyProof proves that the tree at From is a prefix of the tree at To.
type ConsistencyProof struct {
	Origin     string   `json:"origin"`
	Partition  uint32   `json:"partition"`
	From       uint64   `json:"from"`
	To         uint64   `json:"to"`
	RootFrom   string   `json:"root_from"`
	RootTo     string   `json:"root_to"`
	Proof      []string `json:"proof"`
	Checkpoint string   `json:"checkpoint,omitempty"` // the signed checkpoint at To, when To is its size
}

// EntryView is an entry for people: amounts with their currency's decimals,
// times in RFC 3339, hashes in hex.
type EntryView struct {
	Partition    uint32            `json:"partition"`
	Index        uint64            `json:"index"`
	EdgeNode     string            `json:"edge_node"`
	EdgeSeq      uint64            `json:"edge_seq"`
	Provider     string            `json:"provider"`
	ID           string            `json:"id"`
	Type         string            `json:"type"`
	Amount       string            `json:"amount"`
	Currency     string            `json:"currency"`
	OccurredAt   string            `json:"occurred_at"`
	Round        string            `json:"round,omitempty"`
	Parent       string            `json:"parent,omitempty"`
	Seq          uint64            `json:"seq,omitempty"`
	Game         string            `json:"game,omitempty"`
	Category     string            `json:"category,omitempty"`
	Jurisdiction string            `json:"jurisdiction,omitempty"`
	Brand        string            `json:"brand,omitempty"`
	Affiliate    string            `json:"affiliate,omitempty"`
	Player       string            `json:"player,omitempty"`
	Meta         map[string]string `json:"meta,omitempty"`
	RuleSet      string            `json:"rule_set"`
	Rule         string            `json:"rule,omitempty"`
	Net          string            `json:"net"`
	Shares       []ShareView       `json:"shares"`
	SettledAt    string            `json:"settled_at"`
}

// ShareView is one party's share.
type ShareView struct {
	Party  string `json:"party"`
	Amount string `json:"amount"`
}

// View renders e for people.
func View(e store.Entry) EntryView {
	c := e.Tx.Currency
	v := EntryView{
		Partition: e.Partition, Index: e.Index, EdgeNode: e.EdgeNode, EdgeSeq: e.EdgeSeq, Provider: e.Provider,
		ID: e.Tx.ID, Type: string(e.Tx.Type), Amount: c.Format(e.Tx.Amount), Currency: c.Code,
		OccurredAt: e.Tx.OccurredAt.UTC().Format(time.RFC3339Nano), Round: e.Tx.Round, Parent: e.Tx.Parent,
		Seq: e.Tx.Seq, Game: e.Tx.Game, Category: e.Tx.Category, Jurisdiction: e.Tx.Jurisdiction,
		Brand: e.Tx.Brand, Affiliate: e.Tx.Affiliate, Player: e.Tx.Player, Meta: e.Tx.Meta,
		RuleSet: hex.EncodeToString(e.RuleSet[:]), Rule: e.Rule, Net: c.Format(e.Net),
		SettledAt: e.SettledAt.UTC().Format(time.RFC3339Nano), Shares: []ShareView{},
	}
	for _, s := range e.Shares {
		v.Shares = append(v.Shares, ShareView{Party: s.Party, Amount: c.Format(s.Amount)})
	}
	return v
}

func b64(h [32]byte) string { return base64.StdEncoding.EncodeToString(h[:]) }

func b64s(hs [][32]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = b64(h)
	}
	return out
}

// signed returns partition p's last signed checkpoint, parsed.
func signed(src ProofSource, p uint32) ([]byte, store.Checkpoint, error) {
	msg := src.Checkpoint(p)
	if msg == nil {
		return nil, store.Checkpoint{}, fmt.Errorf("partition %d has no signed checkpoint: %w", p, ErrNotSigned)
	}
	ck, err := store.ParseCheckpointNote(msg)
	if err != nil {
		return nil, ck, fmt.Errorf("partition %d checkpoint: %w", p, err)
	}
	return msg, ck, nil
}

// Prove returns the inclusion proof of leaf index of partition p in the tree
// of the partition's last signed checkpoint. The proof is verified against
// the signed root before it is returned (ErrBadProof if it does not).
func Prove(src ProofSource, p uint32, index uint64) (InclusionProof, error) {
	var out InclusionProof
	msg, ck, err := signed(src, p)
	if err != nil {
		return out, err
	}
	if index >= ck.Size {
		return out, fmt.Errorf("partition %d entry %d: the last checkpoint covers %d entries: %w", p, index, ck.Size, ErrNotSigned)
	}
	e, seg, err := src.Entry(p, index)
	if err != nil {
		return out, err
	}
	raw, err := e.MarshalBinary()
	if err != nil {
		return out, fmt.Errorf("partition %d entry %d: %w", p, index, err)
	}
	path, err := src.InclusionProof(p, index, ck.Size)
	if err != nil {
		return out, err
	}
	leaf := merkle.HashLeaf(raw)
	if err := merkle.VerifyInclusion(index, ck.Size, leaf, path, ck.Root); err != nil {
		return out, fmt.Errorf("partition %d entry %d: %v: %w", p, index, err, ErrBadProof)
	}
	return InclusionProof{
		Origin: ck.Origin, Partition: p, Index: index, Segment: seg, TreeSize: ck.Size, Root: b64(ck.Root),
		LeafHash: b64(leaf), EntryHex: hex.EncodeToString(raw), Entry: View(e), Proof: b64s(path),
		Checkpoint: string(msg),
		Receipt:    string(store.Receipt{Index: index, Proof: path, Checkpoint: msg}.Marshal()),
	}, nil
}

// Consistency returns the consistency proof of partition p from size from
// to size to; to == 0 means the last signed checkpoint's size. Both sizes
// must be covered by the signed checkpoint. The proof is verified before it
// is returned.
func Consistency(src ProofSource, p uint32, from, to uint64) (ConsistencyProof, error) {
	var out ConsistencyProof
	msg, ck, err := signed(src, p)
	if err != nil {
		return out, err
	}
	if to == 0 {
		to = ck.Size
	}
	switch {
	case from > to:
		return out, fmt.Errorf("consistency from %d to %d: from is larger: %w", from, to, merkle.ErrRange)
	case to > ck.Size:
		return out, fmt.Errorf("partition %d size %d: the last checkpoint covers %d entries: %w", p, to, ck.Size, ErrNotSigned)
	}
	r1, err := src.RootAt(p, from)
	if err != nil {
		return out, err
	}
	r2, err := src.RootAt(p, to)
	if err != nil {
		return out, err
	}
	if to == ck.Size && r2 != ck.Root {
		return out, fmt.Errorf("partition %d: root %x at size %d, the checkpoint says %x: %w", p, r2, to, ck.Root, ErrBadProof)
	}
	path, err := src.ConsistencyProof(p, from, to)
	if err != nil {
		return out, err
	}
	if err := merkle.VerifyConsistency(from, to, path, r1, r2); err != nil {
		return out, fmt.Errorf("partition %d %d → %d: %v: %w", p, from, to, err, ErrBadProof)
	}
	out = ConsistencyProof{Origin: ck.Origin, Partition: p, From: from, To: to, RootFrom: b64(r1), RootTo: b64(r2), Proof: b64s(path)}
	if to == ck.Size {
		out.Checkpoint = string(msg)
	}
	return out, nil
}

// LookupFunc says where (provider, id) was settled, as settle.Index.Lookup
// does: found is false for an id never seen; held is true for a reversal
// still waiting for its parent.
type LookupFunc func(provider, id string) (partition uint32, index uint64, held, found bool, err error)

// ProveID proves the entry of (provider, id), found with lookup. The entry
// at the index found must carry that (provider, id): an id the index knows
// but that never reached the ledger (an exception, a held reversal) is
// store.ErrNotFound.
func ProveID(src ProofSource, lookup LookupFunc, provider, id string) (InclusionProof, error) {
	p, i, held, found, err := lookup(provider, id)
	switch {
	case err != nil:
		return InclusionProof{}, fmt.Errorf("look up %s/%s: %w", provider, id, err)
	case !found:
		return InclusionProof{}, fmt.Errorf("%s/%s was never settled: %w", provider, id, store.ErrNotFound)
	case held:
		return InclusionProof{}, fmt.Errorf("%s/%s is a reversal held until its parent arrives, not in the ledger yet: %w", provider, id, store.ErrNotFound)
	}
	e, _, err := src.Entry(p, i)
	if err != nil {
		if errors.Is(err, merkle.ErrRange) {
			return InclusionProof{}, fmt.Errorf("%s/%s: %w", provider, id, ErrNotSigned)
		}
		return InclusionProof{}, err
	}
	if e.Provider != provider || e.Tx.ID != id {
		return InclusionProof{}, fmt.Errorf("%s/%s was not settled into the ledger (it is recorded as an exception): %w", provider, id, store.ErrNotFound)
	}
	return Prove(src, p, i)
}
