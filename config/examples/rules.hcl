# Example rule book: a casino revenue split with two versions. The version in
# force at a transaction's occurred_at applies, so late transactions settle
# under the terms of their time. See docs/rules.md.
# Amounts arrive in EUR, USD, JPY and KWD; every share is rounded to the
# currency's own minor unit (JPY 0, EUR/USD 2, KWD 3 decimals).

ruleset "2026-launch" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"

  # The parties this version names, declared so that a misspelt one fails to
  # load. "${provider}" (any provider with credentials) and "${affiliate}"
  # (the transaction's attribution) expand at run time and are not declared.
  party "operator" {}
  party "studio-1" {}

  rule "casino" {
    share "studio" {
      party   = "${provider}" # the provider the transaction came from
      percent = "12"
    }
    share "affiliate" {
      party   = "${affiliate}" # tx.affiliate; with none, this 5% goes to the remainder party
      percent = "5"
    }
    remainder = "operator" # the other 83%
  }

  # studio-1's monthly revenue share on the GGR of its EUR traffic, on top
  # of its per-transaction share (tally statements prints the tiers applied).
  fee "studio-1 monthly" {
    party          = "studio-1"
    providers      = ["studio-1"]
    basis          = "ggr"
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = true
    tier {
      up_to   = "10000.00"
      percent = "2"
    }
    tier {
      percent = "1"
    }
  }
}

ruleset "2027-renegotiated" {
  effective  = "2027-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"

  # The parties this version names, declared so that a misspelt one fails to
  # load. "${provider}" (any provider with credentials) and "${affiliate}"
  # (the transaction's attribution) expand at run time and are not declared.
  party "operator" {}
  party "studio-1" {}

  rule "casino" {
    share "studio" {
      party   = "${provider}"
      percent = "15" # renegotiated from 12%
    }
    share "affiliate" {
      party   = "${affiliate}"
      percent = "5"
    }
    remainder = "operator"
  }

  # studio-1's monthly revenue share on the GGR of its EUR traffic, on top
  # of its per-transaction share (tally statements prints the tiers applied).
  fee "studio-1 monthly" {
    party          = "studio-1"
    providers      = ["studio-1"]
    basis          = "ggr"
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "0"
    carry_negative = true
    tier {
      up_to   = "10000.00"
      percent = "2.5"
    }
    tier {
      percent = "1.5"
    }
  }
}
