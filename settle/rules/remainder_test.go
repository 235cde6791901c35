package rules

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

// referenceSplit is the share rule's split as first written: weights merged
// per party with decimals per transaction, the remainder party weighing the
// absent parties' weights plus (percent rules) 100 − Σ all percents, then
// one money.Allocate. rule.allocate now computes the remainder weight from
// values kept per rule; it must give the same shares, byte for byte.
func referenceSplit(shares [][2]string, percent bool, remainder string, alloc money.Allocation, rounding money.Rounding, provider string, x txn.Tx) ([]money.Share, error) {
	var names []string
	var vals []decimal.Decimal
	add := func(name string, d decimal.Decimal) int {
		if i := slices.Index(names, name); i >= 0 {
			vals[i] = vals[i].Add(d)
			return i
		}
		names, vals = append(names, name), append(vals, d)
		return len(names) - 1
	}
	orphan, declared := decimal.Zero, decimal.Zero
	for _, s := range shares {
		w := decimal.RequireFromString(s[1])
		declared = declared.Add(w)
		if name := resolve(s[0], provider, x); name != "" {
			add(name, w)
		} else {
			orphan = orphan.Add(w)
		}
	}
	remIdx := -1
	if remainder != "" {
		w := orphan
		if percent {
			w = w.Add(decimal.NewFromInt(100).Sub(declared))
		}
		remIdx = add(resolve(remainder, provider, x), w)
	}
	amounts, err := money.Allocate(x.Signed(), x.Currency, vals, alloc, rounding, remIdx)
	if err != nil {
		return nil, err
	}
	out := make([]money.Share, len(names))
	for i := range names {
		out[i] = money.Share{Party: names[i], Amount: amounts[i]}
	}
	return out, nil
}

// TestSplitRemainderWeight: random share rules (percents or weights, the
// affiliate or provider named once, twice or not at all, duplicate parties,
// every allocation and rounding) split random bets and wins with and
// without an affiliate exactly as referenceSplit does.
func TestSplitRemainderWeight(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 0x4e3))
	parties := []string{refProvider, refAffiliate, "A", "B"}
	allocs := []money.Allocation{money.LargestRemainder, money.TopDown, money.RemainderTo}
	roundings := []money.Rounding{money.HalfUp, money.HalfEven, money.Down}
	checked, withoutAffiliate := 0, 0
	for it := range 400 {
		percent := rng.IntN(3) > 0
		alloc, rounding := allocs[rng.IntN(len(allocs))], roundings[rng.IntN(len(roundings))]
		n := 1 + rng.IntN(4)
		var shares [][2]string
		var src strings.Builder
		left := 10000 // hundredths of a percent still free
		for i := range n {
			party := parties[rng.IntN(len(parties))]
			var w string
			if percent {
				v := rng.IntN(left/n + 1)
				left -= v
				w = decimal.New(int64(v), -2).String()
			} else {
				w = decimal.New(rng.Int64N(1000), -int32(rng.IntN(3))).String()
			}
			shares = append(shares, [2]string{party, w})
			key := "weight"
			if percent {
				key = "percent"
			}
			fmt.Fprintf(&src, "    share \"s%d\" {\n      party = %q\n      %s = %q\n    }\n", i, party, key, w)
		}
		remainder := []string{"operator", "A", refProvider}[rng.IntN(3)]
		hcl := fmt.Sprintf("ruleset \"v\" {\n  effective = \"2026-01-01T00:00:00Z\"\n  rounding = %q\n  allocation = %q\n  rule \"r\" {\n%s    remainder = %q\n  }\n}\n", rounding, alloc, src.String(), remainder)
		book, err := Parse([]byte(hcl), "random.hcl")
		if err != nil {
			continue // e.g. weights summing to zero, remainder_to without a remainder: refused, nothing to compare
		}
		for _, typ := range []txn.Type{txn.Bet, txn.Win} {
			for _, aff := range []string{"", "aff-1", "A"} {
				x := txn.Tx{ID: "t", Type: typ, Amount: decimal.New(rng.Int64N(100000), -2), Currency: money.Currency{Code: "EUR", Exponent: 2}, OccurredAt: ts("2026-06-01T00:00:00Z"), Affiliate: aff}
				got, gerr := book.Split("prov", x)
				want, werr := referenceSplit(shares, percent, remainder, alloc, rounding, "prov", x)
				if (gerr == nil) != (werr == nil) {
					t.Fatalf("iteration %d: Split error %v, reference %v\n%s", it, gerr, werr, hcl)
				}
				if gerr != nil {
					continue
				}
				if !got.Net.Equal(x.Signed()) {
					t.Fatalf("iteration %d: Result.Net %s, tx.Signed() %s", it, got.Net, x.Signed())
				}
				if len(got.Shares) != len(want) {
					t.Fatalf("iteration %d (%s, affiliate %q): Split %v, reference %v\n%s", it, typ, aff, got.Shares, want, hcl)
				}
				for i := range want {
					if got.Shares[i].Party != want[i].Party || got.Shares[i].Amount.String() != want[i].Amount.String() || got.Shares[i].Amount.Exponent() != want[i].Amount.Exponent() {
						t.Fatalf("iteration %d (%s %s, affiliate %q): Split %v, reference %v\n%s", it, typ, x.Amount, aff, got.Shares, want, hcl)
					}
				}
				checked++
				if aff == "" && slices.ContainsFunc(shares, func(s [2]string) bool { return s[0] == refAffiliate }) {
					withoutAffiliate++
				}
			}
		}
	}
	if checked < 1000 || withoutAffiliate < 200 {
		t.Fatalf("%d splits compared, %d with an absent affiliate share: the test does not exercise the rules", checked, withoutAffiliate)
	}
	t.Logf("%d splits compared, %d with an absent affiliate share", checked, withoutAffiliate)
}
