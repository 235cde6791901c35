# An ingest (edge) node near a provider. It keeps its own Badger WAL and
# forwards to a stock NATS cluster that already has the TALLY_TX stream.
#   go run ./cmd/tally node --config config/examples/edge.hcl
node_id  = "edge-eu-1"
data_dir = "/var/lib/tally"
roles    = ["ingest"]

nats {
  url   = "nats://hub-1.example:4222,nats://hub-2.example:4222,nats://hub-3.example:4222"
  creds = "/etc/tally/edge-eu-1.creds"
}

streams {
  create     = false   # the settlement side (or an operator) creates the streams
  partitions = 16
  replicas   = 3
}

ingest {
  budget_bytes = "20GiB"
  group_wait   = "2ms"
}
