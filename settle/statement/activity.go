package statement

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// Roots gives every entry the transaction it counts as: itself, or for a
// rollback or refund the root of its parent (so a rolled-back slot bet
// reduces slot stakes, whatever the rollback itself carries). Entries must be
// in ledger order: a reversal is always settled after its parent, in the
// parent's partition. A reversal whose parent is not among entries is its
// own root.
func Roots(entries []store.Entry) []txn.Tx {
	root := make(map[[2]string]int, len(entries))
	out := make([]txn.Tx, len(entries))
	for i, e := range entries {
		out[i] = e.Tx
		if e.Tx.Type.Reversal() {
			if p, ok := root[[2]string{e.Provider, e.Tx.Parent}]; ok {
				out[i] = out[p]
			}
		}
		root[[2]string{e.Provider, e.Tx.ID}] = i
	}
	return out
}

// BaseTypes is the type of every entry's root (Roots).
func BaseTypes(entries []store.Entry) []txn.Type {
	roots := Roots(entries)
	out := make([]txn.Type, len(roots))
	for i, r := range roots {
		out[i] = r.Type
	}
	return out
}

// Gaming is the GGR and NGR of a set of entries of one currency.
type Gaming struct {
	Stakes    decimal.Decimal // bets, net of their rollbacks and refunds
	Wins      decimal.Decimal // wins, net of their reversals; ≥ 0 for ordinary traffic
	GGR       decimal.Decimal // Stakes − Wins
	Bets      int             // bet entries
	WinCount  int             // win entries
	Reversals int             // rollback and refund entries of bets or wins

	// The deductions from GGR to NGR, each net of its reversals.
	Bonuses  decimal.Decimal // bonus_cost amounts
	Jackpots decimal.Decimal // jackpot_contribution amounts
	Taxes    decimal.Decimal // tax amounts
	NGR      decimal.Decimal // GGR − Bonuses − Jackpots − Taxes

	Deposits decimal.Decimal // deposit amounts, net of their reversals
}

// Add counts entry e whose base type is base. bet and win (and their
// reversals) make GGR; bonus_cost, jackpot_contribution and tax (and their
// reversals) are the deductions to NGR; other types are ignored.
func (g *Gaming) Add(base txn.Type, e store.Entry) {
	switch base {
	case txn.Deposit: // not part of GGR or NGR
		g.Deposits = g.Deposits.Add(e.Net)
		return
	case txn.Bet:
		g.Stakes = g.Stakes.Add(e.Net)
	case txn.Win:
		g.Wins = g.Wins.Sub(e.Net)
	case txn.BonusCost: // money out: Net ≤ 0, its reversal > 0
		g.Bonuses = g.Bonuses.Sub(e.Net)
		g.NGR = g.GGR.Sub(g.Bonuses).Sub(g.Jackpots).Sub(g.Taxes)
		return
	case txn.JackpotContribution: // money in, but set aside for the jackpot
		g.Jackpots = g.Jackpots.Add(e.Net)
		g.NGR = g.GGR.Sub(g.Bonuses).Sub(g.Jackpots).Sub(g.Taxes)
		return
	case txn.Tax:
		g.Taxes = g.Taxes.Sub(e.Net)
		g.NGR = g.GGR.Sub(g.Bonuses).Sub(g.Jackpots).Sub(g.Taxes)
		return
	default:
		return
	}
	switch {
	case e.Tx.Type.Reversal():
		g.Reversals++
	case base == txn.Bet:
		g.Bets++
	default:
		g.WinCount++
	}
	g.GGR = g.Stakes.Sub(g.Wins)
	g.NGR = g.GGR.Sub(g.Bonuses).Sub(g.Jackpots).Sub(g.Taxes)
}

// Basis is the figure a fee basis names: GGR, NGR or turnover (stakes).
func (g *Gaming) Basis(basis string) decimal.Decimal {
	switch basis {
	case rules.BasisNGR:
		return g.NGR
	case rules.BasisStakes:
		return g.Stakes
	case rules.BasisDeposits:
		return g.Deposits
	}
	return g.GGR
}

// firstDeposits finds every player's first deposit: the earliest deposit
// entry of the player by event time (ledger order on a tie), in any
// currency; its amount net of the reversals in entries; and when the player
// was first seen (its earliest entry of any type). Players are named by the
// transaction's player field; entries without one are not players.
type firstDeposits struct {
	entry     map[string]int // player → index of its first deposit
	revs      map[int][]int  // deposit index → indices of its reversals, in ledger order
	firstSeen map[string]time.Time
}

func findFirstDeposits(entries []store.Entry) *firstDeposits {
	fd := &firstDeposits{entry: map[string]int{}, revs: map[int][]int{}, firstSeen: map[string]time.Time{}}
	rootIdx := make(map[[2]string]int, len(entries))
	root := make([]int, len(entries))
	for i, e := range entries {
		root[i] = i
		if e.Tx.Type.Reversal() {
			if p, ok := rootIdx[[2]string{e.Provider, e.Tx.Parent}]; ok {
				root[i] = root[p]
			}
		}
		rootIdx[[2]string{e.Provider, e.Tx.ID}] = i
		if p := e.Tx.Player; p != "" {
			if t, ok := fd.firstSeen[p]; !ok || e.Tx.OccurredAt.Before(t) {
				fd.firstSeen[p] = e.Tx.OccurredAt
			}
		}
		if e.Tx.Type == txn.Deposit && e.Tx.Player != "" {
			if j, ok := fd.entry[e.Tx.Player]; !ok || e.Tx.OccurredAt.Before(entries[j].Tx.OccurredAt) {
				fd.entry[e.Tx.Player] = i
			}
		}
	}
	for i := range entries {
		if r := root[i]; r != i && entries[r].Tx.Type == txn.Deposit {
			fd.revs[r] = append(fd.revs[r], i)
		}
	}
	return fd
}

// net is deposit d's amount net of its reversals that count under rule c
// (all of them without a clawback window, else those within it) and that
// in selects (the ledger a statement saw).
func (fd *firstDeposits) net(entries []store.Entry, d int, c rules.CPA, in func(store.Entry) bool) decimal.Decimal {
	n := entries[d].Net
	for _, i := range fd.revs[d] {
		if r := entries[i]; in(r) && c.Counts(entries[d].Tx.OccurredAt, r.Tx.OccurredAt) {
			n = n.Add(r.Net)
		}
	}
	return n
}

func anyEntry(store.Entry) bool { return true }

// qualifies reports whether entry i is the first deposit of its player and
// qualifies under rule c; conv turns the deposit's net (in its currency)
// into the rule's currency.
func (fd *firstDeposits) qualifies(entries []store.Entry, i int, c rules.CPA, conv func(decimal.Decimal) (decimal.Decimal, error)) (bool, error) {
	e := entries[i]
	if e.Tx.Type != txn.Deposit || e.Tx.Player == "" || fd.entry[e.Tx.Player] != i {
		return false, nil
	}
	net, err := conv(fd.net(entries, i, c, anyEntry))
	if err != nil {
		return false, err
	}
	return c.Qualifies(net, e.Tx.OccurredAt, fd.firstSeen[e.Tx.Player]), nil
}
