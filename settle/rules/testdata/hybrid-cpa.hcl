# A hybrid affiliate deal and a deposit fee: affiliate A is paid 50.00 EUR
# per player whose first deposit is at least 20.00 and made within 30 days
# of the player's first transaction (CPA), plus 25% of its players' NGR
# (revenue share); the payment provider "psp" is paid 1.5% of all EUR
# deposits. docs/fees.md "Deposits, CPA and hybrid deals" walks through it;
# settle/statement/cpa_test.go asserts every figure.

ruleset "hybrid" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"

  party "operator" {}
  party "A" {}
  party "psp" {}

  rule "deposits" {
    types = ["deposit"]
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }
  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }

  fee "A-cpa" {
    party          = "A"
    basis          = "cpa"
    affiliates     = ["A"]
    period         = "month"
    currency       = "EUR"
    minimum        = "0"
    carry_negative = false
    cpa {
      amount      = "50.00"
      min_deposit = "20.00"
      within_days = "30"
    }
  }

  fee "A-revshare" {
    party          = "A"
    basis          = "ngr"
    affiliates     = ["A"]
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = true
    tier {
      percent = "25"
    }
  }

  fee "psp-deposits" {
    party          = "psp"
    basis          = "deposits"
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = false
    tier {
      percent = "1.5"
    }
  }
}
