# A settlement node on the hub cluster: consumes TALLY_TX, appends signed
# ledger segments to TALLY_LEDGER (docs/deploy.md). It lists every hub, so
# its client reconnects to whichever is up. With settle-1.hcl it shares the
# partitions by lease (settle.leases): either takes the other's over.
#   tally node --config config/examples/cluster/settle-2.hcl
node_id   = "settle-2"
data_dir  = "../../../tally-data/settle-2"
roles     = ["settle"]
log_level = "info"

nats {
  url      = "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"
  user     = "settle-2"   # a node_user on the hubs
  password = "change-me-settle-2"
}

streams {
  create     = true   # create TALLY_TX / TALLY_LEDGER if missing: needed on stock nats-server hubs
  partitions = 4      # as on the hubs
  replicas   = 3
}

settle {
  rules       = "../rules.hcl"
  origin      = "settle.example.com/ledger/eu-1"
  leases      = true                                 # partitions by lease in TALLY_OWNERS
  lease_ttl   = "6s"                                 # the default
  signing_key = "../../../tally-data/ledger.key"     # one log key shared by the region's settle nodes
}
