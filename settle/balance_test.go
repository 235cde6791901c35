package settle

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/engine"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// TestApplyLedgerBalancesMatchDecimal: applyLedger sums a commit's shares
// per balance in int64 minor units (money.Acc); the b/ values it writes
// must be byte for byte what the former decimal code wrote (a
// decimal.Decimal per balance key, Decimal.Add per share, then
// cur.Add(delta).String()). Random commits over two partitions and three
// currencies (exponents 0, 2, 3), with some shares too large for an int64
// so the fallback is taken, and shares of mixed exponents.
func TestApplyLedgerBalancesMatchDecimal(t *testing.T) {
	idx, err := OpenIndex(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	r := rand.New(rand.NewPCG(14, 3))
	currencies := []string{"EUR", "JPY", "BHD"}
	parties := []string{"operator", "studio", "affiliate", "tax"}
	want := map[string]string{} // b/ key → value, by the former code
	big18 := 0
	for k := range 40 {
		p := uint32(k % 2)
		var es []store.Entry
		for i := range 1 + r.IntN(30) {
			cur := currencies[r.IntN(len(currencies))]
			c, _ := money.Lookup(cur)
			id := fmt.Sprintf("t%d-%d", k, i)
			tx, rej := txn.Decode([]byte(`{"id":"`+id+`","type":"bet","amount":"1","currency":"`+cur+`","occurred_at":"2026-11-01T10:00:00Z"}`), engine.Limits)
			if rej != nil {
				t.Fatal(rej)
			}
			var shares []money.Share
			net := decimal.Zero
			for range 1 + r.IntN(4) {
				var a decimal.Decimal
				switch r.IntN(12) {
				case 0: // beyond an int64
					v := new(big.Int).Lsh(big.NewInt(r.Int64N(1<<30)+1), 70)
					if r.IntN(2) == 0 {
						v.Neg(v)
					}
					a = decimal.NewFromBigInt(v, -c.Exponent)
					big18++
				case 1: // fewer decimals than the currency has
					a = decimal.New(r.Int64N(2000)-1000, 0)
				default:
					a = decimal.New(r.Int64N(2_000_000)-1_000_000, -c.Exponent)
				}
				shares = append(shares, money.Share{Party: parties[r.IntN(len(parties))], Amount: a})
				net = net.Add(a)
			}
			es = append(es, store.Entry{Partition: p, Index: uint64(k*100 + i), Provider: "prov", Tx: tx,
				RuleSet: [32]byte(testHash(1)), Net: net, Shares: shares})
		}
		// The former code, on the values the index holds before this commit.
		deltas := map[string]decimal.Decimal{}
		for _, e := range es {
			for _, sh := range e.Shares {
				bk := string(keyBalance(p, sh.Party, e.Tx.Currency.Code))
				deltas[bk] = deltas[bk].Add(sh.Amount)
			}
		}
		for bk, d := range deltas {
			cur := decimal.Zero
			if v, ok := want[bk]; ok {
				cur = decimal.RequireFromString(v)
			}
			want[bk] = cur.Add(d).String()
		}
		if err := idx.applyLedger(p, uint64(k+1), uint64(k+1), es, &stateRec{}); err != nil {
			t.Fatal(err)
		}
	}
	if big18 == 0 {
		t.Fatal("no share beyond an int64: the fallback is not covered")
	}
	got := map[string]string{}
	err = idx.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxBalance), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			got[string(it.Item().KeyCopy(nil))] = string(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d balances, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("balance %q = %q, want %q", k, got[k], w)
		}
	}
}
