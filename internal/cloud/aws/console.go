package aws

import (
	"encoding/base64"
	"strings"
)

// decodeConsole decodes GetConsoleOutput's base64 text; text that is not
// base64 is returned as it is.
func decodeConsole(s string) string {
	if s == "" {
		return ""
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return s
	}
	return string(data)
}

// marker is what a generated script reported on the console.
type marker struct {
	found  bool
	passed bool
	detail string // after FAIL: what failed
}

// findMarker looks for the last line carrying prefix (a build or test
// marker). The line may carry console noise before the marker (a kernel
// timestamp, a cloud-init prefix), so the marker is found within the line;
// carriage returns are stripped.
func findMarker(console, prefix string) marker {
	var m marker
	for _, line := range strings.Split(console, "\n") {
		line = strings.TrimRight(line, "\r \t")
		i := strings.Index(line, prefix)
		if i < 0 {
			continue
		}
		rest := strings.TrimSpace(line[i+len(prefix):])
		switch {
		case rest == "PASS":
			m = marker{found: true, passed: true}
		case rest == "FAIL" || strings.HasPrefix(rest, "FAIL "):
			m = marker{found: true, detail: strings.TrimSpace(strings.TrimPrefix(rest, "FAIL"))}
		}
	}
	return m
}

// testFailure turns a test FAIL marker's detail ("<test> <status>") into
// a reason.
func testFailure(detail string) string {
	i := strings.LastIndexByte(detail, ' ')
	if i < 0 {
		return "test failed: " + detail
	}
	return "test " + detail[:i] + " failed with exit status " + detail[i+1:]
}
