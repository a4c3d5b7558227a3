package distribute

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// SumsFile is the name of the checksum list in each version directory,
// which `sha256sum -c SHA256SUMS` checks.
const SumsFile = "SHA256SUMS"

// EncodeSums writes name -> sha256 as sha256sum does, sorted by name.
func EncodeSums(sums map[string]string) []byte {
	var b bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(sums)) {
		fmt.Fprintf(&b, "%s  %s\n", sums[name], name)
	}
	return b.Bytes()
}

// notPlain reports the runes a file name in the list may not hold: path
// separators, and control characters, which a line-based format cannot
// carry back (a trailing '\r' is eaten by the line reader).
func notPlain(r rune) bool {
	return r == '/' || r == '\\' || r < 0x20 || r == 0x7f
}

// ParseSums reads a SHA256SUMS file: one "<64 hex>  <name>" per line (a
// "*" before the name, sha256sum's binary mode, is accepted), names
// without slashes, each once.
func ParseSums(data []byte) (map[string]string, error) {
	if len(data) > 1<<20 {
		return nil, fmt.Errorf("%s: %d bytes, more than a checksum list has", SumsFile, len(data))
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		// One mode character follows the separator, as sha256sum writes:
		// ' ' for text, '*' for binary. Only one is dropped, so a name that
		// itself starts with '*' or ' ' reads back as it was written.
		if name != "" && (name[0] == ' ' || name[0] == '*') {
			name = name[1:]
		}
		switch {
		case !ok || !sha256RE.MatchString(sum):
			return nil, fmt.Errorf("%s line %d: want \"<sha256>  <file name>\"", SumsFile, n)
		case name == "" || strings.ContainsFunc(name, notPlain) || name == "." || name == "..":
			return nil, fmt.Errorf("%s line %d: file name %q is not a plain name", SumsFile, n, name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s line %d: %s is listed twice", SumsFile, n, name)
		}
		out[name] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", SumsFile, err)
	}
	return out, nil
}
