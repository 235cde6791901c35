// Package metrics serves a node's Prometheus metrics, /healthz and /readyz on
// metrics_listen (docs/metrics.md).
//
// Most families are read at scrape time from the roles' live snapshots
// (ingest.Node.Stats, settle.Node.Partitions) by a custom collector, so the
// hot paths carry no instrumentation for them. Only what a snapshot cannot
// give is observed where it happens, through nil-safe hooks: per-provider
// answers and ack latency (ingest.Config.Observer) and durable-write
// latencies (ingest.Observer.WALSynced, settle.Config.ObserveSync).
package metrics
