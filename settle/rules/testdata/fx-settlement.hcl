# A studio settled in another currency: studio-b earns 30% of every bet,
# whatever its currency, and is settled and paid in USD at ECB rates
# (fx_rate ledger entries of source "ecb"), each conversion rounded half to
# even. docs/rules.md "Settlement currency and FX" walks through it;
# settle/statement/fx_test.go asserts every figure.

ruleset "fx-settlement" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "down"
  allocation = "largest_remainder"

  party "operator" {}
  party "studio-b" {}

  rule "bets" {
    types = ["bet"]
    share "studio" {
      party   = "studio-b"
      percent = "30"
    }
    remainder = "operator"
  }

  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }

  settlement "studio-b" {
    currency = "USD"
    rounding = "half_even"
    source   = "ecb"
  }
}
