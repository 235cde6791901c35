// Package ingest owns the edge of tally: the provider endpoints (NATS
// request/reply on <prefix>.in.<provider>, HTTP POST
// /v1/providers/{provider}/transactions with a bearer token per provider),
// the provider's dialect (ingest/adapter) and validation at the door, the
// Badger write-ahead log with group commit, the dead-letter store, the
// forwarder that pushes committed records to the JetStream stream TALLY_TX,
// retention of forwarded records and the replay service
// <prefix>.edge.<node>.replay (DESIGN.md §4, docs/ingest.md).
//
// Write path:
//
//	request ──▶ handle / serveTransactions: provider from the subject token or
//	            the HTTP token; the provider's adapter Splits and Decodes
//	        ──▶ committer (one goroutine): up to GroupMax records or GroupWait
//	        ──▶ ONE Badger txn: q/<p>/<seq>, d/<p>/<id>, s/<p>, m/bytes, x/<n>
//	        ──▶ Commit (SyncWrites: fsync) ──▶ answers
//	forwarder (per provider): Seek(q/<p>/<cursor+1>) ──▶ wire.AppendBatch
//	        ──▶ PublishMsgAsync (bounded window, timeout) ──▶ contiguous PubAcks
//	        ──▶ c/<p> = cursor
//	retention (retention.go): records ≤ the persisted cursor and older than
//	        Retention ──▶ deleted with their dedup keys, r/<p> floor, m/freed
//	replay (replay.go): WAL records From..To ──▶ published again, fresh ids
//
// Invariants:
//   - accepted is answered only after the Badger commit holding the record,
//     its dedup key and its provider's counter returned nil (fsynced);
//   - edge sequences are gapless per provider from 1 and never re-numbered,
//     across restarts (own counters in s/<p>, never Badger's GetSequence);
//   - the cursor c/<p> only moves across contiguous PubAcks, so every record
//     above it is still to be (re)sent and every record at or below it is in
//     TALLY_TX;
//   - the same (provider, id) with the same canonical payload is a duplicate
//     answered with the original edge_seq; with another payload a conflict
//     (within the retention time, after which the dedup key is deleted with
//     its record and settlement's permanent index decides);
//   - retention deletes only records at or below the persisted cursor, so
//     nothing unforwarded is ever deleted.
//
// It must never: take the provider from the payload or from anything but
// the subject or the HTTP token; answer accepted before
// the commit; skip a record when forwarding; Rewind a record iterator (Seek
// from the cursor; tombstones make Rewind linear); publish data with core NATS
// (over a leaf without interest it is dropped silently); grow past the byte
// budget (Badger crashes on a full disk); forward a rejected payload.
package ingest
