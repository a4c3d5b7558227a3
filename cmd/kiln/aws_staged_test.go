package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/report"
)

// A recipe of 1 MiB of files and an Ansible playbook, with a plain
// variable (given on the command line, used in names) and a secret one
// (from the environment), releases by instance on moto: the bundles are
// staged in the bucket and fetched by the guests through presigned URLs,
// digests checked. Afterwards the secret is nowhere: not in the project
// directory (kiln.yaml, manifests, the state directory with its journal and
// kept console logs), not in kiln's output, not in a tag or the user data,
// and the staged bundles that held it are gone.
func TestAWSReleaseStagedRecipeAndSecret(t *testing.T) {
	const secret = "reg-T0KEN-e2e-5ecret-7731"
	w := newAWSWorld(t, "{public: true}")
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	files := map[string]string{
		"scripts/setup.sh":                  "#!/bin/sh\necho \"flavour $flavour\" >/etc/flavour\ndocker login -p \"$registry_token\" registry.example\n",
		"files/blob.bin":                    string(blob),
		"ansible/site.yml":                  "- hosts: all\n  roles: [base]\n",
		"ansible/roles/base/tasks/main.yml": "- copy: {content: '{{ flavour }}', dest: /etc/flavour-ansible}\n",
	}
	for p, body := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(w.dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(w.dir, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(w.cfg)
	s := strings.Replace(string(data), "      - shell: scripts/setup.sh\n", `      - shell: scripts/setup.sh
      - file: {source: files/blob.bin, destination: /opt/blob.bin}
      - ansible: {playbook: ansible/site.yml}
`, 1)
	s += `naming: {release: "{use_case}-{var.flavour}-{version}"}
variables:
  flavour: {default: plain}
  registry_token: {secret: true}
`
	os.WriteFile(w.cfg, []byte(s), 0o644)
	t.Setenv("KILN_VAR_registry_token", secret)
	// A careless step prints the secret on the console, which kiln keeps.
	w.stub.SetConsole(func(region, id string) (string, bool) {
		text, ok := w.guests.Console(region, id)
		return "docker login -p " + secret + "\n" + text, ok
	})

	out, stderr, code := w.kiln(t, "release", "ci-runner", "--var", "flavour=crisp", "-o", "json", "-v")
	if code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, stderr)
	}
	var rep report.Release
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	run := rep.Run.ID
	runs, _, _ := w.kiln(t, "runs", "--run", run, "-o", "json")

	// The guests fetched both bundles from the bucket and checked them;
	// the build's held the recipe and, for the steps only, the secret.
	phases := map[string]int{}
	for id, b := range w.guests.Bundles() {
		if b.Err != nil || !strings.Contains(b.URL, "/"+awsBucket+"/kiln/staging/"+run+"/") || !strings.Contains(b.URL, "X-Amz-Signature=") {
			t.Errorf("instance %s: bundle from %q: %v", id, b.URL, b.Err)
		}
		phases[b.Phase]++
		if b.Phase == "build" {
			if b.Size < 1<<20 || len(b.Files["steps/2/src"]) != 1<<20 || b.Files["steps/3/playbook/roles/base/tasks/main.yml"] == nil {
				t.Errorf("build bundle: %d bytes, lacks the recipe's files or the playbook's role", b.Size)
			}
			if !bytes.Contains(b.Files["vars/vars.env"], []byte(secret)) || b.Modes["vars/vars.env"] != 0o600 ||
				!bytes.Contains(b.Files["vars/ansible-3.json"], []byte(`"flavour":"crisp"`)) {
				t.Errorf("build bundle variables: env %q (mode %o), ansible %q", b.Files["vars/vars.env"], b.Modes["vars/vars.env"], b.Files["vars/ansible-3.json"])
			}
		}
	}
	if phases["build"] != 1 || phases["test"] != 1 {
		t.Errorf("guests played %v, want one build and one test", phases)
	}
	if left := w.staged(t); len(left) > 0 {
		t.Errorf("staged bundles left in the bucket: %v", left)
	}
	for _, action := range []string{"RunInstances"} {
		for _, c := range w.stub.Requests("ec2", action) {
			ud, _ := base64.StdEncoding.DecodeString(c.Form.Get("UserData"))
			if len(ud) > 4<<10 || bytes.Contains(ud, []byte(secret)) {
				t.Errorf("user data of %d bytes, holding the secret: %v", len(ud), bytes.Contains(ud, []byte(secret)))
			}
		}
	}

	// Names from the variable; no tag anywhere holds the secret.
	for _, region := range awsRegions {
		imgs := w.images(t, region, run)
		if len(imgs) != 1 || !strings.HasPrefix(aws.ToString(imgs[0].Name), "ci-runner-crisp-") {
			t.Fatalf("%s: images %v", region, imgs)
		}
		snaps, err := w.ec2(region).DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
			Filters: []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagAssetID), Values: []string{run}}}})
		if err != nil {
			t.Fatal(err)
		}
		var tags []string
		for _, im := range imgs {
			for _, tg := range im.Tags {
				tags = append(tags, aws.ToString(tg.Value))
			}
		}
		for _, sn := range snaps.Snapshots {
			for _, tg := range sn.Tags {
				tags = append(tags, aws.ToString(tg.Value))
			}
		}
		if strings.Contains(strings.Join(tags, "\n"), secret) {
			t.Errorf("%s: a tag holds the secret", region)
		}
	}

	// The kept build console masked what the careless step printed.
	logs, _ := filepath.Glob(filepath.Join(w.dir, ".kiln", "logs", "*.log"))
	if len(logs) == 0 {
		t.Fatalf("no build console kept")
	}
	for _, l := range logs {
		if data, _ := os.ReadFile(l); !bytes.Contains(data, []byte("docker login -p [REDACTED]")) {
			t.Errorf("%s does not show the masked line:\n%s", l, data)
		}
	}

	// A step that fails saying the secret: the error kiln prints and the
	// journal it keeps show it masked.
	w.guests.FailWith(func(phase, id string) string {
		if phase == "build" {
			return "step 1: registry refused token " + secret
		}
		return ""
	})
	failOut, failErr, code := w.kiln(t, "build", "ci-runner", "--var", "flavour=crisp")
	if code != 2 || !strings.Contains(failErr, "registry refused token [REDACTED]") {
		t.Fatalf("failing build: exit %d, stderr does not show the masked reason:\n%s", code, failErr)
	}
	failRuns, _, _ := w.kiln(t, "runs", "-o", "json")
	failRun := strings.Fields(failErr[strings.Index(failErr, "run kiln-")+len("run "):])[0]
	failRun = strings.TrimSuffix(failRun, ":")
	steps, _, _ := w.kiln(t, "runs", "--run", failRun, "-o", "json")
	if !strings.Contains(steps, "registry refused token [REDACTED]") {
		t.Errorf("the journal does not hold the masked reason:\n%s", steps)
	}

	if where := secretIn(t, secret, []string{w.dir}, map[string]string{
		"release stdout": out, "release stderr": stderr, "runs": runs,
		"failed build stdout": failOut, "failed build stderr": failErr, "runs after the failure": failRuns, "failed run": steps,
	}); len(where) > 0 {
		t.Errorf("the secret is in %v", where)
	}
}
