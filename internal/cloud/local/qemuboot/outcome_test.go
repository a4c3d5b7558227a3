package qemuboot

import (
	"strings"
	"testing"
	"time"
)

func TestConsoleVerdicts(t *testing.T) {
	tests := []struct {
		name   string
		log    string
		ok     bool
		passed bool
		reason string
		panic  bool
	}{
		{"pass", "boot\r\nKILN-TEST-RESULT: PASS\r\n", true, true, "", false},
		{"pass without CR", "KILN-TEST-RESULT: PASS\n", true, true, "", false},
		{"CR inside the line", "\rKILN-TEST-RESULT: PASS\r\r\n", true, true, "", false},
		{"fail with status", "x\r\nKILN-TEST-RESULT: FAIL fail.sh 3\r\n", true, false, "test fail.sh failed with exit status 3", false},
		{"fail by timeout", "KILN-TEST-RESULT: FAIL hang.sh timeout\r\n", true, false, "test hang.sh did not finish within 7s", false},
		{"agent failure", "KILN-TEST-RESULT: FAIL kiln-agent unpack\r\n", true, false, "test kiln-agent failed: unpack", false},
		{"malformed fail", "KILN-TEST-RESULT: FAIL \r\n", true, false, "test failed: ", false},
		{"panic", "[   12.5] Kernel panic - not syncing: sysrq triggered crash\r\n", true, false,
			"kernel panic: Kernel panic - not syncing: sysrq triggered crash", true},
		{"first verdict wins", "KILN-TEST-RESULT: FAIL a.sh 1\nKILN-TEST-RESULT: PASS\n", true, false, "test a.sh failed with exit status 1", false},
		// Only whole lines are markers: systemd echoing a unit's text, or
		// a test printing the words mid-line, decides nothing.
		{"marker inside a line", "Starting KILN-TEST-RESULT: PASS\r\n", false, false, "", false},
		{"marker with trailing text", "KILN-TEST-RESULT: PASS!\r\n", false, false, "", false},
		{"other marker word", "KILN-TEST-RESULT: MAYBE\r\n", false, false, "", false},
		{"unterminated line waits", "KILN-TEST-RESULT: PASS", false, false, "", false},
		{"nothing", "just booting\r\nlogin: ", false, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Feed in every split of the log into two writes: a line may
			// arrive in pieces.
			for cut := 0; cut <= len(tt.log); cut++ {
				c := &console{perTest: 7 * time.Second}
				v, ok := c.feed([]byte(tt.log[:cut]))
				if !ok {
					v, ok = c.feed([]byte(tt.log[cut:]))
				}
				if ok != tt.ok || v.passed != tt.passed || v.reason != tt.reason || v.panic != tt.panic {
					t.Fatalf("cut at %d: got %v %+v, want %v passed=%v reason=%q panic=%v",
						cut, ok, v, tt.ok, tt.passed, tt.reason, tt.panic)
				}
			}
		})
	}
}

// At the end of the log (qemu gone) a last line without a newline counts.
func TestConsoleEnd(t *testing.T) {
	c := &console{}
	if _, ok := c.feed([]byte("boot\nKILN-TEST-RESULT: PASS")); ok {
		t.Fatal("verdict before the line ended")
	}
	v, ok := c.end()
	if !ok || !v.passed {
		t.Fatalf("end: %v %+v, want a pass", ok, v)
	}
}

// A very long line is cut, not kept whole, and lines after it still count.
func TestConsoleLongLine(t *testing.T) {
	c := &console{}
	if _, ok := c.feed([]byte(strings.Repeat("x", 10*maxLine))); ok {
		t.Fatal("verdict from noise")
	}
	if len(c.partial) > maxLine {
		t.Fatalf("kept %d bytes of one line, cap %d", len(c.partial), maxLine)
	}
	v, ok := c.feed([]byte("\nKILN-TEST-RESULT: PASS\n"))
	if !ok || !v.passed {
		t.Fatalf("got %v %+v after a long line, want a pass", ok, v)
	}
}
