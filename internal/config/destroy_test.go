package config

import (
	"strings"
	"testing"
	"time"
)

// destroyCases cover the rules of the destroy section and of protect.
// They also seed FuzzParse.
var destroyCases = []errorCase{
	{"unknown retain type", localBase + "destroy: {retain: [log-group, logs]}\n", []string{
		`kiln.yaml:7:31: destroy.retain[1]: "logs" is not a resource type destroy knows; use one of ` + strings.Join(RetainTypes, ", ")}},
	{"retain type twice", localBase + "destroy: {retain: [bucket, bucket]}\n", []string{
		`kiln.yaml:7:28: destroy.retain[1]: "bucket" is listed twice`}},
	{"negative confirm", localBase + "destroy: {confirm_above: -1}\n", []string{
		`kiln.yaml:7:26: destroy.confirm_above: -1 is negative; use 0 to confirm every destroy`}},
	{"zero verify timeout", localBase + "destroy: {verify_timeout: 0s}\n", []string{
		`kiln.yaml:7:27: destroy.verify_timeout: 0s is out of range; use a duration above 0 and up to 24h, e.g. 5m`}},
	{"protect not a bool", depBase + "    protect: yes please\n", []string{
		`kiln.yaml:11:14: deployments.dev.protect: expected true or false, found "yes please"`}},
}

func TestDestroyErrors(t *testing.T) {
	dir := newProject(t)
	for _, tc := range destroyCases {
		t.Run(tc.name, func(t *testing.T) {
			wantErrors(t, tc.doc, dir, tc.want)
		})
	}
}

func TestDestroyDefaults(t *testing.T) {
	dir := newProject(t)
	c, err := Parse("kiln.yaml", []byte(depBase+"    protect: true\n  qa: {extends: dev}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Destroy.ConfirmAbove != 20 || c.Destroy.VerifyTimeout.Std() != 5*time.Minute || len(c.Destroy.Retain) != 0 {
		t.Errorf("defaults %+v", c.Destroy)
	}
	if !c.Deployments["dev"].Protect || !c.Deployments["qa"].Protect {
		t.Error("protect is not set, or not inherited")
	}
	c, err = Parse("kiln.yaml", []byte(localBase+"destroy: {retain: [log-group, user-pool], confirm_above: 0, verify_timeout: 30s}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Destroy.Retains("user-pool") || c.Destroy.Retains("bucket") || c.Destroy.ConfirmAbove != 0 || c.Destroy.VerifyTimeout.Std() != 30*time.Second {
		t.Errorf("settings %+v", c.Destroy)
	}
}
