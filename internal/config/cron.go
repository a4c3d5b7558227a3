package config

import (
	"fmt"
	"strings"

	"github.com/adhocore/gronx"
)

var cronFields = []string{"minute", "hour", "day of month", "month", "day of week"}

// checkCron validates a five-field cron expression. gronx.IsValid alone is
// not enough: for a list such as "5,99" it stops at the first element that
// matches the current time, so whether it accepts the expression depends on
// when it runs. Checking each element of each field on its own makes the
// answer the same at any time.
func checkCron(expr string) error {
	const hint = `; use five fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *" for 03:00 every day`
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return fmt.Errorf("invalid cron expression %q: it has %d fields, not 5%s", expr, len(fields), hint)
	}
	for i, f := range fields {
		for _, part := range strings.Split(f, ",") {
			one := []string{"*", "*", "*", "*", "*"}
			one[i] = part
			if part == "" || !gronx.IsValid(strings.Join(one, " ")) {
				return fmt.Errorf("invalid cron expression %q: %s field %q is not valid%s", expr, cronFields[i], f, hint)
			}
		}
	}
	return nil
}
