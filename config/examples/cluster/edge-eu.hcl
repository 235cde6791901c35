# The eu edge: an ingest node with its own Badger WAL and its own small NATS
# server (leaf block). Providers of the region connect to its port with their
# own users; the server is a leaf node of the hub cluster and forwards to
# TALLY_TX over the leaf link, reconnecting to any hub (docs/deploy.md).
#   tally node --config config/examples/cluster/edge-eu.hcl
node_id   = "edge-eu"
data_dir  = "../../../tally-data/edge-eu"
roles     = ["ingest"]
log_level = "info"

leaf {
  listen   = "127.0.0.1:4230"   # the region's providers: tally send --nats nats://127.0.0.1:4230
  hubs     = ["nats-leaf://127.0.0.1:7422", "nats-leaf://127.0.0.1:7423", "nats-leaf://127.0.0.1:7424"]
  user     = "edge-eu"         # a leafnodes user on the hubs
  password = "change-me-edge-eu-leaf"
  # tls { ca_file = "ca.pem" }  # verify the hubs; add cert_file/key_file for mutual TLS
}

ingest {
  budget_bytes = "1GiB"                # answer buffer_full above this while the link is down
  http_listen  = "127.0.0.1:8081"       # POST /v1/providers/{provider}/transactions
  retention    = "24h"
}

# The region's providers: each may publish only on tally.in.<name> and read
# only _INBOX.<name>.> on this edge's port.
provider "studio-eu" {
  nats_password = "change-me-studio-eu"
  http_token    = "change-me-studio-eu-http-token"
}
