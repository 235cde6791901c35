package txn

import (
	"crypto/sha256"
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
)

// Type is a transaction type. The sign of its effect on GGR comes from the type;
// amounts are never negative.
type Type string

const (
	Bet                 Type = "bet"
	Win                 Type = "win"
	Rollback            Type = "rollback"
	Refund              Type = "refund"
	Purchase            Type = "purchase"
	Adjustment          Type = "adjustment"
	Fee                 Type = "fee"
	BonusCost           Type = "bonus_cost"
	JackpotContribution Type = "jackpot_contribution"
	JackpotWin          Type = "jackpot_win"
	// Tax is a gaming or platform tax the operator pays on the activity
	// (money out): one of the deductions from GGR to NGR.
	Tax Type = "tax"
	// Deposit is a player's deposit (money in from the player). It is no
	// part of GGR or NGR: it is the basis of deposit fees and of CPA deals
	// (a flat amount per qualifying first deposit, docs/fees.md).
	Deposit Type = "deposit"

	// Correction is an approved adjustment (maker-checker), posted by the
	// system through the operator log (settle/oplog): operator-only.
	Correction Type = "correction"
	// FXRate is an exchange rate entered into the ledger through the
	// operator log: operator-only, moves no money.
	FXRate Type = "fx_rate"
	// PayoutRun records a payout run (settle/payout) in the ledger: the
	// statements it pays, so an auditor sees from the ledger alone that no
	// statement is paid twice. Operator-only, moves no money.
	PayoutRun Type = "payout_run"
)

// types maps each type to the sign of its effect on the operator's revenue:
// money in (+1) or money out (-1). Reversals (0) take the opposite sign of
// their parent.
var types = map[Type]int{
	Bet: +1, Purchase: +1, JackpotContribution: +1, Adjustment: +1, Deposit: +1,
	Win: -1, Fee: -1, BonusCost: -1, JackpotWin: -1, Tax: -1,
	Rollback: 0, Refund: 0,
	Correction: 0, FXRate: 0, PayoutRun: 0, // operator types: a correction's net has any sign, an fx_rate and a payout_run none
}

// Valid reports whether t is in the catalog.
func (t Type) Valid() bool { _, ok := types[t]; return ok }

// Sign is +1 for money in, -1 for money out, 0 for reversals (sign of the
// parent, negated) and for the operator types (a correction's net is the sum
// of its lines, an fx_rate's zero).
func (t Type) Sign() int { return types[t] }

// Operator reports whether t is one of the system's own types (correction,
// fx_rate, payout_run): txn.Decode refuses them (reserved_type) unless
// Limits.Operator.
func (t Type) Operator() bool { return t == Correction || t == FXRate || t == PayoutRun }

// Reversal reports whether t reverses a parent transaction.
func (t Type) Reversal() bool { return t == Rollback || t == Refund }

// Tx is a validated canonical transaction. The provider is not part of it: it
// comes from the credentials the transaction arrived with.
type Tx struct {
	ID           string
	Type         Type
	Amount       decimal.Decimal
	Currency     money.Currency
	OccurredAt   time.Time // UTC
	Round        string
	Parent       string
	Seq          uint64
	Game         string
	Category     string
	Jurisdiction string
	Brand        string
	Affiliate    string
	Player       string
	Meta         map[string]string
}

// wireTx is the canonical JSON shape. Field order here is the canonical key order.
type wireTx struct {
	ID           string            `json:"id"`
	Type         string            `json:"type"`
	Amount       string            `json:"amount"`
	Currency     string            `json:"currency"`
	OccurredAt   string            `json:"occurred_at"`
	Round        string            `json:"round,omitempty"`
	Parent       string            `json:"parent,omitempty"`
	Seq          uint64            `json:"seq,omitempty"`
	Game         string            `json:"game,omitempty"`
	Category     string            `json:"category,omitempty"`
	Jurisdiction string            `json:"jurisdiction,omitempty"`
	Brand        string            `json:"brand,omitempty"`
	Affiliate    string            `json:"affiliate,omitempty"`
	Player       string            `json:"player,omitempty"`
	Meta         map[string]string `json:"meta,omitempty"`
}

// Canonical renders t as deterministic JSON: fixed key order, the amount with
// exactly the currency's decimals, occurred_at in UTC, empty optionals omitted,
// meta keys sorted. Two payloads that mean the same transaction render the same.
func (t Tx) Canonical() []byte {
	return t.appendCanonical(make([]byte, 0, 320))
}

// canonicalReflect is Canonical through encoding/json and wireTx: the
// definition appendCanonical must match byte for byte (see the tests).
func (t Tx) canonicalReflect() []byte {
	w := wireTx{
		ID: t.ID, Type: string(t.Type), Amount: t.Currency.Format(t.Amount), Currency: t.Currency.Code,
		OccurredAt: t.OccurredAt.UTC().Format(time.RFC3339Nano),
		Round:      t.Round, Parent: t.Parent, Seq: t.Seq, Game: t.Game, Category: t.Category,
		Jurisdiction: t.Jurisdiction, Brand: t.Brand, Affiliate: t.Affiliate, Player: t.Player,
	}
	if len(t.Meta) > 0 {
		w.Meta = t.Meta
	}
	b, err := json.Marshal(w)
	if err != nil {
		panic("txn: canonical encoding failed: " + err.Error()) // only strings and ints: cannot fail
	}
	return b
}

// Hash is the SHA-256 of the canonical form: equal hashes mean the same payload.
func (t Tx) Hash() [32]byte {
	var buf [384]byte
	return sha256.Sum256(t.appendCanonical(buf[:0]))
}

// Signed is the amount with the sign of its type (reversals are returned positive;
// their sign comes from the parent).
func (t Tx) Signed() decimal.Decimal {
	if t.Type.Sign() < 0 {
		return t.Amount.Neg()
	}
	return t.Amount
}
