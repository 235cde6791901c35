// Package nodes assembles and runs a tally node from a validated config: the
// embedded hub (nats-server with JetStream), the ingest role and the settle
// role, in that start order, and stops them in reverse: stop accepting, flush
// and forward, commit and ack, close stores, stop the hub.
//
// It owns lifecycles only; no business logic lives here.
package nodes
