package journal

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

const (
	idPrefix     = "kiln-"
	idTimeLayout = "20060102T150405Z"
	idHexDigits  = 6
	idLen        = len(idPrefix) + len(idTimeLayout) + 1 + idHexDigits
	idExample    = "kiln-20261121T093012Z-7f3a9c"
)

// ErrBadAssetID is matched (errors.Is) by the errors ParseAssetID returns.
var ErrBadAssetID = errors.New("invalid asset id")

// NewAssetID returns a new run id made of now, in UTC to the second, and six
// random hex digits from crypto/rand: "kiln-20261121T093012Z-7f3a9c". Ids
// sort as strings in the order of their times. Within one process, ids made
// for the same second are distinct; across processes and machines they are
// distinct in practice (one chance in 2^24 for two runs started in the same
// second).
func NewAssetID(now time.Time) string {
	ts := now.UTC().Format(idTimeLayout)
	return idPrefix + ts + "-" + recent.suffix(ts)
}

// recent remembers the suffixes handed out for the latest second: six hex
// digits alone would collide within a few thousand ids in one second (the
// birthday bound), and a pipeline that makes ids in a loop must never get the
// same one twice. It is the package's only mutable state, kept because the
// NewAssetID signature has no place for a generator.
var recent = &suffixes{}

type suffixes struct {
	mu     sync.Mutex
	second string
	used   map[string]bool
}

func (s *suffixes) suffix(second string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if second != s.second {
		s.second, s.used = second, make(map[string]bool)
	}
	var hx string
	// Give up on uniqueness only after many draws, which can happen only
	// when most of the 2^24 suffixes of one second are taken.
	for range 64 {
		var b [idHexDigits / 2]byte
		rand.Read(b[:]) // documented never to return an error
		hx = hex.EncodeToString(b[:])
		if !s.used[hx] {
			break
		}
	}
	s.used[hx] = true
	return hx
}

// ParseAssetID checks that s is an asset id as NewAssetID makes them and
// returns the time in it (UTC). Errors match ErrBadAssetID and show what a
// valid id looks like.
func ParseAssetID(s string) (time.Time, error) {
	bad := func(why string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("%w %q: %s; want kiln-YYYYMMDDTHHMMSSZ-xxxxxx (UTC time and %d lowercase hex digits), e.g. %s",
			ErrBadAssetID, s, why, idHexDigits, idExample)
	}
	if len(s) != idLen {
		return bad(fmt.Sprintf("length %d, not %d", len(s), idLen))
	}
	if s[:len(idPrefix)] != idPrefix {
		return bad(fmt.Sprintf("does not start with %q", idPrefix))
	}
	rest := s[len(idPrefix):]
	ts, sep, hx := rest[:len(idTimeLayout)], rest[len(idTimeLayout)], rest[len(idTimeLayout)+1:]
	t, err := time.Parse(idTimeLayout, ts)
	if err != nil {
		return bad(fmt.Sprintf("time %q is not a valid UTC time", ts))
	}
	if sep != '-' {
		return bad(fmt.Sprintf("%q after the time, not '-'", sep))
	}
	for _, c := range []byte(hx) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return bad(fmt.Sprintf("suffix %q is not %d lowercase hex digits", hx, idHexDigits))
		}
	}
	return t, nil
}
