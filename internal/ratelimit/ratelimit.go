// Package ratelimit gives each client a budget of requests per window, as
// the web application firewall in front of kiln's downloads does (AWS
// WAF's rate-based rules): a client is an IPv4 address or an IPv6 /64, a
// client over its budget is refused until its count over the trailing
// window drops below it, and networks on an allow-list are never limited.
//
// golang.org/x/time/rate is a token bucket: a steady refill with a burst.
// That bounds a client's long-run rate, but it is not "N requests in any
// window": a client that used its burst gets one request back every
// window/N instead of its whole budget after a quiet window. The firewall
// counts requests over a trailing window, so this package does too, with
// the sliding-window estimate of two fixed windows: the previous window's
// count weighted by how much of it still overlaps the trailing window,
// plus the current one's. It needs two counters per client, where an
// exact log needs N timestamps, and it errs by at most the previous
// window's count times the rounding of that weight.
package ratelimit

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/kiln-images/kiln/internal/lru"
)

// Limiter counts requests per client over a trailing window. It is safe
// for concurrent use. Its memory is bounded by the number of clients it
// remembers: beyond that it forgets the least recently seen client, whose
// next request then starts a new count — under a flood of more distinct
// clients than it remembers, it errs towards letting requests through,
// never towards refusing a client it does not know.
type Limiter struct {
	limit  int
	window time.Duration

	mu      sync.Mutex
	clients *lru.Map[netip.Prefix, *counter]
	evicted int
}

type counter struct {
	start     time.Time // start of the current fixed window
	prev, cur int       // requests allowed in the previous and current windows
}

// New returns a limiter of limit requests per window, remembering at most
// maxClients clients.
func New(limit int, window time.Duration, maxClients int) *Limiter {
	return &Limiter{limit: limit, window: window, clients: lru.New[netip.Prefix, *counter](maxClients)}
}

// Limit and Window are the budget.
func (l *Limiter) Limit() int            { return l.limit }
func (l *Limiter) Window() time.Duration { return l.window }

// Allow counts a request of client at now when it is within the budget
// and returns true; otherwise it counts nothing and returns false with
// how long until the client has a request again.
func (l *Limiter) Allow(client netip.Prefix, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.clients.Get(client)
	if !ok {
		c = &counter{start: now}
		if l.clients.Put(client, c) {
			l.evicted++
		}
	}
	c.advance(now, l.window)
	if c.estimate(now, l.window)+1 > float64(l.limit) {
		return false, c.retryAfter(now, l.window, l.limit)
	}
	c.cur++
	return true, 0
}

// Clients returns how many clients the limiter remembers and how many it
// has forgotten to make room.
func (l *Limiter) Clients() (remembered, evicted int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.clients.Len(), l.evicted
}

// advance moves the fixed windows on to the one holding now.
func (c *counter) advance(now time.Time, w time.Duration) {
	switch elapsed := now.Sub(c.start); {
	case elapsed < w:
	case elapsed < 2*w:
		c.prev, c.cur, c.start = c.cur, 0, c.start.Add(w)
	default:
		c.prev, c.cur = 0, 0
		c.start = c.start.Add(elapsed.Truncate(w))
	}
}

// estimate is the count over the trailing window ending at now.
func (c *counter) estimate(now time.Time, w time.Duration) float64 {
	overlap := 1 - float64(now.Sub(c.start))/float64(w)
	return float64(c.prev)*overlap + float64(c.cur)
}

// retryAfter is how long until estimate+1 <= limit, with no further
// requests: the previous window's weight falls as time passes, then the
// current window becomes the previous one.
func (c *counter) retryAfter(now time.Time, w time.Duration, limit int) time.Duration {
	room := float64(limit - 1)
	elapsed := now.Sub(c.start)
	left := w - elapsed // until the current fixed window ends
	if float64(c.cur) <= room && c.prev > 0 {
		// prev*(left-t)/w + cur <= room
		t := float64(left) - (room-float64(c.cur))*float64(w)/float64(c.prev)
		return ceilSecond(time.Duration(math.Max(t, 0)))
	}
	if c.cur == 0 {
		return ceilSecond(left)
	}
	// After the boundary: cur*(w-s)/w <= room.
	s := float64(w) - room*float64(w)/float64(c.cur)
	return ceilSecond(left + time.Duration(math.Max(s, 0)))
}

// ceilSecond rounds up to a whole second, at least one: Retry-After takes
// seconds, and a client told 0 would come straight back.
func ceilSecond(d time.Duration) time.Duration {
	s := (d + time.Second - 1).Truncate(time.Second)
	return max(s, time.Second)
}

// Key is the client an address counts as: an IPv4 address, or the /64 of
// an IPv6 address (one customer's network: handing out more addresses of
// it must not buy more requests).
func Key(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// Networks is a list of networks, such as an allow-list.
type Networks []netip.Prefix

// ParseNetworks parses CIDR strings.
func ParseNetworks(cidrs []string) (Networks, error) {
	var out Networks
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Contains reports whether a is in one of the networks.
func (n Networks) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range n {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
