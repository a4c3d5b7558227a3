package awsrelease

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Summary
	}{
		{[]float64{3, 1, 2}, Summary{Median: 2, Min: 1, Max: 3, N: 3}},
		{[]float64{4, 1, 3, 2}, Summary{Median: 2.5, Min: 1, Max: 4, N: 4}},
		{nil, Summary{}},
	} {
		if got := Summarize(c.in); got != c.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestProfileSeparatesSerialFromConcurrent(t *testing.T) {
	ms := time.Millisecond
	var reqs []Request
	// Three requests one after another, then three at once.
	for i := range 3 {
		s := time.Duration(i) * 100 * ms
		reqs = append(reqs, Request{Start: s, End: s + 100*ms, Service: "ec2", Action: "ModifyImageAttribute", Status: 200})
	}
	for range 3 {
		reqs = append(reqs, Request{Start: 500 * ms, End: 600 * ms, Service: "ec2", Action: "CopyImage", Status: 200})
	}
	reqs = append(reqs, Request{Start: 700 * ms, End: 800 * ms, Service: "sts", Action: "GetCallerIdentity", Status: 403})

	p := NewProfile(reqs, time.Second, 100*ms)
	if p.Requests != 7 || p.Errors != 1 {
		t.Fatalf("requests %d errors %d, want 7 and 1", p.Requests, p.Errors)
	}
	if p.Busy != 500*ms || p.Idle != 500*ms || p.Rounds != 5 {
		t.Fatalf("busy %s idle %s rounds %.1f, want 500ms, 500ms, 5", p.Busy, p.Idle, p.Rounds)
	}
	want := map[string]ActionStats{
		"ModifyImageAttribute": {Count: 3, Busy: 300 * ms},
		"CopyImage":            {Count: 3, Busy: 100 * ms},
		"GetCallerIdentity":    {Count: 1, Busy: 100 * ms},
	}
	for _, a := range p.Actions {
		w := want[a.Action]
		if a.Count != w.Count || a.Busy != w.Busy {
			t.Errorf("%s: count %d busy %s, want %d and %s", a.Action, a.Count, a.Busy, w.Count, w.Busy)
		}
	}
	if p.Actions[0].Action != "ModifyImageAttribute" {
		t.Errorf("first action %s, want the busiest, ModifyImageAttribute", p.Actions[0].Action)
	}
}
