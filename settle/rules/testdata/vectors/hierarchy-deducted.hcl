# hierarchy.json, the case "overrides deducted from the party below": the
# tree of hierarchy-on-top.hcl (M → S → A, A 30% of its players' NGR, S 10%
# of A's commission, M 5% of S's) with each override paid by the partner
# below out of its own commission.

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
    paid_by = "below"
  }
  override "M-on-S" {
    party   = "M"
    of      = "S"
    percent = "5"
    paid_by = "below"
  }
}
