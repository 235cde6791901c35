package payout

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Account is a bank account to pay from (the debtor) or to (a party).
type Account struct {
	Name string `json:"name" hcl:"name"`
	IBAN string `json:"iban" hcl:"iban"`
	BIC  string `json:"bic,omitempty" hcl:"bic,optional"`
}

// Banks is the bank details of a payout run: the operator's account paid
// from and each party's account paid to.
type Banks struct {
	Debtor  Account
	Parties map[string]Account
}

// ErrBankDetails means bank details are missing or invalid: an IBAN whose
// checksum fails, a malformed BIC, an empty name.
var ErrBankDetails = errors.New("invalid bank details")

var (
	ibanRE = regexp.MustCompile(`^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$`)
	bicRE  = regexp.MustCompile(`^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$`)
)

// ValidIBAN checks an IBAN in electronic form (no spaces, upper case):
// two letters, two check digits, 11 to 30 alphanumerics, and the ISO 7064
// mod 97-10 checksum of ISO 13616 (the first four characters moved to the
// end, letters as 10–35: the number mod 97 is 1).
func ValidIBAN(iban string) error {
	if !ibanRE.MatchString(iban) {
		return fmt.Errorf("IBAN %q is not 2 letters, 2 check digits and 11 to 30 letters or digits (electronic form: no spaces, upper case): %w", iban, ErrBankDetails)
	}
	var sb strings.Builder
	for _, r := range iban[4:] + iban[:4] {
		if r >= 'A' && r <= 'Z' {
			fmt.Fprintf(&sb, "%d", r-'A'+10)
		} else {
			sb.WriteRune(r)
		}
	}
	n, _ := new(big.Int).SetString(sb.String(), 10) // only digits: cannot fail
	if n.Mod(n, big.NewInt(97)).Int64() != 1 {
		return fmt.Errorf("IBAN %q fails its mod-97 checksum (a mistyped digit?): %w", iban, ErrBankDetails)
	}
	return nil
}

// Validate checks an account: a name of 1 to 140 characters (pain.001's
// limit), a valid IBAN and, when given, a BIC of 8 or 11 characters.
func (a Account) Validate() error {
	switch {
	case strings.TrimSpace(a.Name) == "" || len(a.Name) > 140:
		return fmt.Errorf("account name %q: 1 to 140 characters: %w", a.Name, ErrBankDetails)
	case a.BIC != "" && !bicRE.MatchString(a.BIC):
		return fmt.Errorf("BIC %q is not 8 or 11 upper-case letters and digits: %w", a.BIC, ErrBankDetails)
	}
	return ValidIBAN(a.IBAN)
}

type banksSrc struct {
	Debtor  *Account   `hcl:"debtor,block"`
	Parties []partySrc `hcl:"party,block"`
}

type partySrc struct {
	Party string    `hcl:"party,label"`
	Name  string    `hcl:"name"`
	IBAN  string    `hcl:"iban"`
	BIC   string    `hcl:"bic,optional"`
	Def   hcl.Range `hcl:",def_range"`
}

// ParseBanks reads a bank details file:
//
//	debtor { name = "Operator Ltd"  iban = "DE89370400440532013000"  bic = "COBADEFFXXX" }
//	party "A" { name = "Affiliate A BV"  iban = "NL91ABNA0417164300"  bic = "ABNANL2A" }
//
// Every problem is reported at once; an invalid IBAN or BIC, a party named
// twice or a missing debtor is an error wrapping ErrBankDetails.
func ParseBanks(src []byte, filename string) (*Banks, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, fmt.Errorf("bank details: %s: %w", diags.Error(), ErrBankDetails)
	}
	var bs banksSrc
	if diags := gohcl.DecodeBody(f.Body, nil, &bs); diags.HasErrors() {
		return nil, fmt.Errorf("bank details: %s: %w", diags.Error(), ErrBankDetails)
	}
	var problems []string
	out := &Banks{Parties: map[string]Account{}}
	if bs.Debtor == nil {
		problems = append(problems, fmt.Sprintf("%s: no debtor block (the account payouts are paid from)", filename))
	} else if err := bs.Debtor.Validate(); err != nil {
		problems = append(problems, fmt.Sprintf("%s: debtor: %v", filename, err))
	} else {
		out.Debtor = *bs.Debtor
	}
	for _, p := range bs.Parties {
		a := Account{Name: p.Name, IBAN: p.IBAN, BIC: p.BIC}
		if _, dup := out.Parties[p.Party]; dup {
			problems = append(problems, fmt.Sprintf("%s: party %q named twice", p.Def, p.Party))
			continue
		}
		if err := a.Validate(); err != nil {
			problems = append(problems, fmt.Sprintf("%s: party %q: %v", p.Def, p.Party, err))
			continue
		}
		out.Parties[p.Party] = a
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("bank details: %d problems:\n\t%s: %w", len(problems), strings.Join(problems, "\n\t"), ErrBankDetails)
	}
	return out, nil
}
