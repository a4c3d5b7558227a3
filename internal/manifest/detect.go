package manifest

import (
	"errors"
	"fmt"
	"strings"
)

// Decode decodes data in whichever of the layouts fits it, trying them in
// order, and returns the manifest and the layout that fitted. No layouts
// means kiln's own format. When none fits, the error is that of the layout
// that came closest (fewest problems, the earlier on a tie), preceded by a
// line naming every layout tried, so a file that is simply wrong gets the
// same precise errors as with one format.
func DecodeAny(name string, data []byte, layouts ...*Layout) (Manifest, *Layout, error) {
	return checkAny(name, data, layouts, func(l *Layout) (Manifest, error) { return l.Decode(name, data) })
}

// CheckAny is DecodeAny with validation against r, as Layout.Check does.
func CheckAny(name string, data []byte, r Rules, layouts ...*Layout) (Manifest, *Layout, error) {
	return checkAny(name, data, layouts, func(l *Layout) (Manifest, error) { return l.Check(name, data, r) })
}

func checkAny(name string, data []byte, layouts []*Layout, check func(*Layout) (Manifest, error)) (Manifest, *Layout, error) {
	if len(layouts) == 0 {
		layouts = []*Layout{DefaultLayout}
	}
	var (
		best     Errors
		bestAt   *Layout
		firstErr error
	)
	for _, l := range layouts {
		m, err := check(l)
		if err == nil {
			return m, l, nil
		}
		var errs Errors
		if !errors.As(err, &errs) {
			return nil, nil, err
		}
		if firstErr == nil {
			firstErr = err
		}
		if best == nil || len(errs) < len(best) {
			best, bestAt = errs, l
		}
	}
	if len(layouts) == 1 {
		return nil, nil, firstErr
	}
	names := make([]string, len(layouts))
	for i, l := range layouts {
		names[i] = l.f.Name
	}
	head := &Error{File: name, Msg: fmt.Sprintf("fits none of the formats %s; the problems against %s, the closest:",
		strings.Join(names, ", "), bestAt.f.Name)}
	return nil, nil, append(Errors{head}, best...)
}
