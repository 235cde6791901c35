# Demo rule book: a casino split with two versions.
# Amounts arrive in EUR, USD, JPY and KWD; every share is rounded to the
# currency's own minor unit (JPY 0, EUR/USD 2, KWD 3 decimals).

ruleset "2026-11" {
  effective  = "2026-11-01T00:00:00Z" # in force for transactions that occurred from this instant
  rounding   = "half_up"
  allocation = "largest_remainder"

  party "operator" {} # "${provider}" and "${affiliate}" expand at run time: not declared

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
}

ruleset "2026-12" {
  effective  = "2026-12-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"

  party "operator" {} # "${provider}" and "${affiliate}" expand at run time: not declared

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
}
