package aws

import (
	"errors"
	"sync"
)

// together runs the functions at once and waits for all of them. Requests
// that do not depend on each other then cost one round trip, not one each.
// It returns their errors joined, in argument order.
func together(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
