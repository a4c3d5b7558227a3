package local

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Limits on what callers may store.
const (
	MaxNameLen        = 128
	MaxTagKeyLen      = 128
	MaxTagValueLen    = 256
	MaxTags           = 50
	MaxTokenLen       = 256
	MaxDescriptionLen = 255
	maxAssetIDLen     = 128
	maxRegionLen      = 64
)

// invalidf returns an error matching cloud.ErrInvalid.
func invalidf(format string, args ...any) error {
	return cloud.Mark(fmt.Errorf(format, args...), cloud.ErrInvalid)
}

// checkText refuses values that could escape the store if they ever named a
// file, or that would garble output: invalid UTF-8, control characters (NUL
// included), path separators, "." and "..", and values over max characters.
func checkText(field, v string, max int, allowEmpty bool) error {
	switch {
	case v == "" && !allowEmpty:
		return invalidf("%s is empty", field)
	case !utf8.ValidString(v):
		return invalidf("%s %q: not valid UTF-8", field, v)
	case utf8.RuneCountInString(v) > max:
		return invalidf("%s %q: longer than %d characters", field, v, max)
	case strings.ContainsAny(v, `/\`):
		return invalidf("%s %q: path separators are not allowed", field, v)
	case v == "." || v == "..":
		return invalidf("%s %q: not allowed", field, v)
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return invalidf("%s %q: control character %U at byte %d is not allowed", field, v, v[i], i)
	}
	return nil
}

func checkName(v string) error { return checkText("name", v, MaxNameLen, false) }

// checkArch allows the architecture names kiln uses and similar words.
func checkArch(v string) error {
	if err := checkText("architecture", v, 32, false); err != nil {
		return err
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return invalidf("architecture %q: only a-z, 0-9, _ and - are allowed (e.g. x86_64, arm64)", v)
		}
	}
	return nil
}

func checkToken(v string) error { return checkText("token", v, MaxTokenLen, true) }

// checkDescription allows any printable text; it never names a file.
func checkDescription(v string) error {
	switch {
	case !utf8.ValidString(v):
		return invalidf("description %q: not valid UTF-8", v)
	case utf8.RuneCountInString(v) > MaxDescriptionLen:
		return invalidf("description %q: longer than %d characters", v, MaxDescriptionLen)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return invalidf("description %q: control characters are not allowed", v)
	}
	return nil
}

// checkTags validates tag keys and values and their number.
func checkTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return invalidf("tags: %d tags, at most %d are allowed", len(tags), MaxTags)
	}
	for k, v := range tags {
		if err := checkText("tag key", k, MaxTagKeyLen, false); err != nil {
			return err
		}
		if err := checkText(fmt.Sprintf("tags[%s]", k), v, MaxTagValueLen, true); err != nil {
			return err
		}
	}
	return nil
}

// checkFormat validates an export format name such as qcow2 or vmdk.
func checkFormat(f string) error {
	if f == "" || len(f) > 16 {
		return invalidf("export format %q: want 1 to 16 characters a-z, 0-9", f)
	}
	for _, c := range f {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return invalidf("export format %q: want 1 to 16 characters a-z, 0-9", f)
		}
	}
	return nil
}

// checkRegionName validates a region name, which names a directory.
func checkRegionName(name string) error {
	if err := checkText("region", name, maxRegionLen, false); err != nil {
		return err
	}
	return checkWord("region", name)
}

// checkAssetID validates the id of a build or instance asset, which names a
// file.
func checkAssetID(id string) error {
	if err := checkText("asset id", id, maxAssetIDLen, false); err != nil {
		return err
	}
	return checkWord("asset id", id)
}

// checkWord allows letters, digits, '.', '_' and '-', not leading '.'.
func checkWord(field, v string) error {
	for i, c := range v {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '-' || c == '.' && i > 0
		if !ok {
			return invalidf("%s %q: only letters, digits, '_', '-' and (not first) '.' are allowed", field, v)
		}
	}
	return nil
}

func isAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// show returns v for an error message: as it is when it is a plain word,
// quoted when it is empty or holds anything that could garble the message.
func show(v string) string {
	for _, c := range v {
		if c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return strconv.Quote(v)
		}
	}
	if v == "" {
		return `""`
	}
	return v
}
