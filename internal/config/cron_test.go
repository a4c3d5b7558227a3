package config

import (
	"strings"
	"testing"
)

func TestCheckCron(t *testing.T) {
	for _, expr := range []string{
		"0 3 * * *",
		"*/15 * * * *",
		"0 0 1,15 * *",
		"30 4 * jan-jun mon-fri",
		"0 12 L * *",
		"0 9 * * 1#2",
		"0 0 * * 7",
		" 0  3 * * * ",
	} {
		if err := checkCron(expr); err != nil {
			t.Errorf("checkCron(%q): %v", expr, err)
		}
	}
	for _, tc := range []struct{ expr, field string }{
		{"", "it has 0 fields"},
		{"@daily", "it has 1 fields"},
		{"0 0 3 * * *", "it has 6 fields"},
		{"60 * * * *", `minute field "60"`},
		{"0 24 * * *", `hour field "24"`},
		{"0 0 32 * *", `day of month field "32"`},
		{"0 0 0 * *", `day of month field "0"`},
		{"0 0 * 13 *", `month field "13"`},
		{"0 0 * * 8", `day of week field "8"`},
		{"*/0 * * * *", `minute field "*/0"`},
		{"5-3 * * * *", `minute field "5-3"`},
		{"0,,5 * * * *", `minute field "0,,5"`},
		{"x * * * *", `minute field "x"`},
		// gronx alone accepts this list at minute 0 only; the answer
		// must not depend on the time.
		{"0,99 * * * *", `minute field "0,99"`},
		{"*,99 * * * *", `minute field "*,99"`},
	} {
		err := checkCron(tc.expr)
		if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), `"0 3 * * *"`) {
			t.Errorf("checkCron(%q) = %v; want an error naming %s with an example", tc.expr, err, tc.field)
		}
	}
}
