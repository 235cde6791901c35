// Package sla measures each partner's service level in fixed windows and
// reports a period's figures against its targets.
//
// An ingest node's Recorder sees every answered request (it is an
// ingest.Observer, fanned out next to the metrics hook). At the end of each
// window it closes one Window per configured partner — traffic or not —
// holding the request and transaction counts, a histogram of ack latency,
// whether the endpoint was up, and the targets in force. Windows are
// published to the stream TALLY_SLA (subject <prefix>.sla.<party>, one
// message per party per window, Nats-Msg-Id <node>.<party>.<start>) so a
// report can be recomputed from them at any time (Aggregate, `tally sla`).
//
// Figures:
//   - ack p99: the 99th percentile of request answer latency, read from
//     the merged histogram as the upper bound of the bucket holding it
//     (never optimistic by more than one bucket: buckets double).
//   - reject rate: rejected transactions / answered transactions.
//   - availability: the share of the measured time for which windows
//     exist and say the endpoint was up (the node running, its WAL open
//     and below its budget, so requests were being accepted). A window
//     missing because the node was down counts as down. The measured time
//     starts at the party's first window in the period.
//   - publish→ledger p99 is not measured per partner yet: settle does not
//     observe per-provider commit latency against the provider's publish
//     time. It is left out rather than approximated.
package sla
