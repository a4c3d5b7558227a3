package journal

import (
	"strings"
	"testing"
)

func TestEvents(t *testing.T) {
	j := openTemp(t)
	ctx := t.Context()
	if err := j.Record(ctx, Event{}); err == nil {
		t.Fatal("an event without a kind was recorded")
	}
	for _, e := range []Event{
		{Kind: "override-gate", Subject: "channel stable", Detail: "interval: hotfix for CVE-2026-1 password=hunter2"},
		{Kind: "adopt", Subject: "project demo", Detail: "3 resource(s)"},
	} {
		if err := j.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := j.Events(ctx, "")
	if err != nil || len(all) != 2 || all[0].Kind != "override-gate" || all[1].Kind != "adopt" {
		t.Fatalf("events %+v: %v", all, err)
	}
	if strings.Contains(all[0].Detail, "hunter2") || !strings.Contains(all[0].Detail, "hotfix") {
		t.Errorf("detail not redacted: %q", all[0].Detail)
	}
	if all[0].Time.IsZero() || all[0].Host == "" {
		t.Errorf("time or host missing: %+v", all[0])
	}
	some, err := j.Events(ctx, "adopt")
	if err != nil || len(some) != 1 || some[0].Subject != "project demo" {
		t.Fatalf("adopt events %+v: %v", some, err)
	}
}
