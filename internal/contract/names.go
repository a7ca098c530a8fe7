package contract

import "unicode/utf8"

// NamePattern is what a breaker or rate-limit name must match: a letter or
// digit, then up to 127 letters, digits, '.', '_' or '-'. Names are safe in
// URL paths and in store keys as they are.
const NamePattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`

// MaxNameLen is the longest name, in bytes.
const MaxNameLen = 128

// ValidName reports whether name can name a breaker or a rate limit: it
// matches NamePattern. Every decision checks its name, so this is a loop
// over the bytes rather than the regular expression
// (TestValidNameIsNamePattern holds the two equal).
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidateName returns a *FieldError naming field when name cannot name a
// breaker or a rate limit. Field is "name" for a path's name, or the query
// parameter or body field that carries it.
func ValidateName(field, name string) error {
	if !ValidName(name) {
		return &FieldError{Field: field, Reason: "must match " + NamePattern}
	}
	return nil
}

// ClientIDPattern is what the Breakwater-Client header must match to be
// counted: one SDK client (one process) taking from rate limits.
const ClientIDPattern = `^[A-Za-z0-9_-]{1,64}$`

// ValidClientID reports whether id can name a client in ClientHeader: it
// matches ClientIDPattern (TestValidClientIDIsPattern holds the two equal).
func ValidClientID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidateKey returns a *FieldError naming "key" when key cannot pick a
// rate-limit bucket: any valid UTF-8 of up to MaxKeyBytes bytes; the empty
// key is the default bucket.
func ValidateKey(key string) error {
	if len(key) > MaxKeyBytes {
		return &FieldError{Field: "key", Reason: "must be at most " + itoa(MaxKeyBytes) + " bytes, got " + itoa(len(key))}
	}
	if !utf8.ValidString(key) {
		return &FieldError{Field: "key", Reason: "must be valid UTF-8"}
	}
	return nil
}

// ValidateIdempotencyKey returns a *FieldError naming IdempotencyKeyHeader
// when key cannot name a logical request: 1 to MaxIdempotencyKeyLen
// printable ASCII characters.
func ValidateIdempotencyKey(key string) error {
	if len(key) < 1 || len(key) > MaxIdempotencyKeyLen {
		return &FieldError{Field: IdempotencyKeyHeader, Reason: "must be 1 to " + itoa(MaxIdempotencyKeyLen) + " characters"}
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return &FieldError{Field: IdempotencyKeyHeader, Reason: "must be printable ASCII"}
		}
	}
	return nil
}
