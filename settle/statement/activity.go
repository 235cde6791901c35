package statement

import (
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// BaseTypes gives every entry the type it counts under: its own type, or for
// a rollback or refund the base type of its parent (so a rolled-back bet
// reduces stakes and a reversed win reduces wins). Entries must be in ledger
// order: a reversal is always settled after its parent, in the parent's
// partition. A reversal whose parent is not among entries keeps its own type.
func BaseTypes(entries []store.Entry) []txn.Type {
	base := make(map[[2]string]txn.Type, len(entries))
	out := make([]txn.Type, len(entries))
	for i, e := range entries {
		t := e.Tx.Type
		if t.Reversal() {
			if pt, ok := base[[2]string{e.Provider, e.Tx.Parent}]; ok {
				t = pt
			}
		}
		base[[2]string{e.Provider, e.Tx.ID}] = t
		out[i] = t
	}
	return out
}

// Gaming is the GGR of a set of entries of one currency.
type Gaming struct {
	Stakes    decimal.Decimal // bets, net of their rollbacks and refunds
	Wins      decimal.Decimal // wins, net of their reversals; ≥ 0 for ordinary traffic
	GGR       decimal.Decimal // Stakes − Wins
	Bets      int             // bet entries
	WinCount  int             // win entries
	Reversals int             // rollback and refund entries of bets or wins
}

// Add counts entry e whose base type is base. Types other than bet and win
// (and their reversals) are not gaming revenue and are ignored.
func (g *Gaming) Add(base txn.Type, e store.Entry) {
	switch base {
	case txn.Bet:
		g.Stakes = g.Stakes.Add(e.Net)
	case txn.Win:
		g.Wins = g.Wins.Sub(e.Net)
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
}
