package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func TestBudgetPerWindow(t *testing.T) {
	l := New(100, 5*time.Minute, 1000)
	a := Key(netip.MustParseAddr("192.0.2.1"))
	for i := range 100 {
		if ok, _ := l.Allow(a, t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("request %d refused within the budget", i+1)
		}
	}
	ok, retry := l.Allow(a, t0.Add(100*time.Second))
	if ok {
		t.Fatal("request 101 within the window allowed")
	}
	// All 100 came in the first window, so the client gets one back only
	// as the trailing window slides off the first one: a little after the
	// boundary (5m), not 3 s later as a token bucket would.
	if retry < 200*time.Second || retry > 205*time.Second {
		t.Fatalf("Retry-After %s, want about 5m-100s+3s", retry)
	}
	if ok, _ := l.Allow(a, t0.Add(100*time.Second).Add(retry)); !ok {
		t.Fatalf("refused after waiting the Retry-After %s", retry)
	}
	// Another client has its own budget.
	if ok, _ := l.Allow(Key(netip.MustParseAddr("192.0.2.2")), t0.Add(101*time.Second)); !ok {
		t.Fatal("another client was refused")
	}
	// After a quiet window the whole budget is back.
	later := t0.Add(15 * time.Minute)
	for i := range 100 {
		if ok, _ := l.Allow(a, later.Add(time.Duration(i)*time.Millisecond)); !ok {
			t.Fatalf("after a quiet window, request %d refused", i+1)
		}
	}
}

func TestSlidingEstimate(t *testing.T) {
	l := New(10, time.Minute, 10)
	k := Key(netip.MustParseAddr("198.51.100.7"))
	for i := range 10 {
		l.Allow(k, t0.Add(time.Duration(i)*time.Second))
	}
	// Half a window later, half of the previous window's 10 still count.
	at := t0.Add(90 * time.Second)
	n := 0
	for {
		ok, _ := l.Allow(k, at)
		if !ok {
			break
		}
		n++
	}
	if n != 5 {
		t.Fatalf("at half overlap %d requests allowed, want 5", n)
	}
}

func TestKeys(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.55", "192.0.2.55/32"},
		{"::ffff:192.0.2.55", "192.0.2.55/32"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
	} {
		if got := Key(netip.MustParseAddr(tc.addr)).String(); got != tc.want {
			t.Errorf("Key(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	// Two addresses of one /64 share a budget.
	l := New(2, time.Minute, 10)
	l.Allow(Key(netip.MustParseAddr("2001:db8::1")), t0)
	l.Allow(Key(netip.MustParseAddr("2001:db8::2")), t0)
	if ok, _ := l.Allow(Key(netip.MustParseAddr("2001:db8::3")), t0); ok {
		t.Error("a third address of the same /64 got a third request")
	}
	nets, err := ParseNetworks([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"10.1.2.3": true, "::ffff:10.1.2.3": true, "11.0.0.1": false, "2001:db8:ff::1": true, "2001:db9::1": false} {
		if nets.Contains(netip.MustParseAddr(addr)) != want {
			t.Errorf("Contains(%s) != %v", addr, want)
		}
	}
}

func TestMemoryIsBounded(t *testing.T) {
	l := New(1, time.Hour, 1000)
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Allow(Key(a), t0)
	}
	n, evicted := l.Clients()
	if n != 1000 || evicted != 99_000 {
		t.Fatalf("remembers %d clients, evicted %d; want 1000 and 99000", n, evicted)
	}
}
