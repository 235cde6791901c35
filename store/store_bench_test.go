package store

import (
	"fmt"
	"testing"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store/merkle"
)

// BenchmarkEntryMarshal is the canonical entry encoding, done once per
// settled transaction when its segment is sealed.
func BenchmarkEntryMarshal(b *testing.B) {
	for _, shares := range []int{2, 8} {
		b.Run(fmt.Sprintf("shares=%d", shares), func(b *testing.B) {
			e := newGen(b).entries(b, 0, 1)[0]
			cur := e.Tx.Currency
			e.Tx.Type, e.Shares, e.Net = "bet", nil, cur.FromMinor(0)
			for i := range shares {
				a := cur.FromMinor(int64(100 + i))
				e.Shares = append(e.Shares, money.Share{Party: fmt.Sprintf("party-%d", i), Amount: a})
				e.Net = e.Net.Add(a)
			}
			e.Tx.Amount = e.Net.Abs()
			raw, err := e.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEntryLeaf is encoding plus the RFC 6962 leaf hash and the append
// to the compact range: the per-entry part of Seal without any I/O.
func BenchmarkEntryLeaf(b *testing.B) {
	es := newGen(b).entries(b, 0, 1024)
	var r merkle.Range
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		raw, err := es[i%len(es)].MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		r.Append(merkle.HashLeaf(raw), func(merkle.Hash) {})
		i++
	}
}
