package payout

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/settle/statement"
)

const banksHCL = `
debtor {
  name = "Operator Ltd"
  iban = "DE89370400440532013000"
  bic  = "COBADEFFXXX"
}
party "A" {
  name = "Affiliate A BV"
  iban = "NL91ABNA0417164300"
  bic  = "ABNANL2A"
}
party "B" {
  name = "Studio B Ltd"
  iban = "GB82WEST12345698765432"
}
`

func banks(t *testing.T) *Banks {
	t.Helper()
	b, err := ParseBanks([]byte(banksHCL), "banks.hcl")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stmt(party, cur, period, closing, due string) Candidate {
	p, _ := statement.ParsePeriod(period)
	s := &statement.Statement{Party: party, Currency: cur, Period: period, Start: p.Start, End: p.End(), Closing: closing}
	if due != "" {
		s.Payout = &statement.Payout{Due: due}
	}
	return Candidate{Hash: strings.Repeat(party[:1], 8) + period, Statement: s}
}

// TestIBAN: ISO 13616 examples pass, one changed digit or letter fails.
func TestIBAN(t *testing.T) {
	for _, ok := range []string{"DE89370400440532013000", "NL91ABNA0417164300", "GB82WEST12345698765432", "FR1420041010050500013M02606"} {
		if err := ValidIBAN(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"DE89370400440532013001", "NL91ABNA0417164301", "GB82 WEST 1234 5698 7654 32", "de89370400440532013000", "DE8937"} {
		if err := ValidIBAN(bad); !errors.Is(err, ErrBankDetails) {
			t.Errorf("%s accepted: %v", bad, err)
		}
	}
	if _, err := ParseBanks([]byte(strings.Replace(banksHCL, "NL91ABNA0417164300", "NL91ABNA0417164301", 1)), "b.hcl"); !errors.Is(err, ErrBankDetails) || !strings.Contains(err.Error(), `party "A"`) {
		t.Errorf("bad IBAN in the bank file: %v", err)
	}
}

// TestPlanAndPain001: a run pays the due amounts; the XML parses back with
// CtrlSum and NbOfTxs equal to the items; the CSV sums equal too.
func TestPlanAndPain001(t *testing.T) {
	cands := []Candidate{
		stmt("A", "EUR", "2026-11", "190.00", "190.00"),
		stmt("B", "EUR", "2026-11", "1234.56", ""),
		stmt("C", "EUR", "2026-11", "10.00", ""), // no bank details
		stmt("A", "JPY", "2026-11", "5000", "0"), // withheld
	}
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	req := Request{Period: "2026-11", CreatedBy: "alice", ApprovedBy: "bob", Now: now, Banks: banks(t)}
	run, skips, err := Plan(nil, cands, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Items) != 2 || run.Items[0].Amount != "190.00" || run.Items[1].Amount != "1234.56" || len(skips) != 2 {
		t.Fatalf("items %+v skips %+v", run.Items, skips)
	}
	b, err := run.Pain001()
	if err != nil {
		t.Fatal(err)
	}
	var doc Document
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("pain.001 does not parse back: %v\n%s", err, b)
	}
	sum := decimal.Zero
	for _, tx := range doc.CstmrCdt.PmtInf[0].CdtTrfTxInf {
		sum = sum.Add(decimal.RequireFromString(tx.Amt.InstdAmt.Value))
		if !strings.Contains(tx.RmtInf.Ustrd, "statement") || tx.Amt.InstdAmt.Ccy != "EUR" {
			t.Errorf("tx %+v", tx)
		}
	}
	g := doc.CstmrCdt.GrpHdr
	if g.CtrlSum != "1424.56" || !decimal.RequireFromString(g.CtrlSum).Equal(sum) || g.NbOfTxs != "2" || g.MsgId != "RUN-000001" || doc.CstmrCdt.PmtInf[0].CtrlSum != g.CtrlSum {
		t.Errorf("GrpHdr %+v, Σ InstdAmt %s", g, sum)
	}
	if doc.CstmrCdt.PmtInf[0].DbtrAcct.Id.IBAN != "DE89370400440532013000" || doc.CstmrCdt.PmtInf[0].CdtTrfTxInf[1].CdtrAgt != nil {
		t.Errorf("debtor or agent wrong: %s", b)
	}
	if !bytes.Contains(b, []byte(`xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"`)) {
		t.Errorf("namespace missing:\n%s", b)
	}
	rows, err := csv.NewReader(bytes.NewReader(run.CSV())).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("csv %v %v", rows, err)
	}
	csum := decimal.Zero
	for _, r := range rows[1:] {
		csum = csum.Add(decimal.RequireFromString(r[8]))
	}
	if !csum.Equal(sum) {
		t.Errorf("CSV Σ %s ≠ %s", csum, sum)
	}
}

// TestPlanRefuses: equal or missing maker and checker, a provisional
// statement, and a run with nothing left to pay are refused.
func TestPlanRefuses(t *testing.T) {
	c := []Candidate{stmt("A", "EUR", "2026-11", "190.00", "190.00")}
	req := Request{Period: "2026-11", CreatedBy: "alice", ApprovedBy: "alice", Now: time.Now(), Banks: banks(t)}
	if _, _, err := Plan(nil, c, req); !errors.Is(err, ErrMakerChecker) {
		t.Errorf("equal maker and checker: %v", err)
	}
	req.ApprovedBy = ""
	if _, _, err := Plan(nil, c, req); !errors.Is(err, ErrMakerChecker) {
		t.Errorf("no checker: %v", err)
	}
	req.ApprovedBy = "bob"
	prov := stmt("A", "EUR", "2026-12", "200.00", "200.00")
	prov.Statement.Provisional = true
	if _, _, err := Plan(nil, append(c, prov), req); !errors.Is(err, ErrProvisional) {
		t.Errorf("provisional statement: %v", err)
	}
}

// TestRunsNeverPayTwice: recorded runs form a signed chain; a second run
// over the same statements pays nothing; the next month pays only what was
// not paid before (the closing is cumulative).
func TestRunsNeverPayTwice(t *testing.T) {
	skey, vkey, err := note.GenerateKey(nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	root := t.TempDir()
	req := Request{Period: "2026-11", CreatedBy: "alice", ApprovedBy: "bob", Now: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), Banks: banks(t)}
	nov := []Candidate{stmt("A", "EUR", "2026-11", "190.00", "190.00")}
	run, _, err := Plan(nil, nov, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Record(root, nil, run, signer); err != nil {
		t.Fatal(err)
	}
	recs, err := Load(root, verifier)
	if err != nil || len(recs) != 1 {
		t.Fatalf("load: %v %d", err, len(recs))
	}
	if _, err := os.Stat(filepath.Join(root, "RUN-000001.xml")); err != nil {
		t.Fatal(err)
	}
	_, skips, err := Plan(Runs(recs), nov, req)
	if !errors.Is(err, ErrNothingToPay) || len(skips) != 1 || !strings.Contains(skips[0].Reason, "already paid by RUN-000001") {
		t.Fatalf("second run: %v %+v", err, skips)
	}
	// A concurrent run with the same seq is refused.
	if _, err := Record(root, nil, run, signer); !errors.Is(err, ErrConflict) {
		t.Fatalf("same seq twice: %v", err)
	}
	req.Period = "2026-12"
	dec := []Candidate{stmt("A", "EUR", "2026-12", "240.00", "240.00")}
	run2, _, err := Plan(Runs(recs), dec, req)
	if err != nil || run2.Items[0].Amount != "50.00" || run2.Items[0].PaidBefore != "190.00" {
		t.Fatalf("December: %v %+v", err, run2)
	}
	if _, err := Record(root, recs, run2, signer); err != nil {
		t.Fatal(err)
	}
	// November again, after December was paid: refused.
	recs, _ = Load(root, verifier)
	if _, skips, err := Plan(Runs(recs), append(nov, dec...), req); !errors.Is(err, ErrNothingToPay) || len(skips) != 2 {
		t.Fatalf("pay again: %v %+v", err, skips)
	}
	// Tampering breaks the chain.
	p := filepath.Join(root, "RUN-000001.note")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(b, []byte("190.00"), []byte("990.00"), 1), 0o644)
	if _, err := Load(root, verifier); !errors.Is(err, ErrChain) {
		t.Fatalf("tampered run: %v", err)
	}
}
