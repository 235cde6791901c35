package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Cookie names.
const (
	sessionCookie = "tally_session"
	loginCookie   = "tally_login_csrf" // double-submit token of the login form
	csrfHeader    = "X-CSRF-Token"
	csrfField     = "csrf"
)

// Limits on what the console keeps in memory.
const (
	sessionsMax  = 10000
	limitersMax  = 10000
	sessionTTL   = 12 * time.Hour
	sessionIdle  = 2 * time.Hour
	loginPerIP   = 10 // burst of attempts per client address, then one per 6 s
	loginPerUser = 5  // burst per account, then one per 30 s
)

type session struct {
	name    string
	csrf    string
	created time.Time
	seen    time.Time
}

// sessions holds browser sessions in memory: a restart logs everyone out.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("console: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(name string, now time.Time) (id string, sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= sessionsMax {
		s.expire(now)
		if len(s.m) >= sessionsMax { // drop the oldest
			var oldID string
			var old time.Time
			for k, v := range s.m {
				if oldID == "" || v.seen.Before(old) {
					oldID, old = k, v.seen
				}
			}
			delete(s.m, oldID)
		}
	}
	id = randomToken()
	sess = &session{name: name, csrf: randomToken(), created: now, seen: now}
	s.m[id] = sess
	return id, sess
}

func (s *sessions) expire(now time.Time) {
	for k, v := range s.m {
		if now.Sub(v.created) > sessionTTL || now.Sub(v.seen) > sessionIdle {
			delete(s.m, k)
		}
	}
}

func (s *sessions) get(id string, now time.Time) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return session{}, false
	}
	if now.Sub(v.created) > sessionTTL || now.Sub(v.seen) > sessionIdle {
		delete(s.m, id)
		return session{}, false
	}
	v.seen = now
	return *v, true
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// limiters rate-limits logins by key (client address or account name).
type limiters struct {
	mu    sync.Mutex
	m     map[string]*rate.Limiter
	every time.Duration
	burst int
}

func newLimiters(every time.Duration, burst int) *limiters {
	return &limiters{m: map[string]*rate.Limiter{}, every: every, burst: burst}
}

func (l *limiters) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) >= limitersMax {
			// Forget the limiters that are full again: they hold no debt.
			for k, v := range l.m {
				if v.Tokens() >= float64(l.burst) {
					delete(l.m, k)
				}
			}
			if len(l.m) >= limitersMax {
				return false // under a flood of new keys, refuse rather than grow
			}
		}
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.m[key] = lim
	}
	return lim.Allow()
}

// clientIP is the request's peer address (no proxy headers are trusted).
func clientIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

func setSessionCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionTTL / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// authenticate resolves the request's identity: an API token in
// Authorization: Bearer, or a session cookie. sid is the session id (for
// logout) and csrf the session's CSRF token.
func (c *Console) authenticate(r *http.Request) (id Identity, sid, csrf string, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		secret, found := strings.CutPrefix(h, "Bearer ")
		if !found {
			return Identity{}, "", "", false
		}
		id, ok = c.users.TokenIdentity(secret)
		return id, "", "", ok
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return Identity{}, "", "", false
	}
	s, ok := c.sessions.get(ck.Value, c.now())
	if !ok {
		return Identity{}, "", "", false
	}
	id, ok = c.users.Identity(s.name) // a removed account loses its sessions
	id.Via = "session"
	return id, ck.Value, s.csrf, ok
}

// safeMethod: requests that change nothing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrfOK checks a state-changing session request's CSRF token: the
// X-CSRF-Token header or the form field csrf equals the session's.
func csrfOK(r *http.Request, want string) bool {
	got := r.Header.Get(csrfHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue(csrfField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
