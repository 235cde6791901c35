package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store/merkle"
	"github.com/tally-mesh/tally/txn"
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

// BenchmarkEntryMarshalPlain is the entry of a `tally bench` transaction: a
// bet in EUR with no meta, split three ways.
func BenchmarkEntryMarshalPlain(b *testing.B) {
	eur, _ := money.Lookup("EUR")
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	e := Entry{Partition: 3, Index: 12345, EdgeNode: "edge-1", EdgeSeq: 99, Provider: "studio-x", Rule: "casino",
		Tx:  txn.Tx{ID: "b-12345", Type: txn.Bet, Amount: eur.FromMinor(12325), Currency: eur, OccurredAt: at, Game: "book-of-x", Jurisdiction: "MT", Brand: "main"},
		Net: eur.FromMinor(12325), SettledAt: at.Add(time.Second),
		Shares: []money.Share{{Party: "studio-x", Amount: eur.FromMinor(1541)}, {Party: "operator", Amount: eur.FromMinor(9861)}, {Party: "aff-7", Amount: eur.FromMinor(923)}}}
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
}

// BenchmarkEntryUnmarshalPlain decodes the entry of BenchmarkEntryMarshalPlain
// (as the ledger watcher of `tally bench`, the index and `tally verify` do).
func BenchmarkEntryUnmarshalPlain(b *testing.B) {
	eur, _ := money.Lookup("EUR")
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	e := Entry{Partition: 3, Index: 12345, EdgeNode: "edge-1", EdgeSeq: 99, Provider: "studio-x", Rule: "casino",
		Tx:  txn.Tx{ID: "b-12345", Type: txn.Bet, Amount: eur.FromMinor(12325), Currency: eur, OccurredAt: at, Game: "book-of-x", Jurisdiction: "MT", Brand: "main"},
		Net: eur.FromMinor(12325), SettledAt: at.Add(time.Second),
		Shares: []money.Share{{Party: "studio-x", Amount: eur.FromMinor(1541)}, {Party: "operator", Amount: eur.FromMinor(9861)}, {Party: "aff-7", Amount: eur.FromMinor(923)}}}
	raw, err := e.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalEntry(raw); err != nil {
			b.Fatal(err)
		}
	}
}
