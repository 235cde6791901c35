package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// RulesDir is the directory, inside a ledger directory or an export, holding
// every rule-set version the settle node used: <sha256 hex>.json, the
// version's canonical encoding (rules.Version.Canonical).
const RulesDir = "rules"

// BalancesFile is the name, in an export, of the settle index's committed
// balances per partition (a JSON Balances).
const BalancesFile = "balances.json"

// maxRuleFile bounds one recorded rule set.
const maxRuleFile = rules.MaxSourceBytes

// Balances is the settle index's committed state: per partition, the
// number of segments committed and the balances they produced.
type Balances struct {
	Source     string                     `json:"source,omitempty"` // where they were read, for reports
	Partitions []settle.PartitionBalances `json:"partitions"`
}

// Options configure Verify.
type Options struct {
	Key      string       // pinned verifier key ("" = the ledger's verifier.key)
	Progress func(string) // may be nil
	Trusted  [][]byte     // checkpoints kept from earlier audits (store.VerifyOptions.Trusted)
	// Balances, if not nil, are checked against the entries.
	Balances *Balances
}

// Report is what Verify checked.
type Report struct {
	store.Report
	RuleSets  int    // recorded rule-set versions loaded
	Splits    uint64 // entries whose split was recomputed and matched
	Reversals uint64 // reversals recomputed from their parent and matched
	// Corrections and FXRates count the operator entries (approved
	// adjustments, FX rates) recomputed from their meta (store
	// Entry.Validate: lines, approvers; pair, rate).
	Corrections uint64
	FXRates     uint64
	// PayoutRuns counts the payout_run entries (txn.ParsePayoutRun) and
	// PaidStatements the statements they pay; no statement is paid by two
	// of them (ErrPaidTwice otherwise).
	PayoutRuns     uint64
	PaidStatements uint64
	// BalancesChecked lists the partitions whose index balances were
	// compared with the entries; empty when no balances were given.
	BalancesChecked []uint32
	BalancesSource  string
}

// Verify audits the ledger (or export) in dir: store.VerifyWith plus the
// checks the package doc lists. It stops at the first problem.
func Verify(dir string, o Options) (Report, error) {
	var rep Report
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	versions, book, err := LoadRuleSets(dir)
	if err != nil {
		return rep, err
	}
	rep.RuleSets = len(versions)
	progress(fmt.Sprintf("rules: %d recorded rule-set versions", len(versions)))
	rp := &replay{versions: versions, book: book, seen: map[[2]string]*applied{}, paid: map[string]paidBy{}, sums: map[uint32]map[[2]string]decimal.Decimal{}, upTo: map[uint32]uint64{}}
	if o.Balances != nil {
		for _, pb := range o.Balances.Partitions {
			rp.upTo[pb.Partition] = pb.Segments
		}
	}
	sr, err := store.VerifyWith(dir, store.VerifyOptions{Key: o.Key, Progress: progress, Trusted: o.Trusted, Entry: rp.entry})
	rep.Report = sr
	rep.Splits, rep.Reversals = rp.splits, rp.reversals
	rep.Corrections, rep.FXRates = rp.corrections, rp.fxRates
	rep.PayoutRuns, rep.PaidStatements = rp.payoutRuns, uint64(len(rp.paid))
	if err != nil {
		return rep, err
	}
	if o.Balances != nil {
		rep.BalancesSource = o.Balances.Source
		if err := rp.checkBalances(sr, o.Balances); err != nil {
			return rep, err
		}
		for _, pb := range o.Balances.Partitions {
			rep.BalancesChecked = append(rep.BalancesChecked, pb.Partition)
		}
		progress(fmt.Sprintf("balances: %d partitions match the sum of their entries", len(rep.BalancesChecked)))
	}
	return rep, nil
}

// LoadRuleSets reads every recorded rule-set version in dir/rules: the file
// name must be the SHA-256 of its content, which must be a canonical version
// encoding. The versions must form one book (unique names and effective
// times), so that "the version in force" is defined.
func LoadRuleSets(dir string) (map[[32]byte]*rules.Version, *rules.Book, error) {
	out := map[[32]byte]*rules.Version{}
	des, err := os.ReadDir(filepath.Join(dir, RulesDir))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("rules: %w", err)
	}
	var vs []*rules.Version
	for _, de := range des {
		name := de.Name()
		stem, ok := strings.CutSuffix(name, ".json")
		if !ok || de.IsDir() {
			continue
		}
		path := filepath.Join(dir, RulesDir, name)
		want, err := hex.DecodeString(stem)
		if err != nil || len(want) != 32 || hex.EncodeToString(want) != stem {
			return nil, nil, fmt.Errorf("rules: %s is not named <sha256 hex>.json", path)
		}
		st, err := de.Info()
		if err != nil {
			return nil, nil, fmt.Errorf("rules: %w", err)
		}
		if st.Size() > maxRuleFile {
			return nil, nil, fmt.Errorf("rules: %s is %d bytes, limit is %d", path, st.Size(), maxRuleFile)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("rules: %w", err)
		}
		if sum := sha256.Sum256(b); !slices.Equal(sum[:], want) {
			return nil, nil, fmt.Errorf("rules: %s has SHA-256 %x: the recorded rule set was changed: %w", path, sum, store.ErrCorrupt)
		}
		v, err := rules.ParseCanonical(b)
		if err != nil {
			return nil, nil, fmt.Errorf("rules: %s: %w", path, err)
		}
		out[v.Hash()] = v
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return out, nil, nil
	}
	book, err := rules.NewBook(vs...)
	if err != nil {
		return nil, nil, fmt.Errorf("rules: the recorded versions in %s do not form one book, so the version in force is ambiguous: %w", filepath.Join(dir, RulesDir), err)
	}
	return out, book, nil
}

// applied is what the replay remembers of a settled (provider, id), as the
// settle index does: enough to recompute a later reversal of it.
type applied struct {
	partition uint32
	index     uint64
	currency  string
	net       decimal.Decimal
	left      []money.Share // shares not yet reversed
	reversed  decimal.Decimal
	ruleSet   [32]byte
	operator  bool // a correction or fx_rate: never a parent
}

// payoutRun records the statements a payout_run entry pays and fails when
// an earlier one (in verification order) paid any of them already: the
// never-pay-twice check, from the ledger alone.
func (r *replay) payoutRun(seg uint64, e *store.Entry) error {
	p, err := txn.ParsePayoutRun(e.Tx) // Entry.Validate parsed it already: cannot fail here
	if err != nil {
		return fmt.Errorf("payout_run %s at partition %d entry %d: %w", e.Tx.ID, e.Partition, e.Index, err)
	}
	r.payoutRuns++
	for _, h := range p.Statements {
		if prev, ok := r.paid[h]; ok {
			return &store.CorruptError{Partition: e.Partition, Segment: seg, Index: int64(e.Index), Err: ErrPaidTwice,
				Reason: fmt.Sprintf("statement %s is paid by %s (partition %d entry %d) and again by %s (partition %d entry %d)",
					h, prev.run, prev.partition, prev.index, p.Run, e.Partition, e.Index)}
		}
		r.paid[h] = paidBy{run: p.Run, partition: e.Partition, index: e.Index}
	}
	return nil
}

// replay re-runs settlement over the ledger's entries, in order.
type replay struct {
	versions map[[32]byte]*rules.Version
	book     *rules.Book
	seen     map[[2]string]*applied
	upTo     map[uint32]uint64                        // committed segments per partition (balances check)
	sums     map[uint32]map[[2]string]decimal.Decimal // Σ shares up to upTo, per (party, currency)

	paid map[string]paidBy // statement hash → the payout_run entry that pays it

	splits, reversals    uint64
	corrections, fxRates uint64
	payoutRuns           uint64
}

// paidBy is the payout_run entry that pays a statement.
type paidBy struct {
	run       string
	partition uint32
	index     uint64
}

// ErrPaidTwice means two payout_run entries of the ledger pay the same
// statement: a balance paid twice.
var ErrPaidTwice = errors.New("statement paid twice")

func (r *replay) entry(seg uint64, e *store.Entry) error {
	key := [2]string{e.Provider, e.Tx.ID}
	if prev := r.seen[key]; prev != nil {
		return fmt.Errorf("(provider, id) %s/%s is settled twice: first at partition %d entry %d", e.Provider, e.Tx.ID, prev.partition, prev.index)
	}
	var err error
	switch {
	case e.Tx.Type.Operator():
		// store.VerifyWith ran Entry.Validate on it: recomputed from its
		// meta already (lines, approvers; pair, rate; statements, maker-checker).
		switch e.Tx.Type {
		case txn.Correction:
			r.corrections++
		case txn.FXRate:
			r.fxRates++
		case txn.PayoutRun:
			if err := r.payoutRun(seg, e); err != nil {
				return err
			}
		}
		r.seen[key] = &applied{partition: e.Partition, index: e.Index, currency: e.Tx.Currency.Code, net: e.Net, left: e.Shares, operator: true}
	case e.Tx.Type.Reversal():
		err = r.reverse(e)
	default:
		err = r.split(e)
	}
	if err != nil {
		return err
	}
	if seg <= r.upTo[e.Partition] {
		m := r.sums[e.Partition]
		if m == nil {
			m = map[[2]string]decimal.Decimal{}
			r.sums[e.Partition] = m
		}
		for _, s := range e.Shares {
			k := [2]string{s.Party, e.Tx.Currency.Code}
			m[k] = m[k].Add(s.Amount)
		}
	}
	return nil
}

func (r *replay) split(e *store.Entry) (err error) {
	v := r.versions[e.RuleSet]
	if v == nil {
		return fmt.Errorf("%s/%s records rule set %x, which is not in %s/: its split cannot be recomputed", e.Provider, e.Tx.ID, e.RuleSet, RulesDir)
	}
	if r.book != nil {
		inForce, err := r.book.At(e.Tx.OccurredAt)
		if err != nil {
			return fmt.Errorf("%s/%s occurred at %s, before every recorded rule set: %v", e.Provider, e.Tx.ID, e.Tx.OccurredAt.Format("2006-01-02T15:04:05.999999999Z07:00"), err)
		}
		if inForce.Hash() != e.RuleSet {
			h := inForce.Hash()
			return fmt.Errorf("%s/%s occurred at %s and was split by rule set %q (%x), but %q (%x) was in force then", e.Provider, e.Tx.ID, e.Tx.OccurredAt.Format("2006-01-02T15:04:05.999999999Z07:00"), v.Name, e.RuleSet[:8], inForce.Name, h[:8])
		}
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s/%s: recomputing the split panicked: %v", e.Provider, e.Tx.ID, p)
		}
	}()
	res, err := v.Split(e.Provider, e.Tx)
	if err != nil {
		return fmt.Errorf("%s/%s: rule set %q cannot split it: %v", e.Provider, e.Tx.ID, v.Name, err)
	}
	if res.Rule != e.Rule {
		return fmt.Errorf("%s/%s records rule %q, rule set %q gives rule %q", e.Provider, e.Tx.ID, e.Rule, v.Name, res.Rule)
	}
	if d := diffShares(e.Shares, res.Shares); d != "" {
		return fmt.Errorf("%s/%s: recorded shares differ from rule %q of %q: %s", e.Provider, e.Tx.ID, e.Rule, v.Name, d)
	}
	r.splits++
	r.seen[[2]string{e.Provider, e.Tx.ID}] = &applied{partition: e.Partition, index: e.Index, currency: e.Tx.Currency.Code,
		net: e.Net, left: e.Shares, ruleSet: e.RuleSet}
	return nil
}

func (r *replay) reverse(e *store.Entry) (err error) {
	parent := r.seen[[2]string{e.Provider, e.Tx.Parent}]
	switch {
	case parent == nil:
		return fmt.Errorf("%s/%s reverses %s, which is not in the ledger before it", e.Provider, e.Tx.ID, e.Tx.Parent)
	case parent.operator:
		return fmt.Errorf("%s/%s reverses %s, an operator entry: those are never reversed (a new correction corrects them)", e.Provider, e.Tx.ID, e.Tx.Parent)
	case parent.currency != e.Tx.Currency.Code:
		return fmt.Errorf("%s/%s is in %s, its parent %s in %s", e.Provider, e.Tx.ID, e.Tx.Currency.Code, e.Tx.Parent, parent.currency)
	case e.RuleSet != parent.ruleSet:
		return fmt.Errorf("%s/%s records rule set %x, its parent %s was split by %x", e.Provider, e.Tx.ID, e.RuleSet, e.Tx.Parent, parent.ruleSet)
	case e.Rule != "":
		return fmt.Errorf("%s/%s is a reversal but records rule %q", e.Provider, e.Tx.ID, e.Rule)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s/%s: recomputing the reversal panicked: %v", e.Provider, e.Tx.ID, p)
		}
	}()
	left := parent.net.Abs().Sub(parent.reversed)
	want, err := rules.Reverse(parent.left, left, e.Tx.Amount, e.Tx.Currency)
	if err != nil {
		return fmt.Errorf("%s/%s: reversing %s of what is left (%s) of %s: %v", e.Provider, e.Tx.ID, e.Tx.Amount, left, e.Tx.Parent, err)
	}
	if d := diffShares(e.Shares, want); d != "" {
		return fmt.Errorf("%s/%s: recorded shares differ from the reversal of %s's recorded shares: %s", e.Provider, e.Tx.ID, e.Tx.Parent, d)
	}
	// What is left of the parent, party by party, as the settle worker keeps it.
	rest := make([]money.Share, len(parent.left))
	for i, ps := range parent.left {
		a := ps.Amount
		for _, s := range want {
			if s.Party == ps.Party {
				a = a.Add(s.Amount)
			}
		}
		rest[i] = money.Share{Party: ps.Party, Amount: a}
	}
	parent.left, parent.reversed = rest, parent.reversed.Add(e.Tx.Amount)
	r.reversals++
	r.seen[[2]string{e.Provider, e.Tx.ID}] = &applied{partition: e.Partition, index: e.Index, currency: e.Tx.Currency.Code,
		net: e.Net, left: e.Shares, ruleSet: e.RuleSet}
	return nil
}

// diffShares describes the first difference between recorded and
// recomputed shares, or returns "".
func diffShares(got, want []money.Share) string {
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			return fmt.Sprintf("share %d (%s %s) is missing", i, want[i].Party, want[i].Amount)
		case i >= len(want):
			return fmt.Sprintf("share %d (%s %s) is extra", i, got[i].Party, got[i].Amount)
		case got[i].Party != want[i].Party || !got[i].Amount.Equal(want[i].Amount):
			return fmt.Sprintf("share %d is %s %s, recomputed %s %s", i, got[i].Party, got[i].Amount, want[i].Party, want[i].Amount)
		}
	}
	return ""
}

func (r *replay) checkBalances(rep store.Report, b *Balances) error {
	segs := map[uint32]uint64{}
	for _, pr := range rep.Partitions {
		segs[pr.Partition] = pr.Segments
	}
	listed := map[uint32]bool{}
	for _, pb := range b.Partitions {
		listed[pb.Partition] = true
		have, ok := segs[pb.Partition]
		if !ok || pb.Segments > have {
			return &store.CorruptError{Partition: pb.Partition, Segment: pb.Segments, Index: -1,
				Reason: fmt.Sprintf("the settle index committed %d segments, the ledger has %d", pb.Segments, have), Err: store.ErrCorrupt}
		}
		got := r.sums[pb.Partition]
		want := map[[2]string]decimal.Decimal{}
		for _, bal := range pb.Balances {
			want[[2]string{bal.Party, bal.Currency}] = bal.Amount
		}
		keys := map[[2]string]bool{}
		for k := range got {
			keys[k] = true
		}
		for k := range want {
			keys[k] = true
		}
		sorted := make([][2]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		slices.SortFunc(sorted, func(a, b [2]string) int {
			if c := strings.Compare(a[0], b[0]); c != 0 {
				return c
			}
			return strings.Compare(a[1], b[1])
		})
		for _, k := range sorted {
			if !got[k].Equal(want[k]) {
				return &store.CorruptError{Partition: pb.Partition, Segment: pb.Segments, Index: -1,
					Reason: fmt.Sprintf("balance of %s in %s is %s in the settle index (%s), the entries of segments 1..%d sum to %s", k[0], k[1], want[k], b.Source, pb.Segments, got[k]), Err: store.ErrCorrupt}
			}
		}
	}
	for _, pr := range rep.Partitions {
		if pr.Segments > 0 && !listed[pr.Partition] {
			return &store.CorruptError{Partition: pr.Partition, Segment: pr.Segments, Index: -1,
				Reason: fmt.Sprintf("the settle index (%s) has no committed segments for this partition, the ledger has %d", b.Source, pr.Segments), Err: store.ErrCorrupt}
		}
	}
	return nil
}
