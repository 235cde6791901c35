package engine

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store"
)

// TestEntryRecordFigures: entryRecord's strings are exactly Decimal.String
// of the net and of each share (what the index stored before the one-buffer
// formatting), for random figures from zero to 30-digit coefficients at any
// exponent, with 0 to 20 shares; hash and rule set are copies that cannot
// overwrite each other.
func TestEntryRecordFigures(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 0xdedc))
	fig := func() decimal.Decimal {
		c := new(big.Int)
		for range rng.IntN(30) {
			c.Mul(c, big.NewInt(10))
			c.Add(c, big.NewInt(int64(rng.IntN(10))))
		}
		if rng.IntN(2) == 0 {
			c.Neg(c)
		}
		return decimal.NewFromBigInt(c, int32(rng.IntN(12))-9)
	}
	for it := range 3000 {
		e := store.Entry{Partition: uint32(it), Index: uint64(it) * 7, Net: fig()}
		e.Tx.Currency = money.Currency{Code: "EUR", Exponent: 2}
		for i := range e.RuleSet {
			e.RuleSet[i] = byte(rng.Uint32())
		}
		for i := range rng.IntN(21) {
			e.Shares = append(e.Shares, money.Share{Party: string(rune('a' + i)), Amount: fig()})
		}
		var hash [32]byte
		for i := range hash {
			hash[i] = byte(rng.Uint32())
		}
		r := entryRecord(&e, hash)
		if r.Net != e.Net.String() || r.Partition != e.Partition || r.Index != e.Index || r.Currency != "EUR" {
			t.Fatalf("iteration %d: record %+v for net %s", it, r, e.Net)
		}
		if !bytes.Equal(r.Hash, hash[:]) || !bytes.Equal(r.RuleSet, e.RuleSet[:]) {
			t.Fatalf("iteration %d: hash %x rule set %x, want %x %x", it, r.Hash, r.RuleSet, hash, e.RuleSet)
		}
		if len(r.Shares) != len(e.Shares) || r.Shares == nil {
			t.Fatalf("iteration %d: %d shares recorded for %d", it, len(r.Shares), len(e.Shares))
		}
		for i, s := range e.Shares {
			if r.Shares[i] != [2]string{s.Party, s.Amount.String()} {
				t.Fatalf("iteration %d: share %d recorded as %q, want %q %q", it, i, r.Shares[i], s.Party, s.Amount.String())
			}
		}
		_ = append(r.Hash, 0xff) // must not run into the rule set
		if !bytes.Equal(r.RuleSet, e.RuleSet[:]) {
			t.Fatalf("iteration %d: appending to the hash overwrote the rule set", it)
		}
	}
}
