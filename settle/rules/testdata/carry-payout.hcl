# Negative carry-over with a quarterly reset and a minimum payout: affiliate
# A is paid 25% of its players' NGR each month; a negative NGR is carried
# into the next month, but dropped at the first month of a new calendar
# quarter; A is paid only once its balance reaches 100.00, below that the
# balance is withheld and carried. docs/fees.md "Carry-over resets and
# minimum payouts" walks through it; settle/statement/carry_test.go asserts
# every figure.

ruleset "carry-payout" {
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

  fee "A-revshare" {
    party          = "A"
    basis          = "ngr"
    affiliates     = ["A"]
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = true
    carry_reset    = "quarter"
    tier {
      percent = "25"
    }
  }

  payout "A" {
    currency = "EUR"
    minimum  = "100.00"
  }
}
