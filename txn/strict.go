package txn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Strict JSON: every JSON payload, in every dialect, is read under I-JSON
// (RFC 7493) through jsontext before any field is looked at, so one payload
// has exactly one meaning whichever parser reads it:
//
//   - the bytes are UTF-8: anything else is invalid_utf8, never repaired to
//     U+FFFD (which would make distinct ids collapse into one);
//   - a \u escape is a Unicode character: a lone or reversed surrogate
//     (\ud800) is invalid_utf8 too, never replaced;
//   - no object, at any depth, names a member twice (after escapes are
//     decoded, so "a" and "\u0061" are the same name): duplicate_field;
//   - a UTF-8 byte-order mark before the value is byte_order_mark (RFC 8259
//     §8.1 forbids sending one; it is refused, not stripped);
//   - exactly one value, with only JSON whitespace around it.
//
// Strings are their decoded value: "a" and "\u0061" are the same id (the
// same canonical form, so a duplicate, not a conflict). Nothing is
// normalised (no Unicode normalisation, no trimming, no case folding):
// different decoded bytes are different ids.

// bom is the UTF-8 encoding of U+FEFF.
const bom = "\ufeff"

// Member is one member of a JSON object read by Object: its decoded name and
// its raw value (valid I-JSON).
type Member struct {
	Name  string
	Value jsontext.Value
}

// Object reads b as exactly one strict JSON object (see above) and returns
// its members in order. Any other input is a rejection: invalid_utf8,
// byte_order_mark, duplicate_field or malformed, with a reason that names
// the byte offset or the field (never a Go type).
func Object(b []byte) ([]Member, *Error) {
	v, e := value(b)
	if e != nil {
		return nil, e
	}
	if v.Kind() != '{' {
		return nil, reject(CodeMalformed, "payload is %s, not a JSON object", kindName(v.Kind()))
	}
	return members(v, "")
}

// value is the single strict JSON value b holds.
func value(b []byte) (jsontext.Value, *Error) {
	if e := checkUTF8(b); e != nil {
		return nil, e
	}
	if bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte(bom)) {
		return nil, reject(CodeBOM, "payload starts with a UTF-8 byte-order mark (EF BB BF): send JSON without one")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(b))
	v, err := dec.ReadValue()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, reject(CodeMalformed, "empty payload: expected a JSON object")
		}
		return nil, syntaxError(err)
	}
	v = v.Clone() // v is valid only until the next read
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, reject(CodeMalformed, "trailing data after the JSON object")
	}
	return v, nil
}

// members splits an object value (already validated) into its members.
func members(v jsontext.Value, path string) ([]Member, *Error) {
	dec := jsontext.NewDecoder(bytes.NewReader(v))
	if _, err := dec.ReadToken(); err != nil { // '{'
		return nil, syntaxError(err)
	}
	var out []Member
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, syntaxError(err)
		}
		name := tok.String() // before the next read voids tok
		val, err := dec.ReadValue()
		if err != nil {
			return nil, syntaxError(err)
		}
		out = append(out, Member{Name: name, Value: val.Clone()})
	}
	return out, nil
}

// ObjectMembers reads a member's value that must be an object (meta, and
// the dialects' equivalents); name is the member's dotted path for reasons.
func ObjectMembers(name string, v jsontext.Value) ([]Member, *Error) {
	if v.Kind() != '{' {
		return nil, reject(CodeInvalidField, "%s must be a JSON object, not %s", name, kindName(v.Kind()))
	}
	return members(v, name)
}

// String decodes a member's value that must be a JSON string; name is the
// member's dotted path for reasons. A JSON null is absent (ok false).
func String(name string, v jsontext.Value) (s string, ok bool, e *Error) {
	switch v.Kind() {
	case 'n':
		return "", false, nil
	case '"':
	default:
		return "", false, reject(CodeInvalidField, "%s must be a JSON string, not %s", name, kindName(v.Kind()))
	}
	if inner := v[1 : len(v)-1]; simpleASCII(inner) {
		return string(inner), true, nil // no escapes: the literal is its content
	}
	u, err := jsontext.AppendUnquote(nil, v)
	if err != nil { // v was validated: cannot happen
		return "", false, reject(CodeMalformed, "%s is not a valid JSON string", name)
	}
	return string(u), true, nil
}

// checkUTF8 rejects b unless it is entirely valid UTF-8, naming the offset
// of the first bad byte.
func checkUTF8(b []byte) *Error {
	if utf8.Valid(b) {
		return nil
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return reject(CodeInvalidUTF8, "payload is not valid UTF-8: byte 0x%02x at offset %d", b[i], i)
		}
		i += n
	}
	return reject(CodeInvalidUTF8, "payload is not valid UTF-8")
}

// CheckUTF8 is checkUTF8 for the dialects that are not JSON (CSV).
func CheckUTF8(b []byte) *Error { return checkUTF8(b) }

// syntaxError maps a jsontext error to a rejection with tally's own words.
func syntaxError(err error) *Error {
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return reject(CodeMalformed, "not valid JSON: the payload ends early")
		}
		return reject(CodeMalformed, "not valid JSON")
	}
	path := dotted(se.JSONPointer)
	msg := se.Err.Error()
	switch {
	case se.Err == jsontext.ErrDuplicateName:
		return reject(CodeDuplicateField, "field %s appears more than once: each field may be given once", clip(path))
	case strings.Contains(msg, "surrogate"):
		return reject(CodeInvalidUTF8, "%s holds an escape for a lone surrogate (\\ud800-\\udfff): not a Unicode character (offset %d)", where(path), se.ByteOffset)
	case strings.Contains(msg, "invalid UTF-8"):
		return reject(CodeInvalidUTF8, "payload is not valid UTF-8 (offset %d)", se.ByteOffset)
	case errors.Is(se.Err, io.ErrUnexpectedEOF):
		return reject(CodeMalformed, "not valid JSON: the payload ends early (offset %d)", se.ByteOffset)
	}
	return reject(CodeMalformed, "not valid JSON at offset %d%s: %s", se.ByteOffset, inPath(path), clip(msg))
}

// dotted renders a JSON pointer as a dotted field path ("meta.k").
func dotted(p jsontext.Pointer) string {
	var parts []string
	for tok := range p.Tokens() {
		parts = append(parts, tok)
	}
	return strings.Join(parts, ".")
}

func where(path string) string {
	if path == "" {
		return "a string"
	}
	return "field " + clip(path)
}

func inPath(path string) string {
	if path == "" {
		return ""
	}
	return fmt.Sprintf(" (in %s)", clip(path))
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a JSON boolean"
	case '"':
		return "a JSON string"
	case '0':
		return "a JSON number"
	case '{':
		return "a JSON object"
	case '[':
		return "a JSON array"
	}
	return "not JSON"
}

// PeekString returns the top-level string member name of b when b is a JSON
// object that names it exactly once with a string of valid UTF-8 (escapes
// included), even when b is rejected for another reason (a duplicate of
// another field, invalid UTF-8 elsewhere). Rejections use it to echo the id.
func PeekString(b []byte, name string) (string, bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return "", false
	}
	var got string
	n := 0
	for i := 0; i < 1024 && dec.PeekKind() != '}'; i++ {
		k, err := dec.ReadToken()
		if err != nil || k.Kind() != '"' {
			return "", false
		}
		isName := k.String() == name
		v, err := dec.ReadValue()
		if err != nil {
			return "", false
		}
		if !isName {
			continue
		}
		n++
		if v.Kind() != '"' || !utf8.Valid(v) {
			return "", false
		}
		u, err := jsontext.AppendUnquote(nil, v) // strict: refuses a lone surrogate
		if err != nil {
			return "", false
		}
		got = string(u)
	}
	return got, n == 1
}

// WithID sets e.ID to id when id is a valid id under lim (so rejections echo
// the id whenever it parsed) and returns e.
func (e *Error) WithID(id string, lim Limits) *Error {
	if e != nil && e.ID == "" && checkID("id", id, lim.withDefaults().IDLen) == nil {
		e.ID = id
	}
	return e
}
