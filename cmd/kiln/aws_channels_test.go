package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Channel pointers kept as SSM parameters follow the manifests through
// publish, promote and rollback, in every region.
func TestAWSChannelParameters(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	data, _ := os.ReadFile(w.cfg)
	os.WriteFile(w.cfg, []byte(strings.Replace(string(data), "    test_timeout: 1m\n",
		"    test_timeout: 1m\n    ssm_parameters: /images/{channel}/{use_case}\n", 1)), 0o644)
	// params returns the parameter's value in every region.
	params := func(name string) map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, region := range awsRegions {
			c := ssm.NewFromConfig(awstest.Config(motoServer.URL, region))
			out, err := c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String(name)})
			if err == nil {
				got[region] = aws.ToString(out.Parameter.Value)
			}
		}
		return got
	}
	ids := func(channel string) map[string]string {
		t.Helper()
		m, err := manifest.Load(filepath.Join(w.dir, "manifests", channel+".json"))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for region, e := range m["ci-runner"] {
			got[region] = e.ID
		}
		return got
	}
	same := func(a, b map[string]string) bool {
		if len(a) != len(awsRegions) || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if b[k] != v {
				return false
			}
		}
		return true
	}

	if _, stderr, code := w.kiln(t, "release", "ci-runner"); code != 0 {
		t.Fatalf("release: exit %d\n%s", code, stderr)
	}
	first := ids("latest")
	if got := params("/images/latest/ci-runner"); !same(got, first) {
		t.Fatalf("after publish: parameters %v, manifest %v", got, first)
	}
	if out, stderr, code := w.kiln(t, "promote", "ci-runner", "--apply"); code != 0 {
		t.Fatalf("promote: exit %d\n%s%s", code, out, stderr)
	}
	if got := params("/images/stable/ci-runner"); !same(got, first) {
		t.Fatalf("after promote: stable parameters %v, want %v", got, first)
	}

	git(t, w.dir, "init", "-q")
	git(t, w.dir, "add", "manifests")
	git(t, w.dir, "commit", "-qm", "first release")
	git(t, w.dir, "tag", "v1")
	if _, stderr, code := w.kiln(t, "release", "ci-runner"); code != 0 {
		t.Fatalf("second release: exit %d\n%s", code, stderr)
	}
	second := ids("latest")
	if got := params("/images/latest/ci-runner"); !same(got, second) || same(second, first) {
		t.Fatalf("after the second publish: parameters %v, manifest %v (first %v)", got, second, first)
	}
	if out, stderr, code := w.kiln(t, "rollback", "--channel", "latest", "--ref", "v1", "--apply"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, stderr)
	}
	if got := params("/images/latest/ci-runner"); !same(got, first) || !same(ids("latest"), first) {
		t.Fatalf("after rollback: parameters %v, manifest %v, want %v", got, ids("latest"), first)
	}
}
