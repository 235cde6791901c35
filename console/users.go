package console

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/tally-mesh/tally/store"
)

// Roles. Operator roles are ordered: each can do what the ones before it can.
const (
	RoleViewer   = "viewer"   // reads everything
	RoleOperator = "operator" // runs settlement (works the exception queue)
	RoleApprover = "approver" // approves what an operator proposes
	RoleAdmin    = "admin"    // manages accounts
	RolePartner  = "partner"  // sees only its own parties
)

var roleRank = map[string]int{RoleViewer: 1, RoleOperator: 2, RoleApprover: 3, RoleAdmin: 4}

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { return r == RolePartner || roleRank[r] > 0 }

// User is one account in the users file. Password is an argon2id PHC
// string, never the password itself.
type User struct {
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Parties  []string `json:"parties,omitempty"` // partner accounts only
	Password string   `json:"password"`
}

// Token is a machine credential: only the SHA-256 of the secret is stored.
type Token struct {
	Name    string    `json:"name"`
	User    string    `json:"user"`
	Hash    string    `json:"sha256"`
	Created time.Time `json:"created"`
}

// usersFile is the users file's JSON.
type usersFile struct {
	Users  []User  `json:"users"`
	Tokens []Token `json:"tokens"`
}

// Identity is who a request acts as.
type Identity struct {
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	Parties []string `json:"parties,omitempty"`
	Via     string   `json:"via"` // "session" or "token"
}

// Partner reports whether the identity is a partner account.
func (id Identity) Partner() bool { return id.Role == RolePartner }

// AtLeast reports whether an operator identity has role r or a higher one.
func (id Identity) AtLeast(r string) bool { return !id.Partner() && roleRank[id.Role] >= roleRank[r] }

// Sees reports whether party is in the identity's scope.
func (id Identity) Sees(party string) bool {
	if !id.Partner() {
		return roleRank[id.Role] > 0
	}
	return slices.Contains(id.Parties, party)
}

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$`)

// argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns the argon2id PHC string of pw with a fresh salt.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	k := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(k)), nil
}

// CheckPassword reports whether pw matches the PHC string h.
func CheckPassword(h, pw string) bool {
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<20 || t == 0 || t > 16 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash makes a login for an unknown account cost what a real one does.
var dummyHash, _ = HashPassword("no such account")

// Users is the users file, re-read when it changes on disk (the `tally
// console users` commands write it while the node runs).
type Users struct {
	path string

	mu    sync.Mutex
	mod   time.Time
	size  int64
	f     usersFile
	byTok map[string]Token // sha256 hex → token
}

// OpenUsers reads path; a missing file is an empty users list.
func OpenUsers(path string) (*Users, error) {
	u := &Users{path: path}
	if err := u.reload(); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *Users) reload() error {
	st, err := os.Stat(u.path)
	if errors.Is(err, os.ErrNotExist) {
		u.f, u.byTok, u.mod, u.size = usersFile{}, map[string]Token{}, time.Time{}, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if st.ModTime().Equal(u.mod) && st.Size() == u.size && u.byTok != nil {
		return nil
	}
	f, err := readUsersFile(u.path)
	if err != nil {
		return err
	}
	u.f, u.mod, u.size = f, st.ModTime(), st.Size()
	u.byTok = map[string]Token{}
	for _, t := range f.Tokens {
		u.byTok[t.Hash] = t
	}
	return nil
}

func readUsersFile(path string) (usersFile, error) {
	var f usersFile
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("users file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("users file %s: %w", path, err)
	}
	seen := map[string]bool{}
	for _, x := range f.Users {
		if !namePattern.MatchString(x.Name) || !ValidRole(x.Role) || seen[x.Name] {
			return f, fmt.Errorf("users file %s: bad or repeated account %q (role %q)", path, x.Name, x.Role)
		}
		if (x.Role == RolePartner) != (len(x.Parties) > 0) {
			return f, fmt.Errorf("users file %s: account %q: a partner account names its parties, an operator account none", path, x.Name)
		}
		seen[x.Name] = true
	}
	for _, t := range f.Tokens {
		if !seen[t.User] {
			return f, fmt.Errorf("users file %s: token %q of unknown account %q", path, t.Name, t.User)
		}
	}
	return f, nil
}

func (u *Users) user(name string) (User, bool) {
	for _, x := range u.f.Users {
		if x.Name == name {
			return x, true
		}
	}
	return User{}, false
}

// Authenticate checks name and password; the time spent does not depend on
// whether the account exists.
func (u *Users) Authenticate(name, pw string) (Identity, bool) {
	u.mu.Lock()
	if err := u.reload(); err != nil {
		u.mu.Unlock()
		return Identity{}, false
	}
	x, ok := u.user(name)
	u.mu.Unlock()
	if !ok {
		CheckPassword(dummyHash, pw)
		return Identity{}, false
	}
	if !CheckPassword(x.Password, pw) {
		return Identity{}, false
	}
	return Identity{Name: x.Name, Role: x.Role, Parties: x.Parties}, true
}

// Identity returns the current identity of account name (its role and
// parties as the file says now).
func (u *Users) Identity(name string) (Identity, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reload(); err != nil {
		return Identity{}, false
	}
	x, ok := u.user(name)
	return Identity{Name: x.Name, Role: x.Role, Parties: x.Parties}, ok
}

// TokenIdentity resolves an API token secret.
func (u *Users) TokenIdentity(secret string) (Identity, bool) {
	sum := sha256.Sum256([]byte(secret))
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reload(); err != nil {
		return Identity{}, false
	}
	t, ok := u.byTok[hex.EncodeToString(sum[:])]
	if !ok {
		return Identity{}, false
	}
	x, ok := u.user(t.User)
	return Identity{Name: x.Name, Role: x.Role, Parties: x.Parties, Via: "token"}, ok
}

// List returns the accounts without their password hashes.
func (u *Users) List() []User {
	u.mu.Lock()
	defer u.mu.Unlock()
	_ = u.reload()
	out := make([]User, 0, len(u.f.Users))
	for _, x := range u.f.Users {
		x.Password = ""
		out = append(out, x)
	}
	return out
}

// AddUser adds or replaces account name in the users file at path.
func AddUser(path, name, role string, parties []string, password string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("account name %q: use letters, digits, '.', '_', '@', '-' (at most 64)", name)
	}
	if !ValidRole(role) {
		return fmt.Errorf("role %q: use viewer, operator, approver, admin or partner", role)
	}
	if (role == RolePartner) != (len(parties) > 0) {
		return errors.New("a partner account needs --parties; an operator account takes none")
	}
	if len(password) < 12 {
		return errors.New("a password has at least 12 characters")
	}
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	f, err := readUsersFile(path)
	if err != nil {
		return err
	}
	f.Users = slices.DeleteFunc(f.Users, func(x User) bool { return x.Name == name })
	f.Users = append(f.Users, User{Name: name, Role: role, Parties: parties, Password: h})
	return writeUsersFile(path, f)
}

// AddToken creates an API token for account user and returns its secret,
// which is shown once: the file keeps only its SHA-256.
func AddToken(path, name, user string) (string, error) {
	f, err := readUsersFile(path)
	if err != nil {
		return "", err
	}
	if !slices.ContainsFunc(f.Users, func(x User) bool { return x.Name == user }) {
		return "", fmt.Errorf("no account %q", user)
	}
	if !namePattern.MatchString(name) {
		return "", fmt.Errorf("token name %q: use letters, digits, '.', '_', '@', '-'", name)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	secret := "tally_" + base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	f.Tokens = slices.DeleteFunc(f.Tokens, func(t Token) bool { return t.Name == name })
	f.Tokens = append(f.Tokens, Token{Name: name, User: user, Hash: hex.EncodeToString(sum[:]), Created: time.Now().UTC().Truncate(time.Second)})
	return secret, writeUsersFile(path, f)
}

func writeUsersFile(path string, f usersFile) error {
	if f.Users == nil {
		f.Users = []User{}
	}
	if f.Tokens == nil {
		f.Tokens = []Token{}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := store.WriteFileAtomic(path, append(b, '\n')); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // hashes only, but nobody else needs to read them
}
