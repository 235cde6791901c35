# tiers.json (beside this file) expressed as tally fee contracts: the
# provider's monthly fee on GGR, EUR, half-up to the cent, tiers 12% up to
# 100,000.00, 10% up to 250,000.00, 8% above, upper bounds inclusive, minimum
# monthly fee 2,500.00. One fee per mode × negative-GGR treatment.

ruleset "tiers" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up" # the fees inherit it
  allocation = "largest_remainder"

  party "operator" {}
  party "provider" {}

  rule "default" {
    share "op" {
      party   = "operator"
      percent = "100"
    }
  }

  fee "marginal-carry" {
    party          = "provider"
    basis          = "ggr"
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "2500.00"
    carry_negative = true
    tier {
      up_to   = "100000.00"
      percent = "12"
    }
    tier {
      up_to   = "250000.00" # inclusive: 250,000.00 is in the 10% tier
      percent = "10"
    }
    tier {
      percent = "8"
    }
  }

  fee "marginal-no-carry" {
    party          = "provider"
    basis          = "ggr"
    period         = "month"
    currency       = "EUR"
    mode           = "marginal"
    minimum        = "2500.00"
    carry_negative = false
    tier {
      up_to   = "100000.00"
      percent = "12"
    }
    tier {
      up_to   = "250000.00"
      percent = "10"
    }
    tier {
      percent = "8"
    }
  }

  fee "retroactive-carry" {
    party          = "provider"
    basis          = "ggr"
    period         = "month"
    currency       = "EUR"
    rounding       = "half_up" # may also be named on the fee
    mode           = "retroactive"
    minimum        = "2500.00"
    carry_negative = true
    tier {
      up_to   = "100000.00"
      percent = "12"
    }
    tier {
      up_to   = "250000.00"
      percent = "10"
    }
    tier {
      percent = "8"
    }
  }

  fee "retroactive-no-carry" {
    party          = "provider"
    basis          = "ggr"
    period         = "month"
    currency       = "EUR"
    mode           = "retroactive"
    minimum        = "2500.00"
    carry_negative = false
    tier {
      up_to   = "100000.00"
      percent = "12"
    }
    tier {
      up_to   = "250000.00"
      percent = "10"
    }
    tier {
      percent = "8"
    }
  }
}
