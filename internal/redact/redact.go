// Package redact keeps secret values out of text: strings, files and
// output streams. kiln fills one Secrets with the run's secret variables
// as soon as they are read and passes every text it prints, logs, records
// or keeps through it.
package redact

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
)

// Mask replaces a secret value: everywhere in kiln, so that one string
// finds every place something was hidden (the journal's redaction of
// secret-shaped text uses it too).
const Mask = "[REDACTED]"

// MinLine is the shortest line of a multi-line secret that is masked on
// its own, for a secret that is printed line by line: shorter lines (a
// "-----END" or an empty line) would mask unrelated text.
const MinLine = 8

// Secrets is a set of values to mask. The zero value holds none; it is
// safe for concurrent use.
type Secrets struct {
	mu     sync.RWMutex
	values []string // longest first, so a longer value masks before a part of it
}

// Add adds values to the set, with the forms they take in other text: each
// line of a multi-line value, and the value as a JSON string holds it.
// Empty values are ignored.
func (s *Secrets) Add(values ...string) {
	var forms []string
	for _, v := range values {
		if v == "" {
			continue
		}
		forms = append(forms, v)
		if strings.ContainsAny(v, "\r\n") {
			for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if len(line) >= MinLine {
					forms = append(forms, line)
				}
			}
		}
		if j, err := json.Marshal(v); err == nil {
			if q := string(j[1 : len(j)-1]); q != v {
				forms = append(forms, q)
			}
		}
	}
	if len(forms) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range forms {
		if !slices.Contains(s.values, f) {
			s.values = append(s.values, f)
		}
	}
	slices.SortStableFunc(s.values, func(a, b string) int { return len(b) - len(a) })
}

// Empty reports whether the set holds no value.
func (s *Secrets) Empty() bool {
	if s == nil {
		return true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.values) == 0
}

// String returns text with every secret value masked.
func (s *Secrets) String(text string) string {
	if s == nil {
		return text
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.values {
		if strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, Mask)
		}
	}
	return text
}

// Contains reports whether text holds a secret value.
func (s *Secrets) Contains(text string) bool {
	if s == nil {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.values {
		if strings.Contains(text, v) {
			return true
		}
	}
	return false
}

// pending returns how many bytes at the end of text begin a secret value
// without completing it: those must wait for the next write, which may
// complete it. The caller holds the read lock.
func (s *Secrets) pending(text string) int {
	most := 0
	for _, v := range s.values {
		for k := min(len(v)-1, len(text)); k > most; k-- {
			if strings.HasPrefix(v, text[len(text)-k:]) {
				most = k
				break
			}
		}
	}
	return most
}

// Error returns err with its message masked, or err itself when its
// message holds no secret. A masked error does not unwrap: what it wraps
// still says the secret.
func (s *Secrets) Error(err error) error {
	if err == nil || !s.Contains(err.Error()) {
		return err
	}
	return maskedError(s.String(err.Error()))
}

type maskedError string

func (e maskedError) Error() string { return string(e) }
