package awsrelease

import (
	"slices"
	"sort"
	"time"
)

// Summary is the median, minimum and maximum of a sample.
type Summary struct {
	Median, Min, Max float64
	N                int
}

// Summarize summarises xs; the median of an even count is the mean of the
// middle two.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	mid := len(s) / 2
	med := s[mid]
	if len(s)%2 == 0 {
		med = (s[mid-1] + s[mid]) / 2
	}
	return Summary{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// ActionStats is what one kind of request cost a run.
type ActionStats struct {
	Service, Action string
	Count           int
	// Busy is the wall time during which at least one request of this
	// kind was in flight. Count requests of latency L issued one after
	// another make Busy about Count*L; issued together, about L.
	Busy time.Duration
}

// Profile breaks a run's request log down.
type Profile struct {
	Requests int
	// Busy is the wall time with at least one request in flight; Idle is
	// Span minus Busy: pauses between polls, process start, local work.
	Span, Busy, Idle time.Duration
	// Rounds is Busy in units of the proxy's latency: roughly how many
	// request round trips lie one after another on the critical path.
	Rounds  float64
	Actions []ActionStats // most Busy first
	Errors  int           // answers with status 400 or above
}

// NewProfile profiles reqs, taken over span, with the proxy's latency.
func NewProfile(reqs []Request, span, latency time.Duration) Profile {
	p := Profile{Requests: len(reqs), Span: span}
	byAction := map[[2]string][]Request{}
	for _, r := range reqs {
		k := [2]string{r.Service, r.Action}
		byAction[k] = append(byAction[k], r)
		if r.Status >= 400 {
			p.Errors++
		}
	}
	p.Busy = busy(reqs)
	p.Idle = max(span-p.Busy, 0)
	if latency > 0 {
		p.Rounds = float64(p.Busy) / float64(latency)
	}
	for k, rs := range byAction {
		p.Actions = append(p.Actions, ActionStats{Service: k[0], Action: k[1], Count: len(rs), Busy: busy(rs)})
	}
	sort.Slice(p.Actions, func(i, j int) bool {
		a, b := p.Actions[i], p.Actions[j]
		if a.Busy != b.Busy {
			return a.Busy > b.Busy
		}
		return a.Service+a.Action < b.Service+b.Action
	})
	return p
}

// busy is the length of the union of the requests' [Start, End] intervals.
func busy(reqs []Request) time.Duration {
	iv := make([][2]time.Duration, 0, len(reqs))
	for _, r := range reqs {
		iv = append(iv, [2]time.Duration{r.Start, r.End})
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i][0] < iv[j][0] })
	var total time.Duration
	var cur [2]time.Duration
	for i, v := range iv {
		switch {
		case i == 0:
			cur = v
		case v[0] <= cur[1]:
			cur[1] = max(cur[1], v[1])
		default:
			total += cur[1] - cur[0]
			cur = v
		}
	}
	if len(iv) > 0 {
		total += cur[1] - cur[0]
	}
	return total
}
