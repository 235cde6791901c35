package rules

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/txn"
)

// tiersVector is vectors/tiers.json; unknown fields fail the decode.
type tiersVector struct {
	Contract struct {
		Party    string `json:"party"`
		Basis    string `json:"basis"`
		Period   string `json:"period"`
		Currency string `json:"currency"`
		Rounding string `json:"rounding"`
		Tiers    []struct {
			UpTo    string `json:"up_to"`
			Percent string `json:"percent"`
		} `json:"tiers"`
		Boundaries string `json:"boundaries"`
		MinimumFee string `json:"minimum_fee"`
	} `json:"contract"`
	Cases []struct {
		GGR           string   `json:"ggr"`
		Months        []string `json:"months"`
		Mode          string   `json:"mode"`
		CarryNegative *bool    `json:"carry_negative"`
		Fee           string   `json:"fee"`
		Fees          []string `json:"fees"`
		Detail        string   `json:"detail"`
		Note          string   `json:"note"`
	} `json:"cases"`
}

func mustParseFees(t testing.TB, path string) map[string]FeeContract {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fees, err := ParseFees(src, path)
	if err != nil {
		t.Fatalf("ParseFees(%s): %v", path, err)
	}
	m := map[string]FeeContract{}
	for _, f := range fees {
		m[f.Name] = f
	}
	return m
}

// exactString prints d with at least the currency's decimals and no more
// than it needs: 12000.00, 3012.3464.
func exactString(c money.Currency, d decimal.Decimal) string {
	s := d.String()
	if i := strings.IndexByte(s, '.'); i < 0 || int32(len(s)-i-1) < c.Exponent {
		return c.Format(d)
	}
	return s
}

// vectorContract checks that fc is the contract of tiers.json.
func vectorContract(t *testing.T, v *tiersVector, fc FeeContract) {
	t.Helper()
	vc := v.Contract
	if fc.Party != vc.Party || fc.Basis != vc.Basis || fc.Period != vc.Period || fc.Currency != cur(t, vc.Currency) || string(fc.Rounding) != vc.Rounding {
		t.Fatalf("fee %q = %s/%s/%s/%v/%s, the vector says %s/%s/%s/%s/%s", fc.Name, fc.Party, fc.Basis, fc.Period, fc.Currency, fc.Rounding, vc.Party, vc.Basis, vc.Period, vc.Currency, vc.Rounding)
	}
	if !fc.MinimumFee.Equal(dec(vc.MinimumFee)) {
		t.Fatalf("fee %q minimum = %s, the vector says %s", fc.Name, fc.MinimumFee, vc.MinimumFee)
	}
	if len(fc.Tiers) != len(vc.Tiers) {
		t.Fatalf("fee %q has %d tiers, the vector %d", fc.Name, len(fc.Tiers), len(vc.Tiers))
	}
	for i, vt := range vc.Tiers {
		ft := fc.Tiers[i]
		if !ft.Percent.Equal(dec(vt.Percent)) || (vt.UpTo == "") != (ft.UpTo == nil) || (ft.UpTo != nil && !ft.UpTo.Equal(dec(vt.UpTo))) {
			t.Fatalf("fee %q tier %d = %v %s, the vector says up_to %q percent %s", fc.Name, i+1, ft.UpTo, ft.Percent, vt.UpTo, vt.Percent)
		}
	}
}

// TestFeeVectors asserts every figure of vectors/tiers.json with the contracts
// of testdata/vectors/tiers.hcl.
func TestFeeVectors(t *testing.T) {
	var v tiersVector
	readVector(t, "tiers.json", &v)
	fees := mustParseFees(t, "testdata/vectors/tiers.hcl")
	if len(fees) != 4 {
		t.Fatalf("tiers.hcl has %d fees, want 4", len(fees))
	}
	for _, fc := range fees {
		vectorContract(t, &v, fc)
	}
	if !strings.Contains(v.Contract.Boundaries, "inclusive") {
		t.Fatalf("the vector's boundaries changed: %q", v.Contract.Boundaries)
	}
	eur := cur(t, v.Contract.Currency)
	if len(v.Cases) != 9 {
		t.Fatalf("tiers.json has %d cases, this test was written for 9: check the new ones", len(v.Cases))
	}
	for i, c := range v.Cases {
		name := c.Mode + " " + c.GGR + strings.Join(c.Months, ",")
		t.Run(name, func(t *testing.T) {
			// A case that does not say whether negative GGR is carried must
			// give the same figures both ways.
			variants := []bool{true, false}
			if c.CarryNegative != nil {
				variants = []bool{*c.CarryNegative}
			}
			for _, carry := range variants {
				fname := c.Mode + "-carry"
				if !carry {
					fname = c.Mode + "-no-carry"
				}
				fc, ok := fees[fname]
				if !ok {
					t.Fatalf("no fee %q in tiers.hcl", fname)
				}
				if string(fc.Mode) != c.Mode || fc.CarryNegative != carry {
					t.Fatalf("fee %q has mode %s carry %v", fname, fc.Mode, fc.CarryNegative)
				}
				if c.GGR != "" {
					r, err := fc.Compute(dec(c.GGR), decimal.Zero)
					if err != nil {
						t.Fatalf("%s.Compute(%s): %v", fname, c.GGR, err)
					}
					if got := eur.Format(r.Fee); got != c.Fee {
						t.Errorf("%s.Compute(%s).Fee = %s, want %s", fname, c.GGR, got, c.Fee)
					}
					checkDetail(t, i, fname, eur, c.Detail, []FeeResult{r})
					continue
				}
				bases := make([]decimal.Decimal, len(c.Months))
				for j, m := range c.Months {
					bases[j] = dec(m)
				}
				rs, err := fc.ComputePeriods(bases)
				if err != nil {
					t.Fatalf("%s.ComputePeriods(%v): %v", fname, c.Months, err)
				}
				if len(rs) != len(c.Fees) {
					t.Fatalf("%s.ComputePeriods(%v) gave %d results, the vector %d fees", fname, c.Months, len(rs), len(c.Fees))
				}
				for j := range rs {
					if got := eur.Format(rs[j].Fee); got != c.Fees[j] {
						t.Errorf("%s month %d (GGR %s): fee %s, want %s", fname, j+1, c.Months[j], got, c.Fees[j])
					}
				}
				// Month 1 is negative: nothing computed, the minimum is the whole fee.
				if !rs[0].Computed.IsZero() || !rs[0].TopUp.Equal(fc.MinimumFee) {
					t.Errorf("%s month 1: computed %s top-up %s, want 0 and the minimum %s", fname, rs[0].Computed, rs[0].TopUp, fc.MinimumFee)
				}
				wantCarry := decimal.Zero
				if carry {
					wantCarry = dec(c.Months[0])
				}
				if !rs[0].CarryOut.Equal(wantCarry) || !rs[1].CarriedIn.Equal(wantCarry) {
					t.Errorf("%s: carry out of month 1 %s, into month 2 %s, want %s", fname, rs[0].CarryOut, rs[1].CarriedIn, wantCarry)
				}
				if !rs[1].CarryOut.IsZero() || !rs[1].TopUp.IsZero() {
					t.Errorf("%s month 2: carry out %s top-up %s, want 0 and 0", fname, rs[1].CarryOut, rs[1].TopUp)
				}
				if carry {
					checkDetail(t, i, fname, eur, c.Detail, rs)
				}
			}
		})
	}
}

// checkDetail asserts the intermediate figures a case's detail text gives.
func checkDetail(t *testing.T, i int, fname string, eur money.Currency, detail string, rs []FeeResult) {
	t.Helper()
	if detail == "" {
		return
	}
	r := rs[len(rs)-1]
	switch {
	case strings.HasPrefix(detail, "12000.00 + "): // the brackets of a marginal fee
		parts := make([]string, len(r.Lines))
		for j, l := range r.Lines {
			parts[j] = exactString(eur, l.Exact)
		}
		if got := strings.Join(parts, " + "); got != detail {
			t.Errorf("%s: lines %s, the vector says %s", fname, got, detail)
		}
		if len(r.Lines) != 3 || !r.Lines[2].From.Equal(dec("250000")) || !r.Lines[2].To.Equal(r.Base) || !r.Lines[2].Base.Equal(dec("37654.33")) {
			t.Errorf("%s: lines %+v", fname, r.Lines)
		}
	case strings.Contains(detail, "minimum applies: a top-up line of"):
		want := eur.Format(r.Computed) + " computed, minimum applies: a top-up line of " + eur.Format(r.TopUp)
		if !strings.HasPrefix(detail, want) || !r.TopUp.Equal(dec("700.00")) || !r.Computed.Equal(dec("1800.00")) {
			t.Errorf("%s: computed %s, top-up %s; the vector says %q", fname, r.Computed, r.TopUp, detail)
		}
	case strings.HasPrefix(detail, "month 1 has negative GGR"):
		first := rs[0]
		want := "month 2 base = " + eur.Format(r.Basis) + " - " + eur.Format(r.CarriedIn.Neg()) + " = " + eur.Format(r.Base) +
			", " + r.Lines[0].Percent.String() + "% = " + exactString(eur, r.Exact)
		if !strings.Contains(detail, want) || len(r.Lines) != 1 || !first.Computed.IsZero() {
			t.Errorf("%s: %q not in the vector's detail %q", fname, want, detail)
		}
		if !strings.Contains(detail, "computed fee "+eur.Format(first.Computed)) {
			t.Errorf("%s: month 1 computed %s, the vector says %q", fname, first.Computed, detail)
		}
	default:
		t.Fatalf("case %d: detail %q is not checked: add it to checkDetail", i, detail)
	}
}

// TestFeeCliff is the vector's retroactive cliff: +0.01 GGR, −5000.00 fee,
// while the marginal fee does not drop.
func TestFeeCliff(t *testing.T) {
	fees := mustParseFees(t, "testdata/vectors/tiers.hcl")
	for _, tc := range []struct {
		fee  string
		diff string
	}{{"retroactive-carry", "-5000.00"}, {"marginal-carry", "0"}} {
		at, err := fees[tc.fee].Compute(dec("250000.00"), decimal.Zero)
		if err != nil {
			t.Fatal(err)
		}
		above, err := fees[tc.fee].Compute(dec("250000.01"), decimal.Zero)
		if err != nil {
			t.Fatal(err)
		}
		if d := above.Fee.Sub(at.Fee); !d.Equal(dec(tc.diff)) {
			t.Errorf("%s: fee(250000.01) − fee(250000.00) = %s, want %s", tc.fee, d, tc.diff)
		}
	}
}

func TestFeeBoundaries(t *testing.T) {
	fees := mustParseFees(t, "testdata/vectors/tiers.hcl")
	tests := []struct {
		fee, basis, carriedIn string
		lines                 []string // tier:base:exact
		computed, topUp, want string
		carryOut              string
	}{
		{"marginal-carry", "100000.00", "0", []string{"1:100000:12000"}, "12000.00", "0", "12000.00", "0"},
		{"marginal-carry", "100000.01", "0", []string{"1:100000:12000", "2:0.01:0.001"}, "12000.00", "0", "12000.00", "0"},
		{"marginal-carry", "250000.00", "0", []string{"1:100000:12000", "2:150000:15000"}, "27000.00", "0", "27000.00", "0"},
		{"marginal-carry", "250000.01", "0", []string{"1:100000:12000", "2:150000:15000", "3:0.01:0.0008"}, "27000.00", "0", "27000.00", "0"},
		{"retroactive-carry", "100000.00", "0", []string{"1:100000:12000"}, "12000.00", "0", "12000.00", "0"},
		{"retroactive-carry", "100000.01", "0", []string{"2:100000.01:10000.001"}, "10000.00", "0", "10000.00", "0"},
		{"retroactive-carry", "250000.00", "0", []string{"2:250000:25000"}, "25000.00", "0", "25000.00", "0"},
		{"retroactive-carry", "250000.01", "0", []string{"3:250000.01:20000.0008"}, "20000.00", "0", "20000.00", "0"},
		{"marginal-carry", "0.01", "0", []string{"1:0.01:0.0012"}, "0.00", "2500.00", "2500.00", "0"},
		{"marginal-carry", "0.05", "0", []string{"1:0.05:0.006"}, "0.01", "2499.99", "2500.00", "0"},
		{"marginal-carry", "0", "0", nil, "0", "2500.00", "2500.00", "0"},
		{"retroactive-carry", "0", "0", nil, "0", "2500.00", "2500.00", "0"},
		{"marginal-carry", "-0.01", "0", nil, "0", "2500.00", "2500.00", "-0.01"},
		{"marginal-no-carry", "-0.01", "0", nil, "0", "2500.00", "2500.00", "0"},
		{"marginal-carry", "-100.00", "-50.00", nil, "0", "2500.00", "2500.00", "-150.00"},
		{"marginal-carry", "100.00", "-100.00", nil, "0", "2500.00", "2500.00", "0"},
		{"marginal-carry", "20834.00", "-0.01", []string{"1:20833.99:2500.0788"}, "2500.08", "0", "2500.08", "0"},
		{"marginal-carry", "20833.33", "0", []string{"1:20833.33:2499.9996"}, "2500.00", "0", "2500.00", "0"},
		{"marginal-carry", "20833.32", "0", []string{"1:20833.32:2499.9984"}, "2500.00", "0.00", "2500.00", "0"},
		{"marginal-carry", "1000000000000.00", "0", []string{"1:100000:12000", "2:150000:15000", "3:999999750000:79999980000"}, "79999980000 + 27000", "0", "80000007000.00", "0"},
	}
	for _, tc := range tests {
		t.Run(tc.fee+" "+tc.basis, func(t *testing.T) {
			r, err := fees[tc.fee].Compute(dec(tc.basis), dec(tc.carriedIn))
			if err != nil {
				t.Fatalf("Compute(%s, %s): %v", tc.basis, tc.carriedIn, err)
			}
			var lines []string
			for _, l := range r.Lines {
				lines = append(lines, strings.Join([]string{itoa(l.Tier), l.Base.String(), l.Exact.String()}, ":"))
				if !l.To.Sub(l.From).Equal(l.Base) {
					t.Errorf("line %+v: To − From ≠ Base", l)
				}
			}
			if strings.Join(lines, " ") != strings.Join(tc.lines, " ") {
				t.Errorf("Compute(%s) lines %v, want %v", tc.basis, lines, tc.lines)
			}
			computed := tc.computed
			if i := strings.Index(computed, " + "); i >= 0 {
				computed = dec(computed[:i]).Add(dec(computed[i+3:])).String()
			}
			for _, f := range []struct {
				name      string
				got, want decimal.Decimal
			}{
				{"computed", r.Computed, dec(computed)}, {"top-up", r.TopUp, dec(tc.topUp)}, {"fee", r.Fee, dec(tc.want)}, {"carry out", r.CarryOut, dec(tc.carryOut)},
				{"base", r.Base, dec(tc.basis).Add(dec(tc.carriedIn))},
			} {
				if !f.got.Equal(f.want) {
					t.Errorf("Compute(%s, %s) %s = %s, want %s", tc.basis, tc.carriedIn, f.name, f.got, f.want)
				}
			}
			if !r.Fee.Equal(r.Computed.Add(r.TopUp)) || r.TopUp.IsNegative() || r.CarryOut.IsPositive() {
				t.Errorf("Compute(%s): inconsistent result %+v", tc.basis, r)
			}
		})
	}
}

func itoa(i int) string { return decimal.NewFromInt(int64(i)).String() }

// TestFeeRoundsOnce pins the rounding point: the exact total is rounded once,
// not each bracket. Brackets of 0.05 at 10% (0.005 each) are 0.01 in total;
// rounding each half-up would give 0.02.
func TestFeeRoundsOnce(t *testing.T) {
	up := dec("0.05")
	fc := FeeContract{Name: "f", Party: "p", Basis: BasisGGR, Period: PeriodMonth, Currency: cur(t, "EUR"), Rounding: money.HalfUp, Mode: Marginal,
		Tiers: []Tier{{UpTo: &up, Percent: dec("10")}, {Percent: dec("10")}}, MinimumFee: decimal.Zero}
	r, err := fc.Compute(dec("0.10"), decimal.Zero)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Lines) != 2 || !r.Exact.Equal(dec("0.01")) || !r.Computed.Equal(dec("0.01")) {
		t.Fatalf("Compute(0.10) = exact %s computed %s lines %+v, want 0.01 from two lines of 0.005", r.Exact, r.Computed, r.Lines)
	}
	// Every named rounding mode, and a currency with another exponent.
	fc.Tiers = []Tier{{Percent: dec("12.5")}}
	for _, tc := range []struct {
		code, basis string
		mode        money.Rounding
		want        string
	}{
		{"EUR", "0.20", money.HalfUp, "0.03"}, {"EUR", "0.20", money.HalfEven, "0.02"}, {"EUR", "0.20", money.Down, "0.02"},
		{"JPY", "20", money.HalfUp, "3"}, {"JPY", "20", money.HalfEven, "2"}, {"KWD", "0.020", money.HalfUp, "0.003"},
	} {
		fc.Currency, fc.Rounding = cur(t, tc.code), tc.mode
		r, err := fc.Compute(dec(tc.basis), decimal.Zero)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Fee.Equal(dec(tc.want)) {
			t.Errorf("12.5%% of %s %s with %s = %s, want %s", tc.basis, tc.code, tc.mode, r.Fee, tc.want)
		}
	}
}

func TestFeeComputeErrors(t *testing.T) {
	fees := mustParseFees(t, "testdata/vectors/tiers.hcl")
	tests := []struct {
		fee, basis, carriedIn, errHas string
	}{
		{"marginal-carry", "1.001", "0", "more than 2 decimals"},
		{"marginal-carry", "1", "-0.001", "more than 2 decimals"},
		{"marginal-carry", "1", "0.01", "positive"},
		{"marginal-no-carry", "1", "-0.01", "does not carry"},
	}
	for _, tc := range tests {
		_, err := fees[tc.fee].Compute(dec(tc.basis), dec(tc.carriedIn))
		if !errors.Is(err, ErrFeeInput) || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s.Compute(%s, %s) error = %v, want ErrFeeInput containing %q", tc.fee, tc.basis, tc.carriedIn, err, tc.errHas)
		}
	}
	// The carry from ComputePeriods names the period.
	fc := fees["marginal-carry"]
	if _, err := fc.ComputePeriods([]decimal.Decimal{dec("1"), dec("0.001")}); err == nil || !strings.Contains(err.Error(), "period 2") {
		t.Errorf("ComputePeriods with a bad second basis: error %v, want one naming period 2", err)
	}
	if rs, err := fc.ComputePeriods(nil); err != nil || len(rs) != 0 {
		t.Errorf("ComputePeriods(nil) = %v, %v", rs, err)
	}
}

func TestFeeValidate(t *testing.T) {
	p := func(s string) *decimal.Decimal { d := dec(s); return &d }
	good := func() FeeContract {
		return FeeContract{Name: "f", Party: "provider", Basis: BasisGGR, Period: PeriodMonth, Currency: cur(t, "EUR"), Rounding: money.HalfUp,
			Mode: Marginal, Tiers: []Tier{{UpTo: p("100"), Percent: dec("12")}, {Percent: dec("8")}}, MinimumFee: dec("10.00")}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*FeeContract)
		errHas string
	}{
		{"unknown currency", func(c *FeeContract) { c.Currency = money.Currency{Code: "XXX", Exponent: 2} }, `"XXX" is not a known`},
		{"wrong exponent", func(c *FeeContract) { c.Currency.Exponent = 3 }, "exponent 2, not 3"},
		{"no rounding", func(c *FeeContract) { c.Rounding = "" }, "rounding: no rounding"},
		{"bad rounding", func(c *FeeContract) { c.Rounding = "up" }, `unknown rounding "up"`},
		{"bad mode", func(c *FeeContract) { c.Mode = "stepped" }, `unknown mode "stepped"`},
		{"bad basis", func(c *FeeContract) { c.Basis = "withdrawals" }, `unknown basis "withdrawals"`},
		{"bad period", func(c *FeeContract) { c.Period = "year" }, `unknown period "year"`},
		{"no party", func(c *FeeContract) { c.Party = "" }, `party: party "" is empty`},
		{"party reference", func(c *FeeContract) { c.Party = "${provider}" }, "is a reference"},
		{"negative minimum", func(c *FeeContract) { c.MinimumFee = dec("-1") }, "minimum: -1 is negative"},
		{"minimum decimals", func(c *FeeContract) { c.MinimumFee = dec("1.001") }, "minimum: 1.001 has more decimals"},
		{"no tiers", func(c *FeeContract) { c.Tiers = nil }, "fee has no tier"},
		{"too many tiers", func(c *FeeContract) { c.Tiers = make([]Tier, MaxTiers+1) }, "more than 64"},
		{"percent over 100", func(c *FeeContract) { c.Tiers[0].Percent = dec("100.01") }, `tier 1: percent: 100.01 is not between 0 and 100`},
		{"negative percent", func(c *FeeContract) { c.Tiers[1].Percent = dec("-1") }, `tier 2: percent: -1 is not between`},
		{"last bounded", func(c *FeeContract) { c.Tiers[1].UpTo = p("200") }, "the last tier is bounded"},
		{"middle unbounded", func(c *FeeContract) { c.Tiers = append([]Tier{{Percent: dec("1")}}, c.Tiers...) }, "tier 1: up_to: tier 1 has no up_to but is not the last"},
		{"descending", func(c *FeeContract) { c.Tiers = append([]Tier{{UpTo: p("200"), Percent: dec("1")}}, c.Tiers...) }, "tier 2: up_to: 100 is not above the previous tier's up_to 200"},
		{"equal bounds", func(c *FeeContract) { c.Tiers = append([]Tier{{UpTo: p("100"), Percent: dec("1")}}, c.Tiers...) }, "100 is not above"},
		{"zero bound", func(c *FeeContract) { c.Tiers[0].UpTo = p("0") }, "0 is not positive"},
		{"bound decimals", func(c *FeeContract) { c.Tiers[0].UpTo = p("0.001") }, "0.001 has more decimals"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mutate(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("Validate() = %v, want ErrInvalid containing %q", err, tc.errHas)
			}
			if _, cerr := c.Compute(dec("1"), decimal.Zero); !errors.Is(cerr, ErrInvalid) {
				t.Fatalf("Compute on an invalid contract: %v", cerr)
			}
		})
	}
}

// feeHead is a ruleset opening with the keys Parse needs; feeBody a valid fee.
const feeHead = `ruleset "v1" {
  effective  = "2026-11-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"
`

const feeBody = `  fee "pf" {
    party          = "provider"
    basis          = "ggr"
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "2500.00"
    carry_negative = true
    tier {
      up_to   = "100000.00"
      percent = "12"
    }
    tier {
      percent = "8"
    }
  }
`

func TestParseFees(t *testing.T) {
	fees, err := ParseFees([]byte(feeHead+opShare+feeBody+"}"), "test.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(fees) != 1 {
		t.Fatalf("ParseFees gave %d fees, want 1", len(fees))
	}
	f := fees[0]
	if f.Ruleset != "v1" || f.Name != "pf" || f.Party != "provider" || f.Rounding != money.HalfUp || f.Mode != Marginal || !f.CarryNegative ||
		f.Currency != cur(t, "EUR") || !f.MinimumFee.Equal(dec("2500")) || len(f.Tiers) != 2 || !f.Tiers[0].UpTo.Equal(dec("100000")) || f.Tiers[1].UpTo != nil {
		t.Fatalf("ParseFees = %+v", f)
	}
	// Files without fees, and everything around the fee blocks, are left alone.
	for _, src := range []string{
		"", "# nothing", mustRead(t, "testdata/example.hcl"), feeHead + "  colour = \"red\"\n  rule \"x\" { whatever = 1 }\n}",
		"other \"block\" {\n  fee \"not-in-a-ruleset\" {\n    party = 1\n  }\n}",
	} {
		fees, err := ParseFees([]byte(src), "test.hcl")
		if err != nil || len(fees) != 0 {
			t.Errorf("ParseFees(%q) = %v, %v; want no fees and no error", src, fees, err)
		}
	}
	// Several rulesets: every fee, in file order, with its ruleset.
	src := feeHead + feeBody + strings.Replace(feeBody, `"pf"`, `"second"`, 1) + "}\n" + strings.Replace(feeHead, "v1", "v2", 1) + feeBody + "}"
	fees, err = ParseFees([]byte(src), "test.hcl")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fees {
		got = append(got, f.Ruleset+"/"+f.Name)
	}
	if strings.Join(got, " ") != "v1/pf v1/second v2/pf" {
		t.Errorf("ParseFees order = %v", got)
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseFeesErrors(t *testing.T) {
	repl := func(old, new string) string { return feeHead + strings.Replace(feeBody, old, new, 1) + "}" }
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"syntax", `ruleset "x" { fee "y" {`, []string{"test.hcl:1:"}},
		{"unknown key", repl(`basis`, `colour = "red"
    basis`), []string{"test.hcl:7:5: Unsupported argument", `"colour"`}},
		{"missing carry", repl("    carry_negative = true\n", ""), []string{"test.hcl:5:", `"carry_negative" is required`}},
		{"unquoted number", repl(`"12"`, `12`), []string{"test.hcl:15:17: unquoted number", `percent = "12.5"`}},
		{"bad mode", repl(`"marginal"`, `"stepped"`), []string{`test.hcl:10:22: mode: unknown mode "stepped"`, `"retroactive"`}},
		{"bad basis", repl(`"ggr"`, `"withdrawals"`), []string{`test.hcl:7:22: basis: unknown basis "withdrawals"`}},
		{"bad period", repl(`"month"`, `"quarter"`), []string{`test.hcl:8:22: period: unknown period "quarter"`}},
		{"bad currency", repl(`"EUR"`, `"EURO"`), []string{`test.hcl:9:22: currency: "EURO" is not a known ISO 4217 currency code`}},
		{"bad rounding", repl(`basis`, `rounding = "nearest"
    basis`), []string{`test.hcl:7:16: rounding: unknown rounding "nearest"`}},
		{"no rounding anywhere", strings.Replace(feeHead, `  rounding   = "half_up"`+"\n", "", 1) + feeBody + "}", []string{`test.hcl:4:3: rounding: no rounding`}},
		{"bad inherited rounding", strings.Replace(feeHead, `"half_up"`, `"nearest"`, 1) + feeBody + "}", []string{`test.hcl:3:16: rounding: unknown rounding "nearest"`}},
		{"minimum decimals", repl(`"2500.00"`, `"2500.001"`), []string{`test.hcl:11:22: minimum: 2500.001 has more decimals than EUR allows (2)`}},
		{"minimum notation", repl(`"2500.00"`, `"-5"`), []string{`test.hcl:11:22: minimum: "-5" is not a plain non-negative decimal`}},
		{"percent over 100", repl(`"8"`, `"100.5"`), []string{`test.hcl:18:17: percent: 100.5 is not between 0 and 100`}},
		{"percent notation", repl(`"8"`, `"8%"`), []string{`test.hcl:18:17: percent: "8%" is not a plain`}},
		{"last bounded", repl(`percent = "8"`, `up_to = "200000.00"
      percent = "8"`), []string{`test.hcl:18:15: up_to: the last tier is bounded`, `tier { percent = "8" }`}},
		{"descending", repl(`percent = "8"`, `up_to = "50000.00"
      percent = "8"`), []string{`test.hcl:18:15: up_to: 50000 is not above the previous tier's up_to 100000`, "ascending"}},
		{"middle unbounded", repl(`up_to   = "100000.00"`, ``), []string{`test.hcl:13:5: up_to: tier 1 has no up_to but is not the last tier`}},
		{"bound decimals", repl(`"100000.00"`, `"100000.001"`), []string{`test.hcl:14:17: up_to: 100000.001 has more decimals`}},
		{"no tiers", strings.Replace(feeHead+feeBody+"}", "    tier {\n      up_to   = \"100000.00\"\n      percent = \"12\"\n    }\n    tier {\n      percent = \"8\"\n    }\n", "", 1), []string{`test.hcl:5:3: tier: fee has no tier`}},
		{"party reference", repl(`"provider"`, `"${provider}"`), []string{`test.hcl:6:22: party: party "${provider}" is a reference`}},
		{"unknown variable", repl(`"provider"`, `"${studio}"`), []string{`test.hcl:6:`, "Unknown variable"}},
		{"duplicate fee", feeHead + feeBody + feeBody + "}", []string{`test.hcl:21:3: fee: fee "pf" already defined at test.hcl:5:3`}},
		{"fee without label", feeHead + "  fee {\n  }\n}", []string{"test.hcl:5:"}},
		{"bool as string", repl(`= true`, `= "yes"`), []string{"test.hcl:12:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fees, err := ParseFees([]byte(tc.src), "test.hcl")
			if err == nil {
				t.Fatalf("ParseFees accepted it: %+v\n%s", fees, tc.src)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			var pe *ParseError
			if errors.As(err, &pe) {
				for _, p := range pe.Problems {
					if !strings.HasPrefix(p.Pos, "test.hcl:") {
						t.Errorf("problem without file:line: %s", p)
					}
				}
			}
		})
	}
}

// TestParseFeesReportsAllProblems: one pass reports every problem of every
// fee, each once.
func TestParseFeesReportsAllProblems(t *testing.T) {
	bad := strings.NewReplacer(`"marginal"`, `"stepped"`, `"EUR"`, `"EURO"`, `"8"`, `"101"`).Replace(feeBody)
	src := feeHead + bad + strings.Replace(bad, `"pf"`, `"pf2"`, 1) + "}"
	_, err := ParseFees([]byte(src), "test.hcl")
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("ParseFees error = %v, want a *ParseError", err)
	}
	if len(pe.Problems) != 6 {
		t.Fatalf("got %d problems, want 6 (3 per fee):\n%v", len(pe.Problems), err)
	}
	seen := map[string]bool{}
	for _, p := range pe.Problems {
		if seen[p.String()] {
			t.Errorf("problem reported twice: %s", p)
		}
		seen[p.String()] = true
		if p.Hint == "" {
			t.Errorf("problem without a fix hint: %s", p)
		}
	}
}

func TestParseFeesTooLarge(t *testing.T) {
	_, err := ParseFees(make([]byte, MaxSourceBytes+1), "big.hcl")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("ParseFees(too large) = %v", err)
	}
}

// TestMarginalMonotone is a seeded property: for random valid contracts a
// marginal fee never decreases when the basis grows (each bracket adds a
// non-negative amount, rounding and the minimum are monotone). A retroactive
// fee is not monotone (TestFeeCliff); this test also finds its cliffs.
func TestMarginalMonotone(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TALLY_SEED"); s != "" {
		seed = uint64(dec(s).IntPart())
	}
	t.Logf("seed %d (rerun with TALLY_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	codes := []string{"JPY", "EUR", "KWD"}
	modes := []money.Rounding{money.HalfUp, money.HalfEven, money.Down}
	iterations := 2000
	if testing.Short() {
		iterations = 200
	}
	cliffs := 0
	for it := 0; it < iterations; it++ {
		c := cur(t, codes[rng.IntN(len(codes))])
		fc := FeeContract{Name: "f", Party: "p", Basis: BasisGGR, Period: PeriodMonth, Currency: c, Rounding: modes[rng.IntN(len(modes))],
			Mode: Marginal, CarryNegative: rng.IntN(2) == 0, MinimumFee: decimal.New(rng.Int64N(3)*rng.Int64N(100_000), -c.Exponent)}
		bound := int64(0)
		for n := rng.IntN(5); n > 0; n-- {
			bound += 1 + rng.Int64N(1_000_000)
			u := decimal.New(bound, -c.Exponent)
			fc.Tiers = append(fc.Tiers, Tier{UpTo: &u, Percent: decimal.New(rng.Int64N(10_001), -2)})
		}
		fc.Tiers = append(fc.Tiers, Tier{Percent: decimal.New(rng.Int64N(10_001), -2)})
		retro := fc
		retro.Mode = Retroactive
		a := decimal.New(rng.Int64N(2*bound+1000)-500, -c.Exponent)
		b := a.Add(decimal.New(rng.Int64N(1000), -c.Exponent))
		if rng.IntN(4) == 0 && len(fc.Tiers) > 1 { // straddle a bound by one unit
			a = *fc.Tiers[rng.IntN(len(fc.Tiers)-1)].UpTo
			b = a.Add(c.Unit())
		}
		ra, err := fc.Compute(a, decimal.Zero)
		if err != nil {
			t.Fatalf("seed %d iteration %d: Compute(%s): %v", seed, it, a, err)
		}
		rb, err := fc.Compute(b, decimal.Zero)
		if err != nil {
			t.Fatalf("seed %d iteration %d: Compute(%s): %v", seed, it, b, err)
		}
		if rb.Fee.LessThan(ra.Fee) || rb.Exact.LessThan(ra.Exact) {
			t.Fatalf("seed %d iteration %d: marginal fee(%s) = %s < fee(%s) = %s for %+v", seed, it, b, rb.Fee, a, ra.Fee, fc)
		}
		for _, r := range []FeeResult{ra, rb} {
			if !c.Fits(r.Fee) || r.Fee.LessThan(fc.MinimumFee) || r.TopUp.IsNegative() {
				t.Fatalf("seed %d iteration %d: result %+v breaks an invariant", seed, it, r)
			}
			sum := decimal.Zero
			for _, l := range r.Lines {
				sum = sum.Add(l.Base)
			}
			if r.Base.IsPositive() && !sum.Equal(r.Base) {
				t.Fatalf("seed %d iteration %d: lines cover %s of base %s", seed, it, sum, r.Base)
			}
		}
		xa, _ := retro.Compute(a, decimal.Zero)
		xb, _ := retro.Compute(b, decimal.Zero)
		if xb.Exact.LessThan(xa.Exact) {
			cliffs++
		}
	}
	t.Logf("retroactive cliffs found: %d of %d", cliffs, iterations)
}

// FuzzParseFees checks that ParseFees never panics and that every contract it
// accepts is valid and computes without panicking.
func FuzzParseFees(f *testing.F) {
	for _, p := range []string{"testdata/vectors/tiers.hcl", "testdata/example.hcl"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(feeHead + feeBody + "}"))
	f.Add([]byte(feeHead + strings.Replace(feeBody, `"12"`, `1e9`, 1) + "}"))
	f.Add([]byte(`ruleset "x" { fee "y" { tier {} tier { up_to = "" } } }`))
	f.Add([]byte(`ruleset "x" { fee "y" {`))
	f.Fuzz(func(t *testing.T, src []byte) {
		fees, err := ParseFees(src, "fuzz.hcl")
		if err != nil {
			return
		}
		for _, fc := range fees {
			if err := fc.Validate(); err != nil {
				t.Fatalf("accepted an invalid contract: %v", err)
			}
			for _, b := range []string{"-1000", "0", "1", "99999.99", "250000", "1e12"} {
				basis := money.Round(dec(b), fc.Currency.Exponent, money.Down)
				r, err := fc.Compute(basis, decimal.Zero)
				if err != nil {
					t.Fatalf("Compute(%s): %v", basis, err)
				}
				if !r.Fee.Equal(r.Computed.Add(r.TopUp)) || r.Fee.LessThan(fc.MinimumFee) {
					t.Fatalf("Compute(%s) = %+v", basis, r)
				}
			}
		}
	})
}

// TestParseFeesMissingOnce: an absent required attribute is one problem, not
// also an "invalid value" problem.
func TestParseFeesMissingOnce(t *testing.T) {
	src := feeHead + strings.NewReplacer("    currency       = \"EUR\"\n", "", "      percent = \"8\"\n", "", "    minimum        = \"2500.00\"\n", "").Replace(feeBody) + "}"
	_, err := ParseFees([]byte(src), "test.hcl")
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("ParseFees error = %v, want a *ParseError", err)
	}
	if len(pe.Problems) != 3 {
		t.Fatalf("got %d problems, want 3 (currency, minimum, percent missing):\n%v", len(pe.Problems), err)
	}
	for _, w := range []string{`"currency" is required`, `"minimum" is required`, `"percent" is required`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}

// The rule parser accepts a file with fee blocks, and ParseFees reads the
// same file: one rule book holds both splits and period fees.
func TestParseAcceptsFeeBlocks(t *testing.T) {
	path := filepath.Join("testdata", "vectors", "tiers.hcl")
	book, err := ParseFile(path)
	if err != nil {
		t.Fatalf("ParseFile(%s) = %v", path, err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fees, err := ParseFees(src, path)
	if err != nil || len(fees) == 0 {
		t.Fatalf("ParseFees(%s) = %d contracts, %v", path, len(fees), err)
	}
	if len(book.Versions()) == 0 {
		t.Fatal("no versions")
	}
}

// TestFeesInCanonical: fee contracts are part of their version's canonical
// form and hash; decoding the canonical bytes gives the same contracts, and a
// change of any fee term changes the hash.
func TestFeesInCanonical(t *testing.T) {
	book := mustParseFile(t, "testdata/vectors/tiers.hcl")
	v := book.Versions()[0]
	want := mustParseFees(t, "testdata/vectors/tiers.hcl")
	got := v.Fees()
	if len(got) != len(want) {
		t.Fatalf("version has %d fees, ParseFees %d", len(got), len(want))
	}
	for i, f := range got {
		if i > 0 && got[i-1].Name >= f.Name {
			t.Errorf("fees not sorted by name: %q before %q", got[i-1].Name, f.Name)
		}
		if !sameFee(f, want[f.Name]) {
			t.Errorf("fee %q from Parse = %+v, ParseFees %+v", f.Name, f, want[f.Name])
		}
	}
	if !strings.Contains(string(v.Canonical()), `"fees":[{"name":"marginal-carry","party":"provider","basis":"ggr","period":"month","currency":"EUR","rounding":"half_up","mode":"marginal","minimum":"2500","carry_negative":true,"tiers":[{"up_to":"100000","percent":"12"}`) {
		t.Errorf("canonical form lacks the spelled-out fee terms:\n%s", v.Canonical())
	}
	back, err := ParseCanonical(v.Canonical())
	if err != nil {
		t.Fatalf("ParseCanonical: %v", err)
	}
	if back.Hash() != v.Hash() || len(back.Fees()) != len(got) {
		t.Fatalf("canonical round trip changed the version")
	}
	for i, f := range back.Fees() {
		if !sameFee(f, got[i]) {
			t.Errorf("round trip fee %d = %+v, want %+v", i, f, got[i])
		}
	}
	src, err := os.ReadFile("testdata/vectors/tiers.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, edit := range [][2]string{
		{`minimum        = "2500.00"`, `minimum        = "2500.01"`},
		{`carry_negative = true`, `carry_negative = false`},
		{`percent = "8"`, `percent = "8.5"`},
	} {
		b2 := mustParse(t, strings.Replace(string(src), edit[0], edit[1], 1))
		if b2.Versions()[0].Hash() == v.Hash() {
			t.Errorf("editing %q to %q kept the hash", edit[0], edit[1])
		}
	}
	cosmetic := mustParse(t, strings.Replace(string(src), `minimum        = "2500.00"`, `minimum        = "2500"`, -1))
	if cosmetic.Versions()[0].Hash() != v.Hash() {
		t.Errorf(`"2500.00" → "2500" changed the hash`)
	}
}

func sameFee(a, b FeeContract) bool {
	if a.Ruleset != b.Ruleset || a.Name != b.Name || a.Party != b.Party || a.Basis != b.Basis || a.Period != b.Period ||
		a.Currency != b.Currency || a.Rounding != b.Rounding || a.Mode != b.Mode || !a.MinimumFee.Equal(b.MinimumFee) ||
		(a.MaximumFee == nil) != (b.MaximumFee == nil) || (a.MaximumFee != nil && !a.MaximumFee.Equal(*b.MaximumFee)) ||
		a.CarryNegative != b.CarryNegative || len(a.Tiers) != len(b.Tiers) ||
		strings.Join(a.Providers, ",") != strings.Join(b.Providers, ",") || strings.Join(a.Games, ",") != strings.Join(b.Games, ",") ||
		strings.Join(a.Categories, ",") != strings.Join(b.Categories, ",") || strings.Join(a.Jurisdictions, ",") != strings.Join(b.Jurisdictions, ",") ||
		strings.Join(a.Brands, ",") != strings.Join(b.Brands, ",") {
		return false
	}
	for i := range a.Tiers {
		if !a.Tiers[i].Percent.Equal(b.Tiers[i].Percent) || (a.Tiers[i].UpTo == nil) != (b.Tiers[i].UpTo == nil) ||
			(a.Tiers[i].UpTo != nil && !a.Tiers[i].UpTo.Equal(*b.Tiers[i].UpTo)) {
			return false
		}
	}
	return true
}

// TestFeeSelects: a fee's conditions pick the transactions of its basis.
func TestFeeSelects(t *testing.T) {
	src := feeHead + opShare + strings.Replace(feeBody, `party `, "providers = [\"studio-b\", \"studio-a\"]\n    categories = [\"slot\"]\n    party ", 1) + "}"
	book := mustParse(t, src)
	f := book.Versions()[0].Fees()[0]
	if strings.Join(f.Providers, ",") != "studio-a,studio-b" {
		t.Fatalf("providers = %v, want sorted", f.Providers)
	}
	slot := tx(t, "bet", "1.00", "EUR", "2026-11-01T00:00:00Z")
	slot.Category = "slot"
	live := slot
	live.Category = "live"
	jpy := tx(t, "bet", "1", "JPY", "2026-11-01T00:00:00Z")
	jpy.Category = "slot"
	for _, c := range []struct {
		name     string
		provider string
		tx       txn.Tx
		want     bool
	}{
		{"listed provider and category", "studio-a", slot, true},
		{"other provider", "studio-c", slot, false},
		{"other category", "studio-b", live, false},
		{"other currency", "studio-a", jpy, false},
	} {
		if got := f.Selects(c.provider, c.tx); got != c.want {
			t.Errorf("%s: Selects = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestFeeCap: a maximum caps the computed fee with an explicit cap line,
// before the minimum applies; it is part of the canonical form.
func TestFeeCap(t *testing.T) {
	src := feeHead + opShare + strings.Replace(feeBody, `minimum        = "2500.00"`, "minimum        = \"2500.00\"\n    maximum        = \"20000.00\"", 1) + "}"
	book := mustParse(t, src)
	f := book.Versions()[0].Fees()[0]
	if f.MaximumFee == nil || f.MaximumFee.String() != "20000" {
		t.Fatalf("MaximumFee = %v, want 20000", f.MaximumFee)
	}
	tests := []struct{ ggr, computed, capped, topUp, fee string }{
		{"287654.33", "27012.35", "7012.35", "0.00", "20000.00"}, // 12% of 100,000 + 8% of 187,654.33
		{"150000.00", "16000.00", "0.00", "0.00", "16000.00"},
		{"10000.00", "1200.00", "0.00", "1300.00", "2500.00"},
	}
	eur := cur(t, "EUR")
	for _, tc := range tests {
		r, err := f.Compute(dec(tc.ggr), decimal.Zero)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{eur.Format(r.Computed), eur.Format(r.Capped), eur.Format(r.TopUp), eur.Format(r.Fee)}
		if strings.Join(got, " ") != strings.Join([]string{tc.computed, tc.capped, tc.topUp, tc.fee}, " ") {
			t.Errorf("Compute(%s) computed/capped/top-up/fee = %v, want %s %s %s %s", tc.ggr, got, tc.computed, tc.capped, tc.topUp, tc.fee)
		}
	}
	if !strings.Contains(string(book.Versions()[0].Canonical()), `"minimum":"2500","maximum":"20000"`) {
		t.Errorf("canonical form lacks the cap: %s", book.Versions()[0].Canonical())
	}
	bad := strings.Replace(src, `maximum        = "20000.00"`, `maximum        = "2000.00"`, 1)
	if _, err := Parse([]byte(bad), "t.hcl"); err == nil || !strings.Contains(err.Error(), "maximum 2000 is below minimum 2500") {
		t.Errorf("Parse with maximum below minimum = %v", err)
	}
}
