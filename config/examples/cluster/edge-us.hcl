# The us edge: an ingest node with its own Badger WAL and its own small NATS
# server (leaf block). Providers of the region connect to its port with their
# own users; the server is a leaf node of the hub cluster and forwards to
# TALLY_TX over the leaf link, reconnecting to any hub (docs/deploy.md).
#   tally node --config config/examples/cluster/edge-us.hcl
node_id   = "edge-us"
data_dir  = "../../../tally-data/edge-us"
roles     = ["ingest"]
log_level = "info"

leaf {
  listen   = "127.0.0.1:4231"   # the region's providers: tally send --nats nats://127.0.0.1:4231
  hubs     = ["nats-leaf://127.0.0.1:7422", "nats-leaf://127.0.0.1:7423", "nats-leaf://127.0.0.1:7424"]
  user     = "edge-us"         # a leafnodes user on the hubs
  password = "change-me-edge-us-leaf"
  # tls { ca_file = "ca.pem" }  # verify the hubs; add cert_file/key_file for mutual TLS
}

ingest {
  budget_bytes = "1GiB"                # answer buffer_full above this while the link is down
  http_listen  = "127.0.0.1:8082"       # POST /v1/providers/{provider}/transactions
  retention    = "24h"
}

# The region's providers: each may publish only on tally.in.<name> and read
# only _INBOX.<name>.> on this edge's port.
provider "studio-us" {
  nats_password = "change-me-studio-us"
  http_token    = "change-me-studio-us-http-token"
}
