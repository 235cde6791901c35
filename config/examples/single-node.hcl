# One machine, every role: an embedded NATS hub with JetStream, an ingest node
# and a settlement node in one process. Good for trying tally and for tests.
#   go run ./cmd/tally node --config config/examples/single-node.hcl
node_id   = "node-1"
data_dir  = "../../tally-data"          # relative paths resolve against this file
roles     = ["hub", "ingest", "settle"]
log_level = "info"
metrics_listen = "127.0.0.1:9464"  # /metrics, /healthz, /readyz (docs/metrics.md); "" = off

hub {
  listen        = "127.0.0.1:4222"
  sync_interval = "always"   # fsync every JetStream write: an acknowledged batch survives power loss
  max_store     = "10GiB"
}

streams {
  partitions       = 4       # fixed once the stream exists
  replicas         = 1       # the embedded hub is a single server
  duplicate_window = "2m"    # trims network duplicates only; exactly-once never depends on it
}

ingest {
  payload_bytes   = 16384
  batch_max       = 1000
  group_max       = 1000
  group_wait      = "2ms"
  budget_bytes    = "1GiB"   # answer buffer_full above this, well before the disk fills
  forward_batch   = 500      # records of one provider per JetStream message
  forward_window  = 64
  publish_timeout = "5s"
  dlq_max         = 10000    # rejected payloads kept: tally dlq list --data DIR
  http_listen     = "127.0.0.1:8080"   # POST /v1/providers/{provider}/transactions
  request_bytes   = "4MiB"   # largest request, NATS or HTTP; the hub's max_payload is this + 4KiB
  retention       = "24h"    # forwarded records kept for the replay service
}

# Each provider has its own NATS user (it may publish only on tally.in.<name>
# and read only _INBOX.<name>.>) and HTTP token; with any of these set the hub
# refuses anonymous clients. Replace the secrets.
provider "studio-1" {
  nats_password = "change-me-studio-1"
  http_token    = "change-me-studio-1-http-token"
}

settle {
  rules               = "rules.hcl"
  segment_max_entries = 2000
  segment_max_age     = "200ms"
  origin              = "tally.example/ledger"
  # audit_listen      = "127.0.0.1:7380"  # read-only audit API (docs/audit.md); off by default
  # console_listen    = "127.0.0.1:7390"  # console API and web UI (docs/console.md); off by default
}
