package httpapi

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
)

// Role is what a token may do. Each role may do all that the ones below it may.
type Role int

// Roles, weakest first.
const (
	RoleReader   Role = iota + 1 // GET endpoints
	RoleAgent                    // reader + acquire, outcomes, take, events
	RoleOperator                 // everything
)

func (r Role) String() string {
	switch r {
	case RoleReader:
		return "reader"
	case RoleAgent:
		return "agent"
	case RoleOperator:
		return "operator"
	}
	return "none"
}

// ParseRole reads a role's name.
func ParseRole(s string) (Role, bool) { return parseRole(s) }

func parseRole(s string) (Role, bool) {
	for _, r := range []Role{RoleReader, RoleAgent, RoleOperator} {
		if r.String() == s {
			return r, true
		}
	}
	return 0, false
}

// Token is one line of the tokens file.
type Token struct {
	Name string
	Role Role
	hash [32]byte // sha256 of the secret; the secret itself is not kept
}

// Tokens is a set of bearer tokens. A nil *Tokens means no auth: every
// request acts as an anonymous operator.
type Tokens struct {
	list []Token
}

// MinSecretLen is the shortest secret accepted in a tokens file.
const MinSecretLen = 16

// ParseTokens reads a tokens file: one token a line, "name role secret",
// with "#" starting a comment at the start of a line or after whitespace
// (so a secret may hold "#"). Errors name the line, never the secret.
func ParseTokens(r io.Reader) (*Tokens, error) {
	t := &Tokens{}
	names := map[string]bool{}
	secrets := map[[32]byte]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := stripComment(sc.Text())
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("tokens line %d: want \"name role secret\", got %d fields", n, len(f))
		}
		role, ok := parseRole(f[1])
		if !ok {
			return nil, fmt.Errorf("tokens line %d: role %q: want reader, agent or operator", n, f[1])
		}
		if len(f[2]) < MinSecretLen {
			return nil, fmt.Errorf("tokens line %d: secret of %q is shorter than %d characters", n, f[0], MinSecretLen)
		}
		if names[f[0]] {
			return nil, fmt.Errorf("tokens line %d: name %q appears twice", n, f[0])
		}
		h := sha256.Sum256([]byte(f[2]))
		if secrets[h] {
			return nil, fmt.Errorf("tokens line %d: secret of %q is used by another token", n, f[0])
		}
		names[f[0]], secrets[h] = true, true
		t.list = append(t.list, Token{Name: f[0], Role: role, hash: h})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	if len(t.list) == 0 {
		return nil, fmt.Errorf("tokens file holds no token")
	}
	return t, nil
}

// stripComment cuts line at the first "#" that starts it or follows
// whitespace.
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

// LoadTokens reads the tokens file at path (see ParseTokens). A file that
// its group or others may read or write is accepted with a warning on
// log, since anyone who can read it holds every role and anyone who can
// write it can grant one.
func LoadTokens(path string, log *slog.Logger) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o066 != 0 {
		log.Warn(fmt.Sprintf("tokens file %s has mode %v: group or others may read or write it; chmod 600 it", path, fi.Mode().Perm()),
			"tokens_file", path, "mode", fi.Mode().Perm().String())
	}
	return ParseTokens(f)
}

// bearerSecret returns the credentials of an Authorization header of the
// Bearer scheme, whose name is matched in any case (RFC 9110, 11.1).
func bearerSecret(h string) (string, bool) {
	scheme, secret, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	secret = strings.TrimSpace(secret)
	return secret, secret != ""
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.list) }

// lookup finds the token with this secret. It compares every token's hash
// in constant time, so timing tells nothing of which or how much matched.
func (t *Tokens) lookup(secret string) (Token, bool) {
	h := sha256.Sum256([]byte(secret))
	var found Token
	ok := 0
	for _, tok := range t.list {
		if subtle.ConstantTimeCompare(h[:], tok.hash[:]) == 1 {
			found, ok = tok, 1
		}
	}
	return found, ok == 1
}

type identityKey struct{}

// Identity is who made a request.
type Identity struct {
	Name string
	Role Role
}

// anonymous is the identity of every request when no tokens are configured.
var anonymous = Identity{Name: "anonymous", Role: RoleOperator}

// IdentityFrom returns the identity the auth middleware attached.
func IdentityFrom(ctx context.Context) Identity {
	if id, ok := ctx.Value(identityKey{}).(Identity); ok {
		return id
	}
	return anonymous
}

// require answers 401 or 403 unless the request's token has at least role.
func (a *API) require(role Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if a.tokens == nil {
				// Open: one identity for everyone, so no per-token cap;
				// IdentityFrom answers anonymous without a copy of r.
				next.ServeHTTP(w, r)
				return
			}
			secret, ok := bearerSecret(r.Header.Get("Authorization"))
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="breakwater"`)
				a.writeError(w, r, &requestError{Status: http.StatusUnauthorized, Detail: "missing bearer token"})
				return
			}
			tok, ok := a.tokens.lookup(secret)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="breakwater", error="invalid_token"`)
				a.writeError(w, r, &requestError{Status: http.StatusUnauthorized, Detail: "unknown bearer token"})
				return
			}
			if tok.Role < role {
				a.writeError(w, r, &requestError{Status: http.StatusForbidden,
					Detail: fmt.Sprintf("token %q has role %s; this needs %s", tok.Name, tok.Role, role)})
				return
			}
			id := Identity{Name: tok.Name, Role: tok.Role}
			if rc, ok := r.Context().(*requestContext); ok && !rc.hasID {
				rc.id, rc.hasID = id, true // the request's own context: no copy of r
			} else {
				r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
			}
			if a.limitAPI(w, r) {
				next.ServeHTTP(w, r)
			}
		})
	}
}
