# A settlement node: consumes TALLY_TX partitions from a NATS cluster, appends
# signed ledger segments, keeps balances.
#   go run ./cmd/tally node --config config/examples/settle.hcl
node_id  = "settle-1"
data_dir = "/var/lib/tally"
roles    = ["settle"]

nats {
  url   = "nats://hub-1.example:4222,nats://hub-2.example:4222,nats://hub-3.example:4222"
  creds = "/etc/tally/settle-1.creds"
}

streams {
  create     = true    # create TALLY_TX / TALLY_LEDGER if missing (R3 on the cluster)
  partitions = 16
  replicas   = 3
}

settle {
  rules               = "/etc/tally/rules.hcl"
  signing_key         = "/etc/tally/ledger.key"
  origin              = "settle.example.com/ledger/eu-1"
  segment_max_entries = 2000
  segment_max_age     = "200ms"
}
