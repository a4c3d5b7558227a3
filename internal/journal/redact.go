package journal

import (
	"regexp"
	"strings"

	"github.com/kiln-images/kiln/internal/redact"
)

// redacted replaces a secret in text that Redact returns.
const redacted = redact.Mask

var (
	// keyValue matches a value given after a key whose name says it is
	// secret: password=..., aws_secret_access_key = ..., "SessionToken": "...",
	// X-Amz-Security-Token=..., Signature=... Plain "token" is not among the
	// keys: client tokens are idempotency keys that kiln derives from asset
	// ids, and are worth keeping in an error.
	keyValue = regexp.MustCompile(`(?i)([a-z0-9_.-]*(?:passw(?:or)?d|passphrase|secret|(?:session|security|auth|access|refresh|bearer|id)[_-]?token|signature|api[_-]?key|private[_-]?key)[a-z0-9_.-]*["']?\s*[:=]\s*["']?)[^\s"'&,;)}\]]+`)

	// bearer matches an HTTP bearer credential.
	bearer = regexp.MustCompile(`(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+`)

	// userinfo matches the password in scheme://user:password@host.
	userinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)[^\s/@]+@`)

	// base64Run matches runs of base64 characters (padding only at the end),
	// which looksSecret then judges.
	base64Run = regexp.MustCompile(`[A-Za-z0-9/+]{40,}=*`)
)

// Redact returns s with things that look like secrets replaced by
// "[REDACTED]": values of password-, secret- and token-like keys, bearer
// credentials, passwords in URLs, strings shaped like AWS secret access keys
// (40 base64 characters) and long base64 strings such as AWS session tokens.
// It errs on the side of hiding: a harmless string of those shapes is hidden
// too. AWS access key ids (AKIA..., ASIA...) are not secret and are kept, as
// they say which credentials were used.
func Redact(s string) string {
	s = keyValue.ReplaceAllString(s, "${1}"+redacted)
	s = bearer.ReplaceAllString(s, "${1}"+redacted)
	s = userinfo.ReplaceAllString(s, "${1}"+redacted+"@")
	return base64Run.ReplaceAllStringFunc(s, func(m string) string {
		if looksSecret(strings.TrimRight(m, "=")) {
			return redacted
		}
		return m
	})
}

// looksSecret reports whether a run of base64 characters is an AWS secret
// access key (exactly 40) or a session token (hundreds). It asks for upper
// and lower case letters and a digit, which random keys have and hex digests
// (git commits, sha1) and most paths do not.
func looksSecret(m string) bool {
	if len(m) != 40 && len(m) < 100 {
		return false
	}
	var upper, lower, digit bool
	for _, c := range m {
		switch {
		case 'A' <= c && c <= 'Z':
			upper = true
		case 'a' <= c && c <= 'z':
			lower = true
		case '0' <= c && c <= '9':
			digit = true
		}
	}
	return upper && lower && digit
}
