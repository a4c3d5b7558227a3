package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/manifest/consumertest"
	"github.com/kiln-images/kiln/internal/report"
)

// runnersAWS is the runner project on the aws backend, in the older
// format (v1) or the newer reading the older (v2). moto makes no arm64
// images, so both have x86_64 only here; the local test has both.
func runnersAWS(w *awsWorld, v string) string {
	channels := "{manifest: modules/aws/ami_lookup/manifest.json, format: runners-v1}"
	stable := "{manifest: modules/aws/ami_lookup/stable.json, format: runners-v1}"
	if v == "v2" {
		channels = "{manifest: modules/aws/ami_lookup/manifest.json, format: runners-v2, reads: [runners-v1]}"
		stable = "{manifest: modules/aws/ami_lookup/stable.json, format: runners-v2, reads: [runners-v1]}"
	}
	return `project: runners
backend:
  type: aws
  aws:
    allowed_accounts: ["` + awstest.Account + `"]
    poll_interval: 10ms
    retry_max_backoff: 50ms
    build_timeout: 2m
    copy_timeout: 2m
    test_timeout: 1m
regions: [` + strings.Join(awsRegions, ", ") + `]
build_region: us-east-1
cost_tag: {key: deployment_name, value: runners}
channels:
  latest: ` + channels + `
  stable: ` + stable + `
` + runnerFormats + `use_cases:
  linux-ephemeral:
    architectures: [x86_64]
    attributes: {os: linux, role: ephemeral}
    base: {ami: ` + w.base + `}
    provision: [{shell: scripts/setup.sh}]
    tests: [tests/boot.sh]
    publish: {public: true, deprecate_after: 180d}
`
}

// The runner fleet's two formats on the aws backend: release, promote and
// drift in each; the files keep the consumer's layout, Terraform reads
// them, and the older diffs against the newer showing only the new release.
func TestAWSConsumerFormats(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	if err := os.WriteFile(w.cfg, []byte(runnersAWS(w, "v1")), 0o644); err != nil {
		t.Fatal(err)
	}
	latest := filepath.Join(w.dir, "modules/aws/ami_lookup/manifest.json")
	stable := filepath.Join(w.dir, "modules/aws/ami_lookup/stable.json")
	release := func() {
		t.Helper()
		if out, stderr, code := w.kiln(t, "release", "linux-ephemeral"); code != 0 {
			t.Fatalf("release: exit %d\n%s%s", code, out, stderr)
		}
	}
	promote := func() {
		t.Helper()
		if out, stderr, code := w.kiln(t, "promote", "linux-ephemeral", "--from", "latest", "--to", "stable", "--apply"); code != 0 {
			t.Fatalf("promote: exit %d\n%s%s", code, out, stderr)
		}
	}
	inSync := func() {
		t.Helper()
		if out, stderr, code := w.kiln(t, "drift"); code != 0 {
			t.Fatalf("drift: exit %d\n%s%s", code, out, stderr)
		}
	}

	release()
	checkConsumerLayout(t, latest)
	v1 := readFile(t, latest)
	if len(v1) != 1 || len(v1["linux-ephemeral"]) != len(awsRegions) {
		t.Fatalf("manifest in runners-v1:\n%v", v1)
	}
	for region, e := range v1["linux-ephemeral"] {
		dep, ok := w.stub.Deprecation(e["id"].(string))
		if e["name"] != "ubuntu" || e["region"] != region || e["architecture"] != "x86_64" || e["public"] != true ||
			!ok || e["deprecation_time"] != dep.UTC().Format("2006-01-02T15:04:05.000Z") {
			t.Errorf("%s: %v (deprecation %s)", region, e, dep)
		}
	}
	promote()
	inSync()
	git(t, w.dir, "init", "-q")
	git(t, w.dir, "add", "kiln.yaml", "modules")
	git(t, w.dir, "commit", "-qm", "runners-v1")
	git(t, w.dir, "tag", "v1")

	if err := os.WriteFile(w.cfg, []byte(runnersAWS(w, "v2")), 0o644); err != nil {
		t.Fatal(err)
	}
	inSync() // the older files, read under the newer config
	release()
	promote()
	inSync()
	a, b := checkConsumerLayout(t, latest), checkConsumerLayout(t, stable)
	if !bytes.Equal(a, b) {
		t.Fatalf("stable differs from latest:\n%s\n%s", a, b)
	}
	v2 := readFile(t, latest)
	if len(v2) != 1 || len(v2["linux-amd64-ephemeral"]) != len(awsRegions) {
		t.Fatalf("manifest in runners-v2:\n%v", v2)
	}

	// The older file against the newer: one new image per region, the
	// id and the deprecation time; nothing about the format's change.
	out, stderr, code := w.kiln(t, "manifest", "diff", "v1:modules/aws/ami_lookup/manifest.json", latest)
	if code != 1 {
		t.Fatalf("manifest diff: exit %d\n%s%s", code, out, stderr)
	}
	// (The deprecation time is the run's start + 180d, to the second: it
	// changes unless both runs started within one second.)
	ids := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "~ linux-amd64-ephemeral.") || !strings.Contains(l, ".id: ") && !strings.Contains(l, ".deprecation_time: ") {
			t.Fatalf("manifest diff across formats shows %q:\n%s", l, out)
		}
		if strings.Contains(l, ".id: ") {
			ids++
		}
	}
	if ids != len(awsRegions) {
		t.Fatalf("manifest diff across formats: %d new ids, want %d:\n%s", ids, len(awsRegions), out)
	}
	out, _, code = w.kiln(t, "manifest", "diff", "-o", "json", "v1:modules/aws/ami_lookup/manifest.json", latest)
	var dr struct {
		Changes []json.RawMessage `json:"changes"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &dr) != nil || len(dr.Changes) != len(awsRegions) {
		t.Fatalf("manifest diff -o json: exit %d\n%s", code, out)
	}

	// Terraform reads the file as the runner module does.
	got := consumertest.TerraformOutputs(t, t.TempDir(), `
locals { amis = jsondecode(file("`+latest+`")) }
output "eu" { value = local.amis["linux-amd64-ephemeral"]["eu-west-1"].id }
`, "eu")
	if got["eu"] != v2["linux-amd64-ephemeral"]["eu-west-1"]["id"] {
		t.Fatalf("terraform reads %q; the file says %v", got["eu"], v2["linux-amd64-ephemeral"]["eu-west-1"]["id"])
	}

	// Drift in the newer format: an image made private behind kiln's back.
	id := v2["linux-amd64-ephemeral"]["ap-southeast-2"]["id"].(string)
	if _, err := w.ec2("ap-southeast-2").ModifyImageAttribute(t.Context(), &ec2.ModifyImageAttributeInput{
		ImageId:          aws.String(id),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Remove: []ec2types.LaunchPermission{{Group: ec2types.PermissionGroupAll}}},
	}); err != nil {
		t.Fatal(err)
	}
	// The first release's images are referenced by the older file at v1.
	out, _, code = w.kiln(t, "drift", "--git-refs", "v*", "-o", "json")
	var drift report.Drift
	json.Unmarshal([]byte(out), &drift)
	if code != 1 || len(drift.Findings) != 2 {
		t.Fatalf("drift after making %s private: exit %d\n%s", id, code, out)
	}
	for _, f := range drift.Findings {
		if f.Kind != "public" || f.Key != "linux-amd64-ephemeral" || f.ImageID != id {
			t.Fatalf("finding %+v", f)
		}
	}
}
