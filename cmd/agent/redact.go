package main

import (
	"net/url"
	"strings"
)

// redactURL returns raw fit for a log: the password of its userinfo and
// the values of query parameters whose names say they are secret
// (password, token, ...) replaced, or a placeholder when it does not
// parse (it may hold a secret anywhere).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			k, _, _ := strings.Cut(p, "=")
			if name, err := url.QueryUnescape(k); err != nil || secretParam(name) {
				parts[i] = k + "=xxxxx"
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.Redacted()
}

// secretParam reports whether a query parameter's name says it holds a
// secret.
func secretParam(name string) bool {
	name = strings.ToLower(name)
	for _, s := range []string{"pass", "secret", "token", "auth", "credential", "key", "sig"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}
