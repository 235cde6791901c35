package settle

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"
	"github.com/shopspring/decimal"
)

// PartitionBalances is what the index holds for one partition at one
// instant: how many ledger segments it committed, and the balances those
// segments produced. An auditor checks that Σ shares of the entries in
// segments 1..Segments equals Balances exactly (tally verify, tally export).
type PartitionBalances struct {
	Partition uint32    `json:"partition"`
	Segments  uint64    `json:"segments"`
	Balances  []Balance `json:"balances"`
}

// Committed reads, in one Badger transaction, every partition's committed
// segment count (m/<p>) and balances (b/<p>...), sorted by partition, party
// and currency. Partitions with no committed segment are left out.
func (x *Index) Committed() ([]PartitionBalances, error) {
	byP := map[uint32]*PartitionBalances{}
	get := func(p uint32) *PartitionBalances {
		if byP[p] == nil {
			byP[p] = &PartitionBalances{Partition: p}
		}
		return byP[p]
	}
	err := x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxSegments), PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != partitionHead {
				it.Close()
				return fmt.Errorf("index: bad segment count key %q", k)
			}
			p := binary.BigEndian.Uint32(k[2:])
			if err := it.Item().Value(func(v []byte) error {
				if len(v) != 8 {
					return fmt.Errorf("index: segment count of partition %d has %d bytes", p, len(v))
				}
				get(p).Segments = u64(v)
				return nil
			}); err != nil {
				it.Close()
				return err
			}
		}
		it.Close()
		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxBalance), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			p, party, currency, err := parseBalanceKey(k)
			if err != nil {
				return err
			}
			b := Balance{Party: party, Currency: currency}
			if err := it.Item().Value(func(v []byte) error {
				d, err := decimal.NewFromString(string(v))
				b.Amount = d
				return err
			}); err != nil {
				return fmt.Errorf("index: balance %q: %w", k, err)
			}
			pb := get(p)
			pb.Balances = append(pb.Balances, b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]PartitionBalances, 0, len(byP))
	for _, pb := range byP {
		if pb.Segments == 0 {
			continue
		}
		sort.Slice(pb.Balances, func(i, j int) bool {
			if pb.Balances[i].Party != pb.Balances[j].Party {
				return pb.Balances[i].Party < pb.Balances[j].Party
			}
			return pb.Balances[i].Currency < pb.Balances[j].Currency
		})
		out = append(out, *pb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out, nil
}
