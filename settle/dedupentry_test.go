package settle

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/engine"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// randEntryFigure is a share or net as the engine makes them (minor units of
// the currency) and, now and then, what it never makes: other exponents,
// trailing zeros in the coefficient, 19+ digits, int64 edges, positive
// exponents.
func randEntryFigure(r *rand.Rand, exp int32) decimal.Decimal {
	switch r.IntN(14) {
	case 0:
		v := new(big.Int).Lsh(big.NewInt(r.Int64N(1<<30)+1), 40+uint(r.IntN(40)))
		if r.IntN(2) == 0 {
			v.Neg(v)
		}
		return decimal.NewFromBigInt(v, -int32(r.IntN(20)))
	case 1:
		cs := []int64{math.MaxInt64, math.MinInt64 + 1, 999_999_999_999_999_999, -999_999_999_999_999_999, 100_000_000_000_000_000}
		return decimal.New(cs[r.IntN(len(cs))], -int32(r.IntN(22)))
	case 2: // trailing zeros in the coefficient
		return decimal.New((r.Int64N(2000)-1000)*int64(math.Pow10(r.IntN(6))), -int32(r.IntN(8)))
	case 3:
		return decimal.New(r.Int64N(100)-50, int32(r.IntN(25)))
	case 4:
		return decimal.New(0, int32(r.IntN(10))-5)
	case 5: // many decimals
		return decimal.New(r.Int64N(1_000_000)-500_000, -int32(10+r.IntN(12)))
	default:
		return decimal.New(r.Int64N(20_000_000)-10_000_000, -exp)
	}
}

// TestEntryDedupV2MatchesRecordPath: applyLedger's direct encoding of an
// entry's dedup record is byte for byte the record path's
// (appendDedupV2(entryDedup(e))), or declines and leaves dst's length.
func TestEntryDedupV2MatchesRecordPath(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 4))
	currencies := []string{"EUR", "JPY", "BHD"}
	direct, declined := 0, 0
	for i := range 30000 {
		cur := currencies[r.IntN(len(currencies))]
		c, _ := money.Lookup(cur)
		tx, rej := txn.Decode([]byte(fmt.Sprintf(`{"id":"t-%d","type":"bet","amount":"%d","currency":"%s","occurred_at":"2026-11-01T10:00:00Z"}`, i, 1+r.IntN(1000), cur)), engine.Limits)
		if rej != nil {
			t.Fatal(rej)
		}
		e := store.Entry{Partition: uint32(r.IntN(4)), Index: r.Uint64N(1 << 40), Provider: "prov", Tx: tx,
			RuleSet: [32]byte(testHash(byte(i))), Net: randEntryFigure(r, c.Exponent)}
		for range r.IntN(5) {
			e.Shares = append(e.Shares, money.Share{Party: fmt.Sprintf("party-%d", r.IntN(9)), Amount: randEntryFigure(r, c.Exponent)})
		}
		rs := r.Uint64N(300)
		rec := entryDedup(&e)
		want := appendDedupV2([]byte("prefix"), &rec, rs)
		got, ok := appendEntryDedupV2([]byte("prefix"), &e, e.Tx.Hash(), rs)
		if !ok {
			declined++
			if string(got) != "prefix" {
				t.Fatalf("entry %d: declined but dst is %q", i, got)
			}
			continue
		}
		direct++
		if !bytes.Equal(got, want) {
			t.Fatalf("entry %d (net %s, shares %v): direct %x, record path %x", i, e.Net, e.Shares, got, want)
		}
	}
	if direct < 10000 || declined == 0 {
		t.Fatalf("%d direct, %d declined: both paths must be covered", direct, declined)
	}
	t.Logf("%d direct, %d declined", direct, declined)
}
