// Package console is the settlement node's console: a JSON API under /v1
// (described by openapi.yaml, checked against the routes by a test), a
// Server-Sent Events live feed, and a server-rendered web UI from embedded
// assets (assets/). It reads the running node's state — the settle index
// through read transactions, the ledger through its own snapshot reads, the
// statements directory that `tally statements` writes — and never writes any
// of them. The one thing it writes is the workflow's state (cases.go,
// statements_review.go): exception cases and statement reviews in the
// JetStream KV bucket <PREFIX>_CASES, by compare-and-set; an approved
// adjustment reaches the ledger only through its Poster.
//
// Identities: operator accounts (roles viewer, operator, approver, admin) see
// every party; partner accounts see only their own parties, in every route.
// Passwords are stored only as argon2id hashes, API tokens only as SHA-256
// hashes (users.go). Browser sessions are random ids in Secure, HttpOnly,
// SameSite=Strict cookies; every state-changing request made with a session
// carries the session's CSRF token (auth.go). Logins are rate limited per
// client address and per account; every request is written to the access
// log.
//
// The console must never answer a partner with anything of another partner:
// a party, transaction or statement outside the caller's scope is answered
// exactly as one that does not exist (404 not_found).
package console
