# hierarchy.json (beside this file) as a tally partner tree: master agent M
# → sub-agent S → affiliate A. A is paid 30% of the NGR of the players
# attributed to it (transactions with affiliate = "A"), carrying a negative
# NGR into the next month; S is paid a 10% override of A's commission and M a
# 5% override of S's, both paid by the operator on top. EUR, half-up at every
# party's figure. hierarchy-deducted.hcl is the same tree with the
# overrides deducted from the partner below.

ruleset "hierarchy" {
  effective     = "2026-01-01T00:00:00Z"
  rounding      = "half_up"
  allocation    = "largest_remainder"
  partner_depth = "3"

  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }

  # Every party the ruleset names is declared: a party block, or a partner.
  party "operator" {}
  partner "M" {}
  partner "S" {
    parent = "M"
  }
  partner "A" {
    parent = "S"
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
      percent = "30"
    }
  }

  override "S-on-A" {
    party   = "S"
    of      = "A"
    percent = "10"
    paid_by = "operator"
  }
  override "M-on-S" {
    party   = "M"
    of      = "S"
    percent = "5"
    paid_by = "operator"
  }
}
