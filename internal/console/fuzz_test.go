package console

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// cleanConsole takes whatever a guest wrote on its serial console: its
// output is valid UTF-8 with no control character but newline and tab,
// and plain text passes unchanged.
func FuzzCleanConsole(f *testing.F) {
	for _, s := range []string{"", "plain\n", "\x1b[0;32mOK\x1b[0m\r\n", "\x1b[?25l\x1b[", "\xff\xfe", "a\x00b\x07c\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := cleanConsole(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 from %q: %q", s, out)
		}
		for _, r := range out {
			if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f {
				t.Fatalf("control character %U left in %q (from %q)", r, out, s)
			}
		}
		if len(out) > len(s)*3 { // U+FFFD is 3 bytes for each bad byte
			t.Fatalf("output %d bytes from %d", len(out), len(s))
		}
		plain := strings.Map(func(r rune) rune {
			if r >= 0x20 && r != 0x7f && r != utf8.RuneError || r == '\n' || r == '\t' {
				return r
			}
			return -1
		}, s)
		if plain == s && utf8.ValidString(s) && out != s {
			t.Fatalf("plain text changed: %q -> %q", s, out)
		}
	})
}
