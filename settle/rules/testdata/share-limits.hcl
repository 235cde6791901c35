# Caps and floors on shares, and a condition on a player attribute: bets
# made with bonus funds (meta funds = "bonus") pay no revenue share; on cash
# bets the affiliate gets 30% capped at 50.00 per transaction and the studio
# 10% with a floor of 1.00, the operator taking or giving the difference.
# docs/rules.md "Caps and floors on shares" walks through it;
# settle/rules/share_limits_test.go asserts every figure.

ruleset "share-limits" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"

  party "operator" {}
  party "aff" {}
  party "studio" {}

  rule "bonus funds" {
    meta = { funds = ["bonus"] }
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }

  rule "cash" {
    share "aff" {
      party   = "aff"
      percent = "30"
      cap     = "50.00"
    }
    share "studio" {
      party   = "studio"
      percent = "10"
      floor   = "1.00"
    }
    remainder = "operator"
  }
}
