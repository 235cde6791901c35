// Package wire holds every name that crosses a process boundary — NATS
// subjects, stream names, headers, reply shapes — and the byte layout of the
// batches the ingest forwarder publishes to JetStream. grep this package to see
// the whole message flow (docs/design.md §3).
package wire
