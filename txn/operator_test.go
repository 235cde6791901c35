package txn

import (
	"strings"
	"testing"
	"time"

	"github.com/tally-mesh/tally/money"
)

const goodCorrection = `{"id":"adj-exc-7-1","type":"correction","amount":"0.00","currency":"EUR","occurred_at":"2026-12-03T10:00:00Z","meta":{"approvals_required":"2","approved_by":"bob,carol","exception":"exc-7","lines":"studio-a=12.50;operator=-12.50","proposed_by":"alice","reason":"late rollback credited twice"}}`

const goodFX = `{"id":"fx-ecb-EURUSD-1764756000","type":"fx_rate","amount":"0.00","currency":"EUR","occurred_at":"2025-12-03T10:00:00Z","meta":{"pair":"EUR/USD","posted_by":"alice","rate":"1.0842","source":"ecb"}}`

const (
	payH1      = "1111111111111111111111111111111111111111111111111111111111111111"
	payH2      = "2222222222222222222222222222222222222222222222222222222222222222"
	payRunH    = "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdef0123"
	goodPayRun = `{"id":"payout-RUN-000001","type":"payout_run","amount":"0.00","currency":"EUR","occurred_at":"2026-12-02T09:00:00Z","meta":{"approved_by":"bob","created_by":"alice","run":"RUN-000001","run_hash":"` + payRunH + `","statements":"` + payH1 + ";" + payH2 + `","totals":"EUR=201.13;USD=85.58"}}`
)

// TestOperatorTypesReserved: an edge (Limits without Operator) refuses the
// operator types with reserved_type on both decode paths; the engine's
// limits admit them, again identically on both paths.
func TestOperatorTypesReserved(t *testing.T) {
	for _, in := range []string{goodCorrection, goodFX, goodPayRun} {
		_, e := Decode([]byte(in), Limits{})
		if e == nil || e.Code != CodeReservedType || e.ID == "" {
			t.Fatalf("Decode without Operator = %v, want reserved_type with the id", e)
		}
		if _, e := decodeJSON([]byte(in), DefaultLimits()); e == nil || e.Code != CodeReservedType {
			t.Fatalf("strict path = %v, want reserved_type", e)
		}
		tx, e := Decode([]byte(in), Limits{Operator: true})
		if e != nil {
			t.Fatalf("Decode with Operator: %v", e)
		}
		if string(tx.Canonical()) != in {
			t.Fatalf("canonical %s\n want %s", tx.Canonical(), in)
		}
		if !tx.Type.Operator() || tx.Type.Reversal() || !tx.Type.Valid() {
			t.Fatalf("%s: Operator/Reversal/Valid wrong", tx.Type)
		}
		sameDecode(t, []byte(in))
		sameDecode(t, []byte(strings.Replace(in, `"id"`, `"i\u0064"`, 1))) // strict path only
	}
	for _, typ := range []Type{Bet, Win, Rollback, Deposit} {
		if typ.Operator() {
			t.Errorf("%s.Operator() = true", typ)
		}
	}
}

func decodeOp(t *testing.T, s string) Tx {
	t.Helper()
	tx, e := Decode([]byte(s), Limits{Operator: true})
	if e != nil {
		t.Fatalf("decode %s: %v", s, e)
	}
	return tx
}

func TestParseCorrection(t *testing.T) {
	c, err := ParseCorrection(decodeOp(t, goodCorrection))
	if err != nil {
		t.Fatal(err)
	}
	if c.Exception != "exc-7" || c.ApprovalsRequired != 2 || len(c.ApprovedBy) != 2 || len(c.Lines) != 2 || !c.Net().IsZero() {
		t.Fatalf("parsed %+v", c)
	}
	if got := FormatLines(c.Lines, eur(t)); got != "studio-a=12.50;operator=-12.50" {
		t.Fatalf("FormatLines = %q", got)
	}
	r := strings.NewReplacer
	for _, tc := range []struct{ name, in, reason string }{
		{"approver is proposer", r(`"bob,carol"`, `"bob,alice"`).Replace(goodCorrection), "cannot approve"},
		{"approver twice", r(`"bob,carol"`, `"bob,bob"`).Replace(goodCorrection), "twice"},
		{"too few approvers", r(`"bob,carol"`, `"bob"`).Replace(goodCorrection), "2 required"},
		{"zero required", r(`"approvals_required":"2"`, `"approvals_required":"0"`).Replace(goodCorrection), "must be 1"},
		{"required leading zero", r(`"approvals_required":"2"`, `"approvals_required":"02"`).Replace(goodCorrection), "decimal count"},
		{"lines do not sum to amount", r(`operator=-12.50`, `operator=-12.40`).Replace(goodCorrection), "|Σ lines|"},
		{"line without decimals", r(`studio-a=12.50`, `studio-a=12.5`).Replace(goodCorrection), "exactly 2 decimals"},
		{"line plus sign", r(`studio-a=12.50`, `studio-a=+12.50`).Replace(goodCorrection), "plain decimal"},
		{"negative zero", r(`studio-a=12.50;operator=-12.50`, `studio-a=-0.00`).Replace(goodCorrection), "decimals"},
		{"party twice", r(`operator=-12.50`, `studio-a=-12.50`).Replace(goodCorrection), "twice"},
		{"empty party", r(`operator=-12.50`, `=-12.50`).Replace(goodCorrection), "party"},
		{"trailing separator", r(`operator=-12.50`, `operator=-12.50;`).Replace(goodCorrection), "party=amount"},
		{"wrong id", r(`adj-exc-7-1`, `adj-exc-8-1`).Replace(goodCorrection), "adj-<exception>-<n>"},
		{"missing reason", r(`,"reason":"late rollback credited twice"`, ``).Replace(goodCorrection), "meta.reason"},
		{"extra meta", r(`"reason":`, `"x":"1","reason":`).Replace(goodCorrection), "meta.x"},
		{"parent", r(`"meta"`, `"parent":"p","meta"`).Replace(goodCorrection), "parent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCorrection(decodeOp(t, tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("ParseCorrection = %v, want an error containing %q", err, tc.reason)
			}
		})
	}
}

func TestParseFXRate(t *testing.T) {
	f, err := ParseFXRate(decodeOp(t, goodFX))
	if err != nil {
		t.Fatal(err)
	}
	if f.Base.Code != "EUR" || f.Quote.Code != "USD" || f.Rate.String() != "1.0842" || f.Source != "ecb" {
		t.Fatalf("parsed %+v", f)
	}
	if id := FXRateID("ecb", "EUR", "USD", time.Unix(1764756000, 0)); id != "fx-ecb-EURUSD-1764756000" {
		t.Fatalf("FXRateID = %q", id)
	}
	r := strings.NewReplacer
	for _, tc := range []struct{ name, in, reason string }{
		{"zero rate", r(`"1.0842"`, `"0"`).Replace(goodFX), "> 0"},
		{"negative rate", r(`"1.0842"`, `"-1"`).Replace(goodFX), "plain decimal"},
		{"exponent rate", r(`"1.0842"`, `"1e3"`).Replace(goodFX), "plain decimal"},
		{"13 decimals", r(`"1.0842"`, `"1.0000000000001"`).Replace(goodFX), "decimals"},
		{"leading zero", r(`"1.0842"`, `"01.0842"`).Replace(goodFX), "plain decimal"},
		{"same currency", r(`EUR/USD`, `EUR/EUR`).Replace(goodFX), "two different"},
		{"unknown quote", r(`EUR/USD`, `EUR/XYZ`).Replace(goodFX), "known currencies"},
		{"base not currency", r(`EUR/USD`, `USD/EUR`).Replace(goodFX), "base"},
		{"amount", r(`"0.00"`, `"1.00"`).Replace(goodFX), "amount must be 0"},
		{"id time", r(`-1764756000`, `-1764756001`).Replace(goodFX), "is not"},
		{"no posted_by", r(`"posted_by":"alice",`, ``).Replace(goodFX), "meta.posted_by"},
		{"source dash", r(`"source":"ecb"`, `"source":"e-cb"`).Replace(goodFX), "meta.source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFXRate(decodeOp(t, tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("ParseFXRate = %v, want an error containing %q", err, tc.reason)
			}
		})
	}
}

func eur(t *testing.T) money.Currency {
	t.Helper()
	c, ok := money.Lookup("EUR")
	if !ok {
		t.Fatal("EUR unknown")
	}
	return c
}

func TestParsePayoutRun(t *testing.T) {
	p, err := ParsePayoutRun(decodeOp(t, goodPayRun))
	if err != nil {
		t.Fatal(err)
	}
	if p.Run != "RUN-000001" || p.Seq != 1 || p.RunHash != payRunH || len(p.Statements) != 2 || p.Statements[1] != payH2 ||
		p.CreatedBy != "alice" || p.ApprovedBy != "bob" || len(p.Totals) != 2 || p.Totals[1].Currency.Code != "USD" || p.Totals[1].Sum.String() != "85.58" {
		t.Fatalf("parsed %+v", p)
	}
	if got := FormatTotals(p.Totals); got != "EUR=201.13;USD=85.58" {
		t.Fatalf("FormatTotals = %q", got)
	}
	r := strings.NewReplacer
	for _, tc := range []struct{ name, in, reason string }{
		{"statement twice", r(payH1+";"+payH2, payH1+";"+payH1).Replace(goodPayRun), "twice"},
		{"no statements", r(payH1+";"+payH2, "").Replace(goodPayRun), "meta.statements is empty"},
		{"trailing separator", r(payH1+";"+payH2, payH1+";").Replace(goodPayRun), "item 2"},
		{"uppercase hash", r(payH1+";", strings.ToUpper(payRunH)+";").Replace(goodPayRun), "lowercase hex"},
		{"short hash", r(payH1+";", payH1[:63]+";").Replace(goodPayRun), "lowercase hex"},
		{"run hash", r(payRunH, payRunH[:62]).Replace(goodPayRun), "meta.run_hash"},
		{"maker is checker", r(`"approved_by":"bob"`, `"approved_by":"alice"`).Replace(goodPayRun), "cannot approve"},
		{"approver with comma", r(`"approved_by":"bob"`, `"approved_by":"bob,carol"`).Replace(goodPayRun), "meta.approved_by"},
		{"run not 6 digits", r(`RUN-000001`, `RUN-1`).Replace(goodPayRun), "meta.run"},
		{"run zero", r(`RUN-000001`, `RUN-000000`).Replace(goodPayRun), "meta.run"},
		{"id not of run", r(`"id":"payout-RUN-000001"`, `"id":"payout-RUN-000002"`).Replace(goodPayRun), "is not"},
		{"amount", r(`"amount":"0.00"`, `"amount":"201.13"`).Replace(goodPayRun), "amount must be 0"},
		{"currency not first total", r(`"currency":"EUR"`, `"currency":"USD"`).Replace(goodPayRun), "first of meta.totals"},
		{"totals descending", r(`EUR=201.13;USD=85.58`, `USD=85.58;EUR=201.13`).Replace(goodPayRun), "ascending"},
		{"totals currency twice", r(`EUR=201.13;USD=85.58`, `EUR=201.13;EUR=85.58`).Replace(goodPayRun), "ascending"},
		{"total decimals", r(`USD=85.58`, `USD=85.5`).Replace(goodPayRun), "exactly 2 decimals"},
		{"total zero", r(`USD=85.58`, `USD=0.00`).Replace(goodPayRun), "> 0"},
		{"total negative", r(`USD=85.58`, `USD=-85.58`).Replace(goodPayRun), "> 0"},
		{"total unknown currency", r(`USD=85.58`, `XYZ=85.58`).Replace(goodPayRun), "known currency"},
		{"sub-second", r(`09:00:00Z`, `09:00:00.5Z`).Replace(goodPayRun), "whole second"},
		{"missing totals", r(`,"totals":"EUR=201.13;USD=85.58"`, ``).Replace(goodPayRun), "meta.totals"},
		{"extra meta", r(`"run":`, `"x":"1","run":`).Replace(goodPayRun), "meta.x"},
		{"parent", r(`"meta"`, `"parent":"p","meta"`).Replace(goodPayRun), "parent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePayoutRun(decodeOp(t, tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("ParsePayoutRun = %v, want an error containing %q", err, tc.reason)
			}
		})
	}
	if _, err := ParsePayoutRun(decodeOp(t, goodFX)); err == nil {
		t.Fatal("an fx_rate parsed as a payout_run")
	}
}
