package txn

import "fmt"

// Code is a stable rejection code. Codes are part of the provider-facing API:
// never rename one; add new ones instead. docs/ingest-errors.md lists them all.
type Code string

const (
	CodeMalformed       Code = "malformed"         // not a single JSON object
	CodeInvalidUTF8     Code = "invalid_utf8"      // bytes that are not UTF-8, or a lone surrogate escape
	CodeBOM             Code = "byte_order_mark"   // a UTF-8 byte-order mark before the JSON value
	CodeDuplicateField  Code = "duplicate_field"   // a field (or meta key, or CSV column) given twice
	CodePayloadTooLarge Code = "payload_too_large" // payload exceeds limits.payload_bytes
	CodeUnknownField    Code = "unknown_field"     // a field the canonical form does not define
	CodeMissingField    Code = "missing_field"     // id, type, amount, currency or occurred_at absent
	CodeInvalidID       Code = "invalid_id"        // empty, too long or non-printable id
	CodeInvalidType     Code = "invalid_type"      // type not in the catalog
	CodeAmountNotString Code = "amount_not_string" // amount given as a JSON number (floats are refused)
	CodeInvalidAmount   Code = "invalid_amount"    // not a plain decimal string
	CodeNegativeAmount  Code = "negative_amount"   // amount < 0: the sign comes from the type
	CodeAmountRange     Code = "amount_out_of_range"
	CodeTooManyDecimals Code = "too_many_decimals" // more decimals than the currency's exponent
	CodeUnknownCurrency Code = "unknown_currency"  // not in the ISO 4217 registry
	CodeInvalidTime     Code = "invalid_time"      // occurred_at not RFC 3339 with offset
	CodeMissingParent   Code = "missing_parent"    // rollback or refund without parent
	CodeInvalidField    Code = "invalid_field"     // an optional field too long or malformed
	CodeMetaTooLarge    Code = "meta_too_large"    // meta has too many keys or bytes
	CodeBatchTooLarge   Code = "batch_too_large"   // more transactions in one request than limits.batch_max
	CodeConflict        Code = "conflict"          // same (provider, id) seen before with a different payload
	CodeBufferFull      Code = "buffer_full"       // ingest node at its disk budget: retry later
	CodeUnavailable     Code = "unavailable"       // node shutting down or storage error: retry later
	CodeReservedType    Code = "reserved_type"     // correction, fx_rate or payout_run: types only the system posts (operator log)

	// Codes of the request as a whole (HTTP endpoint and dialects).
	CodeUnsupportedMedia Code = "unsupported_media_type" // a content type the provider's dialect does not read
	CodeUnauthorized     Code = "unauthorized"           // HTTP: no bearer token, or one no provider holds
	CodeForbidden        Code = "forbidden"              // HTTP: a valid token of another provider
	CodeUnknownProvider  Code = "unknown_provider"       // a provider not configured on this node
	CodeTooLarge         Code = "request_too_large"      // HTTP body above ingest.http_body_bytes
)

// Codes lists every code, in the order docs/ingest-errors.md documents them.
// A test checks that the list, the constants above and the page agree.
var Codes = []Code{
	CodeMalformed, CodeInvalidUTF8, CodeBOM, CodeDuplicateField, CodePayloadTooLarge, CodeUnknownField, CodeMissingField, CodeInvalidID, CodeInvalidType,
	CodeAmountNotString, CodeInvalidAmount, CodeNegativeAmount, CodeAmountRange, CodeTooManyDecimals,
	CodeUnknownCurrency, CodeInvalidTime, CodeMissingParent, CodeInvalidField, CodeMetaTooLarge,
	CodeBatchTooLarge, CodeConflict, CodeBufferFull, CodeUnavailable, CodeReservedType,
	CodeUnsupportedMedia, CodeUnauthorized, CodeForbidden, CodeUnknownProvider, CodeTooLarge,
}

// Retryable reports whether a rejection with code c may succeed when sent
// again unchanged (with the same id) later.
func (c Code) Retryable() bool { return c == CodeBufferFull || c == CodeUnavailable }

// Error is a definite rejection: a stable code and a human reason. ID is the
// transaction's id when it parsed as a valid id ("" otherwise), echoed in
// the answer so a batch's answers can be matched by id.
type Error struct {
	Code   Code
	Reason string
	ID     string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Reason) }

func reject(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, args...)}
}
