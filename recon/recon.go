package recon

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

// Row is one transaction of the provider's report as the strict decoder read it.
type Row struct {
	Row int // 1-based position among the report's transactions (blank lines not counted)
	Tx  txn.Tx
}

// Rejection is one report row the strict decoder refused.
type Rejection struct {
	Row    int    `json:"row"`
	ID     string `json:"id,omitempty"` // when the decoder could read one
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// LedgerTx is one ledger entry of the provider, with where it sits.
type LedgerTx struct {
	Partition uint32
	Index     uint64 // leaf index in the partition
	EdgeNode  string
	EdgeSeq   uint64
	Tx        txn.Tx
}

// Input is what Reconcile compares.
type Input struct {
	Provider string
	Period   string    // as given, e.g. "2026-11"
	Start    time.Time // first instant of the period (inclusive)
	End      time.Time // first instant after it (exclusive)
	Report   []Row
	Rejected []Rejection
	// Ledger is every ledger entry of the provider, of any period: a report
	// row whose entry lies outside the period is a time mismatch, not a
	// missing transaction. Only entries inside the period count as extra and
	// in the ledger totals.
	Ledger []LedgerTx
}

// Item is one transaction named in a result: a report row, a ledger entry, or both.
type Item struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Amount     string `json:"amount"`
	Currency   string `json:"currency"`
	OccurredAt string `json:"occurred_at"`
	Row        int    `json:"row,omitempty"`       // report row (0: not from the report)
	Partition  *int64 `json:"partition,omitempty"` // ledger position (absent: not in the ledger)
	Index      *int64 `json:"index,omitempty"`
	EdgeNode   string `json:"edge_node,omitempty"`
	EdgeSeq    uint64 `json:"edge_seq,omitempty"`
}

// Mismatch is one id present on both sides with different values.
type Mismatch struct {
	ID     string   `json:"id"`
	Fields []string `json:"fields"` // of amount, currency, type, occurred_at, in that order
	Report Item     `json:"report"`
	Ledger Item     `json:"ledger"`
}

// Duplicate is one id the report lists more than once.
type Duplicate struct {
	ID        string `json:"id"`
	Rows      []int  `json:"rows"`
	Identical bool   `json:"identical"` // every row the same transaction (canonical form)
}

// Total is one currency and type, summed on both sides.
type Total struct {
	Currency     string `json:"currency"`
	Type         string `json:"type"`
	ReportCount  int    `json:"report_count"`
	ReportAmount string `json:"report_amount"`
	LedgerCount  int    `json:"ledger_count"`
	LedgerAmount string `json:"ledger_amount"`
	Difference   string `json:"difference"` // report − ledger
}

// Result is a reconciliation. Its JSON (Canonical) is what Store signs.
type Result struct {
	Provider string `json:"provider"`
	Period   string `json:"period"`
	Start    string `json:"start"` // RFC 3339 UTC
	End      string `json:"end"`
	// Filled by the caller and Store; Reconcile leaves them empty.
	Seq          int    `json:"seq"`
	Previous     string `json:"previous"` // hex SHA-256 of the provider's reconciliation seq−1 ("" for the first)
	CreatedAt    string `json:"created_at"`
	ReportName   string `json:"report_name"`
	ReportSHA256 string `json:"report_sha256"`
	ReportFormat string `json:"report_format"`
	Dialect      string `json:"dialect"`
	// LedgerSizes is the number of leaves read per partition ("0": 123):
	// the ledger state the report was compared with.
	LedgerSizes map[string]uint64 `json:"ledger_sizes"`

	ReportRows    int `json:"report_rows"`    // decoded and rejected
	LedgerEntries int `json:"ledger_entries"` // the provider's entries in the period
	Matched       int `json:"matched"`        // report ids equal to their ledger entry

	Missing     []Item      `json:"missing"`       // in the report, not in the ledger
	Extra       []Item      `json:"extra"`         // in the ledger (in the period), not in the report
	Mismatched  []Mismatch  `json:"mismatched"`    // same id, other values
	Duplicates  []Duplicate `json:"duplicates"`    // same id on several report rows
	Rejected    []Rejection `json:"rejected"`      // rows the strict decoder refused
	OutOfPeriod []Item      `json:"out_of_period"` // report rows dated outside the period
	Totals      []Total     `json:"totals"`
}

// Clean reports whether the reconciliation found no break.
func (r *Result) Clean() bool {
	return len(r.Missing) == 0 && len(r.Extra) == 0 && len(r.Mismatched) == 0 && len(r.Duplicates) == 0 &&
		len(r.Rejected) == 0 && len(r.OutOfPeriod) == 0
}

// Breaks is the number of breaks: every listed item counts once.
func (r *Result) Breaks() int {
	return len(r.Missing) + len(r.Extra) + len(r.Mismatched) + len(r.Duplicates) + len(r.Rejected) + len(r.OutOfPeriod)
}

func reportItem(r Row) Item {
	return Item{ID: r.Tx.ID, Type: string(r.Tx.Type), Amount: r.Tx.Currency.Format(r.Tx.Amount), Currency: r.Tx.Currency.Code,
		OccurredAt: r.Tx.OccurredAt.UTC().Format(time.RFC3339Nano), Row: r.Row}
}

func ledgerItem(l LedgerTx) Item {
	p, i := int64(l.Partition), int64(l.Index)
	return Item{ID: l.Tx.ID, Type: string(l.Tx.Type), Amount: l.Tx.Currency.Format(l.Tx.Amount), Currency: l.Tx.Currency.Code,
		OccurredAt: l.Tx.OccurredAt.UTC().Format(time.RFC3339Nano), Partition: &p, Index: &i, EdgeNode: l.EdgeNode, EdgeSeq: l.EdgeSeq}
}

// differ lists the compared fields in which a report row and a ledger entry differ.
func differ(r, l txn.Tx) []string {
	var f []string
	if !r.Amount.Equal(l.Amount) {
		f = append(f, "amount")
	}
	if r.Currency.Code != l.Currency.Code {
		f = append(f, "currency")
	}
	if r.Type != l.Type {
		f = append(f, "type")
	}
	if !r.OccurredAt.Equal(l.OccurredAt) {
		f = append(f, "occurred_at")
	}
	return f
}

type totalKey struct{ cur, typ string }

type sums struct {
	cur    money.Currency
	rc, lc int
	ra, la decimal.Decimal
}

// Reconcile compares in.Report with in.Ledger. The first row of a repeated
// id is the one compared with the ledger; every row counts in the report
// totals (the provider's own total includes its duplicates), and the
// duplicate is listed. Lists are ordered by report row, ledger entries by
// (partition, index). It panics if in.Ledger holds two entries with one id
// (the ledger deduplicates by (provider, id): that would be a broken ledger,
// which `tally verify` reports).
func Reconcile(in Input) *Result {
	res := &Result{
		Provider: in.Provider, Period: in.Period,
		Start: in.Start.UTC().Format(time.RFC3339), End: in.End.UTC().Format(time.RFC3339),
		LedgerSizes: map[string]uint64{},
		Missing:     []Item{}, Extra: []Item{}, Mismatched: []Mismatch{}, Duplicates: []Duplicate{},
		Rejected: append([]Rejection{}, in.Rejected...), OutOfPeriod: []Item{}, Totals: []Total{},
	}
	sort.Slice(res.Rejected, func(i, j int) bool { return res.Rejected[i].Row < res.Rejected[j].Row })
	res.ReportRows = len(in.Report) + len(in.Rejected)
	inPeriod := func(t time.Time) bool { return !t.Before(in.Start) && t.Before(in.End) }

	ledger := append([]LedgerTx(nil), in.Ledger...)
	sort.Slice(ledger, func(i, j int) bool {
		if ledger[i].Partition != ledger[j].Partition {
			return ledger[i].Partition < ledger[j].Partition
		}
		return ledger[i].Index < ledger[j].Index
	})
	byID := make(map[string]int, len(ledger))
	tot := map[totalKey]*sums{}
	sum := func(cur money.Currency, typ string) *sums {
		k := totalKey{cur.Code, typ}
		s := tot[k]
		if s == nil {
			s = &sums{cur: cur, ra: decimal.Zero, la: decimal.Zero}
			tot[k] = s
		}
		return s
	}
	for i, l := range ledger {
		if _, dup := byID[l.Tx.ID]; dup {
			panic(fmt.Sprintf("recon: ledger holds id %q twice for provider %s", l.Tx.ID, in.Provider))
		}
		byID[l.Tx.ID] = i
		key := fmt.Sprint(l.Partition)
		if l.Index+1 > res.LedgerSizes[key] {
			res.LedgerSizes[key] = l.Index + 1
		}
		if inPeriod(l.Tx.OccurredAt) {
			res.LedgerEntries++
			s := sum(l.Tx.Currency, string(l.Tx.Type))
			s.lc++
			s.la = s.la.Add(l.Tx.Amount)
		}
	}

	rows := append([]Row(nil), in.Report...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Row < rows[j].Row })
	first := map[string]int{} // id → index in rows of its first row
	dups := map[string]*Duplicate{}
	var dupOrder []string
	seen := make([]bool, len(ledger))
	for i, r := range rows {
		s := sum(r.Tx.Currency, string(r.Tx.Type))
		s.rc++
		s.ra = s.ra.Add(r.Tx.Amount)
		if !inPeriod(r.Tx.OccurredAt) {
			res.OutOfPeriod = append(res.OutOfPeriod, reportItem(r))
		}
		if j, ok := first[r.Tx.ID]; ok {
			d := dups[r.Tx.ID]
			if d == nil {
				d = &Duplicate{ID: r.Tx.ID, Rows: []int{rows[j].Row}, Identical: true}
				dups[r.Tx.ID] = d
				dupOrder = append(dupOrder, r.Tx.ID)
			}
			d.Rows = append(d.Rows, r.Row)
			if !bytes.Equal(r.Tx.Canonical(), rows[j].Tx.Canonical()) {
				d.Identical = false
			}
			continue
		}
		first[r.Tx.ID] = i
		li, ok := byID[r.Tx.ID]
		if !ok {
			res.Missing = append(res.Missing, reportItem(r))
			continue
		}
		seen[li] = true
		if f := differ(r.Tx, ledger[li].Tx); len(f) > 0 {
			res.Mismatched = append(res.Mismatched, Mismatch{ID: r.Tx.ID, Fields: f, Report: reportItem(r), Ledger: ledgerItem(ledger[li])})
			continue
		}
		res.Matched++
	}
	for _, id := range dupOrder {
		res.Duplicates = append(res.Duplicates, *dups[id])
	}
	for i, l := range ledger {
		if !seen[i] && inPeriod(l.Tx.OccurredAt) {
			res.Extra = append(res.Extra, ledgerItem(l))
		}
	}
	keys := make([]totalKey, 0, len(tot))
	for k := range tot {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].cur != keys[j].cur {
			return keys[i].cur < keys[j].cur
		}
		return keys[i].typ < keys[j].typ
	})
	for _, k := range keys {
		s := tot[k]
		res.Totals = append(res.Totals, Total{Currency: k.cur, Type: k.typ,
			ReportCount: s.rc, ReportAmount: s.cur.Format(s.ra), LedgerCount: s.lc, LedgerAmount: s.cur.Format(s.la),
			Difference: s.cur.Format(s.ra.Sub(s.la))})
	}
	return res
}
