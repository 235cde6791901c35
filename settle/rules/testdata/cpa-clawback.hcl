# CPA with clawback: affiliate A is paid 50.00 EUR per player whose first
# deposit is at least 20.00; when that deposit is refunded or rolled back
# within 30 days of it, so far that it no longer reaches 20.00, a CPA
# already paid is clawed back as its own line on the next statement.
# docs/fees.md "CPA clawback" walks through it; settle/statement's
# TestCPAClawbackWorkedExample asserts every figure.

ruleset "cpa-clawback" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"

  party "operator" {}
  party "A" {}

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
      amount        = "50.00"
      min_deposit   = "20.00"
      clawback_days = "30" # a reversal up to 30 × 24 h after the deposit claws back
    }
  }
}
