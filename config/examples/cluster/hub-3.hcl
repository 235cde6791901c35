# Hub 3 of 3: an embedded nats-server with JetStream, one of a three-server
# NATS cluster holding TALLY_TX and TALLY_LEDGER at R3 (docs/deploy.md).
# The three hubs differ only in node_id, data_dir and their ports; on real
# hosts use the same ports everywhere and put each hub's host name in routes.
#   tally node --config config/examples/cluster/hub-3.hcl
node_id   = "hub-3"                       # also the NATS server name: unique per hub
data_dir  = "../../../tally-data/hub-3"   # relative paths resolve against this file
roles     = ["hub"]
log_level = "info"

hub {
  listen        = "127.0.0.1:4224"   # clients: settle nodes (and providers, if a hub also ingests)
  sync_interval = "always"           # fsync every JetStream write before the PubAck
  max_store     = "10GiB"

  node_user "settle-1" { password = "change-me-settle-1" }
  node_user "settle-2" { password = "change-me-settle-2" }

  cluster {
    name     = "tally"                 # the same on every hub
    listen   = "127.0.0.1:6224"         # routes from the other hubs
    routes   = ["nats-route://127.0.0.1:6222", "nats-route://127.0.0.1:6223", "nats-route://127.0.0.1:6224"]
    user     = "route"                 # route credentials, the same on every hub
    password = "change-me-route-password"
    # tls { cert_file = "hub-3.pem"  key_file = "hub-3-key.pem"  ca_file = "ca.pem" }
  }

  leafnodes {
    listen = "127.0.0.1:7424"           # edges connect here as leaf nodes
    user "edge-eu" { password = "change-me-edge-eu-leaf" }
    user "edge-us" { password = "change-me-edge-us-leaf" }
    # tls { cert_file = "hub-3.pem"  key_file = "hub-3-key.pem"  ca_file = "ca.pem" }
  }
}

streams {
  partitions = 4   # fixed once the stream exists; the same on every node
  replicas   = 3   # the default with a cluster block
}
