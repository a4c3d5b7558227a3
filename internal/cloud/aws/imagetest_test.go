package aws

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

func TestTestImage(t *testing.T) {
	tests := []struct {
		name    string
		console string // what the guest prints; the marker shows from the third read
		timeout time.Duration
		passed  bool
		reason  string
	}{
		{"pass", "KILN-TEST-RESULT: PASS", time.Minute, true, ""},
		{"fail", "KILN-TEST-RESULT: FAIL tests/boot.sh 2", time.Minute, false, "test tests/boot.sh failed with exit status 2"},
		{"timeout", "", 300 * time.Millisecond, false, "timed out after 300ms waiting for the test marker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			src := seedImage(t, r.ec2("us-east-1"), "candidate", runTags())
			var reads atomic.Int32
			r.stub.SetConsole(func(region, id string) (string, bool) {
				text := "Linux version 6.1.0\nsystemd[1]: Reached target multi-user.target\n"
				if reads.Add(1) >= 3 && tt.console != "" {
					text += tt.console + "\r\n"
				}
				return text, true
			})
			dir := t.TempDir()
			write(t, filepath.Join(dir, "tests/boot.sh"), "#!/bin/sh\nsystemctl is-system-running\n", 0o644)
			logPath := filepath.Join(dir, "logs", "test.log")
			res, err := r.b.TestImage(ctxTimeout(t, time.Minute), cloud.TestInput{
				Region: "us-east-1", ImageID: *src.ImageId, Tests: []string{"tests/boot.sh"}, Dir: dir,
				LogPath: logPath, Tags: runTags(), Token: "test-token", Timeout: tt.timeout,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Passed != tt.passed || res.Reason != tt.reason || res.LogPath != logPath || res.Duration <= 0 {
				t.Errorf("result %+v, want passed=%v reason %q", res, tt.passed, tt.reason)
			}
			log, err := os.ReadFile(logPath)
			if err != nil || !strings.Contains(string(log), "Reached target") {
				t.Errorf("console log %q, %v", log, err)
			}
			// The test instance is gone and was tagged as a test machine.
			out, err := r.ec2("us-east-1").DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{
				Filters: []ec2types.Filter{filter("tag:"+cloud.TagToken, "test-token")}})
			if err != nil || len(out.Reservations) != 1 {
				t.Fatalf("test instances: %v, %v", out, err)
			}
			inst := out.Reservations[0].Instances[0]
			if inst.State.Name != ec2types.InstanceStateNameTerminated {
				t.Errorf("test instance is %s, want terminated", inst.State.Name)
			}
			if tags := tagMap(inst.Tags); tags[cloud.TagPhase] != cloud.PhaseTest || !cloud.Match(tags, runTags()) {
				t.Errorf("test instance tags %v", tags)
			}
			run := r.stub.Requests("ec2", "RunInstances")[0].Form
			if run.Get("ImageId") != *src.ImageId || run.Get("ClientToken") != "test-token" || run.Get("UserData") == "" {
				t.Errorf("RunInstances image %q token %q", run.Get("ImageId"), run.Get("ClientToken"))
			}
			if got := r.stub.Requests("ec2", "GetConsoleOutput")[0].Form.Get("Latest"); got != "true" {
				t.Errorf("GetConsoleOutput Latest=%q, want true", got)
			}
		})
	}
}

func TestTestImageTerminatesOnCancel(t *testing.T) {
	r := newRig(t)
	src := seedImage(t, r.ec2("us-east-1"), "candidate", nil)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "t.sh"), "#!/bin/sh\n", 0o644)
	ctx, cancel := context.WithCancel(t.Context())
	r.stub.SetConsole(func(region, id string) (string, bool) { cancel(); return "booting\n", true })
	_, err := r.b.TestImage(ctx, cloud.TestInput{Region: "us-east-1", ImageID: *src.ImageId, Tests: []string{"t.sh"},
		Dir: dir, Token: "cancel-token", Timeout: time.Minute})
	if err == nil {
		t.Fatal("TestImage with a cancelled context succeeded")
	}
	insts, _ := r.ec2("us-east-1").DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		filter("tag:"+cloud.TagToken, "cancel-token"), filter("instance-state-name", liveStates...)}})
	if len(insts.Reservations) != 0 {
		t.Error("test instance left running after cancellation")
	}
}
