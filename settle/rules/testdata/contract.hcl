# A provider contract with a tiered monthly fee and an affiliate share: the
# worked example of docs/rules.md ("Writing a provider contract"). Tested by
# cmd/tally's TestRulesEvalContract, which checks the figures the page quotes.

ruleset "2026-11 studio-a" {
  effective  = "2026-11-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"

  # Declared parties: a misspelt party name fails to load. "${affiliate}" is
  # the transaction's attribution and is not declared.
  party "operator" {}
  party "studio-a" {}

  # Per transaction: the affiliate who brought the player earns 25% of what
  # the operator wins on studio-a's slots and bears 25% of what it pays out.
  rule "studio-a slots" {
    providers  = ["studio-a"]
    types      = ["bet", "win"]
    categories = ["slot"]
    share "affiliate" {
      party   = "${affiliate}"
      percent = "25"
    }
    remainder = "operator" # 75%, and 100% of a transaction without affiliate
  }

  # Everything else stays with the operator.
  rule "default" {
    share "operator" {
      party   = "operator"
      percent = "100"
    }
  }

  # Per month: studio-a is paid a tiered share of the GGR of its games.
  fee "studio-a revenue share" {
    party          = "studio-a"
    providers      = ["studio-a"]
    basis          = "ggr"
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "500.00"
    carry_negative = true
    tier {
      up_to   = "10000.00"
      percent = "12"
    }
    tier {
      up_to   = "50000.00"
      percent = "10"
    }
    tier {
      percent = "8"
    }
  }
}
