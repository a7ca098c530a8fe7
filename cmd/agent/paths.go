package main

import (
	"errors"
	"net/url"
	"strings"
)

// errDotSegment is the answer to a path that holds a "." or ".." segment in
// any encoding: forwarded, it could reach the upstream outside the route's
// base path once anything on the way normalizes it.
var errDotSegment = errors.New(`the path holds a "." or ".." segment (in some encoding); the agent forwards no such path`)

// upstreamPath maps the path of a request to route name (in, as the
// request's URL holds it) to the path the upstream gets under base: the
// rest of the path after "/name", exactly as the caller escaped it, joined
// to base's own escaped path. It returns the decoded path and the escaped
// one, ready for url.URL's Path and RawPath.
//
// Nothing the caller escaped is decoded on the way: "/name/a%2Fb" reaches
// the upstream as "base/a%2Fb", one segment. Bytes that a URL may not hold
// unescaped are escaped, so that the two forms always agree. A path with a
// dot-segment ("." or "..", however it is spelt: "%2e%2E", ".%2E", with
// escaped slashes or backslashes around it, escaped twice, or with a
// ";parameter") is refused
// with errDotSegment. See docs/agent.md.
func upstreamPath(name string, base, in *url.URL) (path, rawPath string, err error) {
	raw := in.RawPath
	if raw == "" || !sameDecoded(raw, in.Path) {
		raw = in.EscapedPath()
	}
	rest, ok := strings.CutPrefix(raw, "/"+name)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", "", errors.New("the path is not under the route")
	}
	if hasDotSegment(rest) {
		return "", "", errDotSegment
	}
	joined := joinEscaped(base.EscapedPath(), canonicalEscape(rest))
	decoded, err := url.PathUnescape(joined)
	if err != nil {
		return "", "", err
	}
	return decoded, joined, nil
}

// sameDecoded reports whether raw is a valid escaping of path.
func sameDecoded(raw, path string) bool {
	p, err := url.PathUnescape(raw)
	return err == nil && p == path
}

// joinEscaped joins two escaped paths with exactly one slash between them.
func joinEscaped(a, b string) string {
	switch {
	case b == "":
		if a == "" {
			return "/"
		}
		return a
	case a == "":
		return b
	case strings.HasSuffix(a, "/") && strings.HasPrefix(b, "/"):
		return a + b[1:]
	case !strings.HasSuffix(a, "/") && !strings.HasPrefix(b, "/"):
		return a + "/" + b
	}
	return a + b
}

// canonicalEscape returns the escaped path p with every byte that a path
// may not hold unescaped escaped, and every escape kept as it is: it
// decodes to what p decodes to, and url.URL sends it unchanged.
func canonicalEscape(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			b.WriteString(p[i : i+3])
			i += 2
			continue
		}
		if pathByte(c) {
			b.WriteByte(c)
			continue
		}
		const hex = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// pathByte reports whether c may stand unescaped in a URL's path, as
// url.URL.EscapedPath accepts it.
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@[]/", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// maxUnescapes is how many layers of escaping hasDotSegment looks through.
const maxUnescapes = 3

// hasDotSegment reports whether the escaped path p has a segment that is
// "." or "..", splitting at slashes and backslashes whether escaped or
// not, and decoding each segment up to maxUnescapes times.
func hasDotSegment(p string) bool {
	s := p
	for range maxUnescapes + 1 {
		for seg := range strings.FieldsFuncSeq(s, isSlash) {
			seg, _, _ = strings.Cut(seg, ";") // "..;" is ".." to some servers
			if seg == "." || seg == ".." {
				return true
			}
		}
		// Also the segments of the next layer: split before decoding the
		// rest, so that an escaped slash splits too.
		d, err := url.PathUnescape(s)
		if err != nil {
			d = lenientUnescape(s)
		}
		if d == s {
			return false
		}
		s = d
	}
	// Escaped more times than anyone decodes: refuse only dot-segments.
	return false
}

// isSlash reports whether r separates segments to some server: a slash
// or a backslash.
func isSlash(r rune) bool { return r == '/' || r == '\\' }

// lenientUnescape decodes every valid %XX escape of s and keeps the rest.
func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
