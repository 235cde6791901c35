package audit

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// Error codes of the audit API's authentication.
const (
	CodeUnauthorized = "unauthorized" // 401: no bearer token, or not a known one
	CodeForbidden    = "forbidden"    // 403: a known token without the scope the API needs
)

// Token is one bearer token the audit API accepts, with its scopes.
type Token struct {
	Name   string // who holds it (logged; never the token)
	Secret string
	Scopes []string
}

// RequireToken wraps h so that every request must carry
// "Authorization: Bearer <token>" for a token holding scope: no or an
// unknown token answers 401 unauthorized (with WWW-Authenticate), a known
// token without the scope 403 forbidden. Tokens are compared by their
// SHA-256 in constant time, every configured token each time, so neither
// the comparison nor the loop leaks how much of a token matched or which
// token it was.
func RequireToken(h http.Handler, tokens []Token, scope string) http.Handler {
	type entry struct {
		sum    [32]byte
		name   string
		scoped bool
	}
	es := make([]entry, len(tokens))
	for i, t := range tokens {
		es[i] = entry{sha256.Sum256([]byte(t.Secret)), t.Name, slices.Contains(t.Scopes, scope)}
	}
	deny := func(w http.ResponseWriter, status int, code, reason string) {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tally audit", scope="`+scope+`"`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(apiError{Code: code, Reason: reason})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || tok == "" {
			deny(w, http.StatusUnauthorized, CodeUnauthorized, "send Authorization: Bearer <token>")
			return
		}
		sum := sha256.Sum256([]byte(tok))
		match := -1
		for i := range es {
			if subtle.ConstantTimeCompare(sum[:], es[i].sum[:]) == 1 {
				match = i
			}
		}
		switch {
		case match < 0:
			deny(w, http.StatusUnauthorized, CodeUnauthorized, "unknown bearer token")
		case !es[match].scoped:
			deny(w, http.StatusForbidden, CodeForbidden, "token "+es[match].name+" lacks scope "+scope)
		default:
			h.ServeHTTP(w, r)
		}
	})
}
