# dirty-stream.json (beside this file): provider P's day of traffic, EUR.
# The contract itself is simple (the vector is about dedup, conflicts and
# rollbacks, not about the split): P takes 10% of every bet and bears 10% of
# every win, the operator the rest. Every amount of the stream is a multiple
# of 0.10, so every share is exact.

ruleset "dirty-stream" {
  effective  = "2026-11-01T00:00:00Z"
  rounding   = "half_up"
  allocation = "largest_remainder"

  party "P" {} # what "${provider}" can be in rule "P casino" (providers = ["P"])
  party "operator" {}

  rule "P casino" {
    providers = ["P"]
    types     = ["bet", "win"]
    share "studio" {
      party   = "${provider}"
      percent = "10"
    }
    remainder = "operator"
  }
}
