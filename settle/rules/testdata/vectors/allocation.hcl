# allocation.json (beside this file) expressed as tally rules. Each vector
# case is one rule, selected by the game of the test transaction.

ruleset "vectors" {
  effective  = "2026-01-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"

  party "A" {}
  party "B" {}
  party "C" {}

  rule "lr-80-8-12" {
    games = ["lr-80-8-12"]
    share "A" {
      party   = "A"
      percent = "80"
    }
    share "B" {
      party   = "B"
      percent = "8"
    }
    share "C" {
      party   = "C"
      percent = "12"
    }
  }

  rule "td-80-8-12" {
    games      = ["td-80-8-12"]
    allocation = "top_down"
    share "A" {
      party   = "A"
      percent = "80"
    }
    share "B" {
      party   = "B"
      percent = "8"
    }
    share "C" {
      party   = "C"
      percent = "12"
    }
  }

  rule "lr-50-30-20" {
    games = ["lr-50-30-20"]
    share "A" {
      party   = "A"
      percent = "50"
    }
    share "B" {
      party   = "B"
      percent = "30"
    }
    share "C" {
      party   = "C"
      percent = "20"
    }
  }

  rule "rt-50-30-20" {
    games      = ["rt-50-30-20"]
    allocation = "remainder_to"
    rounding   = "down"
    share "A" {
      party   = "A"
      percent = "50"
    }
    share "B" {
      party   = "B"
      percent = "30"
    }
    share "C" {
      party   = "C"
      percent = "20"
    }
    remainder = "C" # C gets 0.05 − A − B
  }

  rule "thirds" {
    games = ["thirds"]
    share "A" {
      party  = "A"
      weight = "1"
    }
    share "B" {
      party  = "B"
      weight = "1"
    }
    share "C" {
      party  = "C"
      weight = "1"
    }
  }
}
