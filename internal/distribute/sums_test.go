package distribute

import (
	"maps"
	"strings"
	"testing"
)

func TestParseSums(t *testing.T) {
	h := strings.Repeat("0", 64)
	tests := []struct {
		name string
		in   string
		want map[string]string // nil: refused
	}{
		{"text mode", h + "  a.qcow2\n", map[string]string{"a.qcow2": h}},
		{"binary mode", h + " *a.qcow2\n", map[string]string{"a.qcow2": h}},
		{"one space", h + " a.qcow2\n", map[string]string{"a.qcow2": h}},
		{"name starting with a star", h + " **a\n", map[string]string{"*a": h}},
		{"text mode, name starting with a star", h + "  **a\n", map[string]string{"**a": h}},
		{"name starting with a space", h + "   a\n", map[string]string{" a": h}},
		{"blank lines", "\n" + h + "  a\n\n", map[string]string{"a": h}},
		{"crlf", h + "  a\r\n", map[string]string{"a": h}},
		{"carriage return in the name", h + "  a\r\r\n", nil},
		{"empty name after crlf", h + "  \r\r\n", nil},
		{"tab in the name", h + "  a\tb\n", nil},
		{"slash", h + "  ../a\n", nil},
		{"backslash", h + "  a\\b\n", nil},
		{"dot dot", h + "  ..\n", nil},
		{"short sum", "00  a\n", nil},
		{"twice", h + "  a\n" + h + " *a\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSums([]byte(tt.in))
			if tt.want == nil {
				if err == nil {
					t.Fatalf("accepted %q as %q", tt.in, got)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("ParseSums(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if back, err := ParseSums(EncodeSums(got)); err != nil || !maps.Equal(back, got) {
				t.Fatalf("round trip: %q, %v", back, err)
			}
		})
	}
}
