package qemuboot

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The result lines the guest agent prints.
const (
	markerPass = "KILN-TEST-RESULT: PASS"
	markerFail = "KILN-TEST-RESULT: FAIL "
)

// maxLine caps how much of one console line is kept while waiting for its
// end; markers and panic lines are far shorter.
const maxLine = 16 << 10

// verdict is what the console said about the boot.
type verdict struct {
	passed bool
	reason string
	panic  bool // a kernel panic: the guest will not power off by itself
}

// console reads the serial log as it grows and finds the first verdict in
// it.
type console struct {
	perTest time.Duration // for the reason of an in-guest timeout
	partial []byte        // the current line so far
}

// feed takes the next bytes of the log and returns the verdict of the
// first complete line that has one.
func (c *console) feed(b []byte) (verdict, bool) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.add(b)
			return verdict{}, false
		}
		c.add(b[:i])
		b = b[i+1:]
		line := string(c.partial)
		c.partial = c.partial[:0]
		if v, ok := c.judge(line); ok {
			return v, true
		}
	}
	return verdict{}, false
}

// end judges a last line that never got its newline.
func (c *console) end() (verdict, bool) {
	line := string(c.partial)
	c.partial = c.partial[:0]
	return c.judge(line)
}

func (c *console) add(b []byte) {
	if room := maxLine - len(c.partial); len(b) > room {
		b = b[:max(room, 0)]
	}
	c.partial = append(c.partial, b...)
}

// judge reads one console line. Markers count only as whole lines once
// carriage returns are gone; a kernel panic counts anywhere in a line.
func (c *console) judge(line string) (verdict, bool) {
	line = strings.ReplaceAll(line, "\r", "")
	switch {
	case line == markerPass:
		return verdict{passed: true}, true
	case strings.HasPrefix(line, markerFail):
		return verdict{reason: c.failReason(strings.TrimPrefix(line, markerFail))}, true
	}
	if i := strings.Index(line, "Kernel panic"); i >= 0 {
		return verdict{reason: "kernel panic: " + strings.TrimSpace(line[i:]), panic: true}, true
	}
	return verdict{}, false
}

// failReason explains "<test> <status>": status is an exit status,
// "timeout", or a word from the agent about what it could not do.
func (c *console) failReason(rest string) string {
	f := strings.Fields(rest)
	if len(f) != 2 {
		return "test failed: " + strings.TrimSpace(rest)
	}
	test, status := f[0], f[1]
	if _, err := strconv.Atoi(status); err == nil {
		return fmt.Sprintf("test %s failed with exit status %s", test, status)
	}
	if status == "timeout" {
		return fmt.Sprintf("test %s did not finish within %s", test, c.perTest)
	}
	return fmt.Sprintf("test %s failed: %s", test, status)
}
