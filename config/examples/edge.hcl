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
  budget_bytes         = "20GiB"
  group_wait           = "2ms"
  http_listen          = "0.0.0.0:8080"   # POST /v1/providers/{provider}/transactions (put TLS in front)
  request_bytes        = "4MiB"           # largest request, NATS or HTTP; the cluster's max_payload must be ≥ this + 4KiB
  retention            = "72h"            # forwarded records kept for replay when settlement finds a gap
  retention_high_water = "10GiB"          # above this, forwarded records go early: the disk first
}

# The providers this edge takes: dialect and HTTP token. Each provider is
# served by one edge per hub: this edge claims them in the TALLY_PROVIDERS
# key-value bucket at start and refuses to start if another edge holds one
# (docs/ingest.md, "Topologies"). Their NATS users and
# permissions live on the cluster (docs/ingest.md, "Provider identity").
provider "studio-eu" {
  http_token = "replace-with-a-long-random-token-1"
}

provider "aggregator-x" {
  dialect    = "minor_units"   # integer minor units, epoch-ms times (docs/adapters.md)
  http_token = "replace-with-a-long-random-token-2"
}

provider "backoffice-uploads" {
  dialect    = "csv"           # CSV files over HTTP
  http_token = "replace-with-a-long-random-token-3"
}
