// Package alerts turns what a node observes into alert states and delivers
// them.
//
// An alert is a state, not an event: each (kind, labels) pair is either
// firing or resolved. A firing state has a since time; its resolution
// carries the same since and an until. The Manager evaluates conditions
// every Interval from the node's own snapshot (Evaluator), takes one-shot
// events (a gap opened, a partition fenced, an anomaly) as states that
// resolve when their clear condition holds or after a quiet period, and
// publishes every transition as JSON on <prefix>.alert.<kind>, into the
// durable stream TALLY_ALERTS, with the header Tally-Alert-State.
//
// Invariants:
//   - A transition is published at least once (the outbox keeps it until
//     JetStream acknowledged it, bounded by OutboxMax, oldest dropped and
//     counted) and stored once (Nats-Msg-Id derived from node, kind,
//     labels, state and since).
//   - Nothing here blocks the node's work: the manager runs on its own
//     goroutine, webhooks on theirs, each with a bounded queue.
//   - Label values are bounded (partitions, providers, series names), never
//     ids: they become Prometheus labels and Alertmanager labels.
//
// The outbox is in memory: transitions raised while the hub is away are
// published when it returns, but not if the process stops before that.
package alerts
