# Period fees of a party settled in another currency: affiliate aff-u is
# settled in USD at ECB rates (half to even) and paid, in USD, 25% of its
# players' GGR and 40.00 per player whose first deposit is worth at least
# 25.00 USD. Its players play in EUR and USD: each EUR entry of a fee's
# basis counts at the rate in force at its event. docs/fees.md "Fees of a
# party settled in another currency" walks through it;
# settle/statement/fx_test.go (TestFXFeeBasis) asserts every figure.

ruleset "fx-fees" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"

  party "operator" {}
  party "aff-u" {}

  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }

  fee "aff-u-revshare" {
    party          = "aff-u"
    basis          = "ggr"
    affiliates     = ["aff-u"]
    period         = "month"
    currency       = "USD"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = false
    tier {
      percent = "25"
    }
  }

  fee "aff-u-cpa" {
    party          = "aff-u"
    basis          = "cpa"
    affiliates     = ["aff-u"]
    period         = "month"
    currency       = "USD"
    minimum        = "0"
    carry_negative = false
    cpa {
      amount      = "40.00"
      min_deposit = "25.00"
    }
  }

  settlement "aff-u" {
    currency = "USD"
    rounding = "half_even"
    source   = "ecb"
  }
}
