# waterfall-jpy.json (beside this file) expressed as a tally waterfall.

ruleset "waterfall" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder" # not used by steps: each step is rounded on its own

  party "tax" {} # "${provider}" and "${affiliate}" expand at run time: not declared
  party "bonus" {}
  party "operator" {}

  rule "jpy-waterfall" {
    currencies = ["JPY"] # the fixed bonus cost is in yen
    step "gaming tax" {
      party      = "tax"
      percent    = "12"
      percent_of = "amount"
    }
    step "provider fee" {
      party      = "${provider}"
      percent    = "9"
      percent_of = "amount"
    }
    step "bonus cost" {
      party = "bonus"
      fixed = "100000"
    }
    step "affiliate" {
      party      = "${affiliate}"
      percent    = "35"
      percent_of = "left" # of NGR: what tax, provider and bonus left
    }
    remainder = "operator"
  }
}
