package payout

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"time"

	"github.com/tally-mesh/tally/money"
)

// PainNS is the namespace of ISO 20022 pain.001.001.09
// (CustomerCreditTransferInitiationV09).
const PainNS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"

// Document is the pain.001.001.09 message of a run: one payment
// information block (the debtor's account) with one credit transfer per
// item. Only the elements a run fills are modelled.
type Document struct {
	XMLName  xml.Name         `xml:"urn:iso:std:iso:20022:tech:xsd:pain.001.001.09 Document"`
	CstmrCdt CstmrCdtTrfInitn `xml:"CstmrCdtTrfInitn"`
}

type CstmrCdtTrfInitn struct {
	GrpHdr GrpHdr   `xml:"GrpHdr"`
	PmtInf []PmtInf `xml:"PmtInf"`
}

type GrpHdr struct {
	MsgId    string    `xml:"MsgId"`
	CreDtTm  string    `xml:"CreDtTm"`
	NbOfTxs  string    `xml:"NbOfTxs"`
	CtrlSum  string    `xml:"CtrlSum"`
	InitgPty PartyName `xml:"InitgPty"`
}

type PartyName struct {
	Nm string `xml:"Nm"`
}

type PmtInf struct {
	PmtInfId    string        `xml:"PmtInfId"`
	PmtMtd      string        `xml:"PmtMtd"`
	NbOfTxs     string        `xml:"NbOfTxs"`
	CtrlSum     string        `xml:"CtrlSum"`
	ReqdExctnDt DateChoice    `xml:"ReqdExctnDt"`
	Dbtr        PartyName     `xml:"Dbtr"`
	DbtrAcct    CashAccount   `xml:"DbtrAcct"`
	DbtrAgt     Agent         `xml:"DbtrAgt"`
	ChrgBr      string        `xml:"ChrgBr"`
	CdtTrfTxInf []CdtTrfTxInf `xml:"CdtTrfTxInf"`
}

type DateChoice struct {
	Dt string `xml:"Dt"`
}

type CashAccount struct {
	Id AccountID `xml:"Id"`
}

type AccountID struct {
	IBAN string `xml:"IBAN"`
}

// Agent is a financial institution: by BIC, or NOTPROVIDED when none is known.
type Agent struct {
	FinInstnId FinInstnId `xml:"FinInstnId"`
}

type FinInstnId struct {
	BICFI string      `xml:"BICFI,omitempty"`
	Othr  *OtherAgent `xml:"Othr,omitempty"`
}

type OtherAgent struct {
	Id string `xml:"Id"`
}

type CdtTrfTxInf struct {
	PmtId    PmtId       `xml:"PmtId"`
	Amt      Amt         `xml:"Amt"`
	CdtrAgt  *Agent      `xml:"CdtrAgt,omitempty"`
	Cdtr     PartyName   `xml:"Cdtr"`
	CdtrAcct CashAccount `xml:"CdtrAcct"`
	RmtInf   RmtInf      `xml:"RmtInf"`
}

type PmtId struct {
	EndToEndId string `xml:"EndToEndId"`
}

type Amt struct {
	InstdAmt InstdAmt `xml:"InstdAmt"`
}

// InstdAmt is an amount as a decimal string with exactly the currency's
// decimals.
type InstdAmt struct {
	Ccy   string `xml:"Ccy,attr"`
	Value string `xml:",chardata"`
}

type RmtInf struct {
	Ustrd string `xml:"Ustrd"`
}

func agent(bic string) Agent {
	if bic == "" {
		return Agent{FinInstnId{Othr: &OtherAgent{Id: "NOTPROVIDED"}}}
	}
	return Agent{FinInstnId{BICFI: bic}}
}

// Remittance is the unstructured remittance text of an item: the
// statement it pays, by hash (at most 140 characters).
func Remittance(it Item) string {
	return fmt.Sprintf("tally statement %s %s %s", it.Period, it.Currency, it.Statement)
}

// ctrlSum formats a control sum: Σ amounts, with the largest exponent of
// the currencies involved (amounts of several currencies add as plain
// numbers, as ISO 20022 defines CtrlSum).
func (r *Run) ctrlSum(items []Item) string {
	exp := int32(0)
	for _, it := range items {
		if c, ok := money.Lookup(it.Currency); ok && int32(c.Exponent) > exp {
			exp = int32(c.Exponent)
		}
	}
	return (&Run{Items: items}).ControlSum().StringFixed(exp)
}

// Pain001 renders the run as a pain.001.001.09 document (with the XML
// header). It is derived from the record alone, so the same run always
// gives the same bytes.
func (r *Run) Pain001() ([]byte, error) {
	pi := PmtInf{
		PmtInfId: r.ID + "-1", PmtMtd: "TRF", NbOfTxs: fmt.Sprint(len(r.Items)), CtrlSum: r.ctrlSum(r.Items),
		ReqdExctnDt: DateChoice{Dt: r.Execution}, Dbtr: PartyName{r.Debtor.Name},
		DbtrAcct: CashAccount{AccountID{r.Debtor.IBAN}}, DbtrAgt: agent(r.Debtor.BIC), ChrgBr: "SLEV",
	}
	for _, it := range r.Items {
		tx := CdtTrfTxInf{
			PmtId: PmtId{it.EndToEndID}, Amt: Amt{InstdAmt{Ccy: it.Currency, Value: it.Amount}},
			Cdtr: PartyName{it.Creditor.Name}, CdtrAcct: CashAccount{AccountID{it.Creditor.IBAN}}, RmtInf: RmtInf{Remittance(it)},
		}
		if it.Creditor.BIC != "" {
			a := agent(it.Creditor.BIC)
			tx.CdtrAgt = &a
		}
		pi.CdtTrfTxInf = append(pi.CdtTrfTxInf, tx)
	}
	doc := Document{CstmrCdt: CstmrCdtTrfInitn{
		GrpHdr: GrpHdr{MsgId: r.ID, CreDtTm: r.CreatedAt.UTC().Format(time.RFC3339), NbOfTxs: fmt.Sprint(len(r.Items)), CtrlSum: r.ctrlSum(r.Items), InitgPty: PartyName{r.Debtor.Name}},
		PmtInf: []PmtInf{pi},
	}}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("pain.001: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// CSV renders the run's items as a table, one row per payment.
func (r *Run) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"run", "end_to_end_id", "party", "currency", "period", "statement", "due", "paid_before", "amount", "creditor_name", "iban", "bic", "execution_date", "created_by", "approved_by"})
	for _, it := range r.Items {
		_ = w.Write([]string{r.ID, it.EndToEndID, it.Party, it.Currency, it.Period, it.Statement, it.Due, it.PaidBefore, it.Amount, it.Creditor.Name, it.Creditor.IBAN, it.Creditor.BIC, r.Execution, r.CreatedBy, r.ApprovedBy})
	}
	w.Flush()
	return b.Bytes()
}
