package aws

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

// stagedRecipe writes a recipe of 1 MiB of files (one incompressible
// file, a tree) and an Ansible playbook with a role next to it.
func stagedRecipe(t *testing.T, base config.Base) cloud.BuildInput {
	t.Helper()
	in := buildInput(t, base)
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	write(t, filepath.Join(in.Dir, "files/blob.bin"), string(blob), 0o644)
	for i := range 20 {
		write(t, filepath.Join(in.Dir, "files/conf.d", "part-"+string(rune('a'+i))+".conf"), strings.Repeat("setting = value\n", 200), 0o644)
	}
	write(t, filepath.Join(in.Dir, "ansible/site.yml"), "- hosts: all\n  roles: [base]\n", 0o644)
	write(t, filepath.Join(in.Dir, "ansible/roles/base/tasks/main.yml"), "- copy: {content: '{{ flavour }}', dest: /etc/flavour}\n", 0o644)
	in.UseCase.Provision = append(in.UseCase.Provision,
		config.Step{File: &config.FileStep{Source: "files/blob.bin", Destination: "/opt/blob.bin"}},
		config.Step{File: &config.FileStep{Source: "files/conf.d", Destination: "/etc/app/conf.d"}},
		config.Step{Ansible: &config.AnsibleStep{Playbook: "ansible/site.yml", ExtraVars: map[string]string{"greeting": "hi"}}},
	)
	in.Vars = []cloud.Var{{Name: "flavour", Value: "crisp"}, {Name: "registry_token", Value: "reg-t0ken-5ecret-value", Secret: true}}
	return in
}

// A recipe far over user data's 16 KiB builds: the bundle is staged in
// the bucket, tagged, fetched by the guest through the presigned URL in
// the user data and checked against its digest, listed by the inventory
// while it exists, and deleted with the build's temporary resources.
func TestBuildStaged(t *testing.T) {
	const bucket = "kiln-staging-test"
	r := newRig(t, withConfig(func(c *config.AWSBackend) { c.Bucket = bucket }))
	makeBucket(t, r, "us-east-1", bucket)
	guests := awstest.SimulateGuests(t, motoServer.URL, "us-east-1")
	base := seedImage(t, r.ec2("us-east-1"), "debian-12-base", nil)
	in := stagedRecipe(t, config.Base{AMI: *base.ImageId})
	secret := in.Vars[1].Value
	// The console shows what a careless step printed: the secret.
	r.stub.SetConsole(func(region, id string) (string, bool) {
		text, ok := guests.Console(region, id)
		return text + "step 1: logging in with " + secret + "\n", ok
	})

	img, cleanup, err := r.b.BuildDeferCleanup(ctxTimeout(t, 2*time.Minute), in)
	if err != nil {
		t.Fatal(err)
	}
	key := stagingKey(in.Tags, in.Token)

	// The user data is the small bootstrap: a URL and a digest.
	runs := r.stub.Requests("ec2", "RunInstances")
	if len(runs) != 1 {
		t.Fatalf("%d RunInstances", len(runs))
	}
	ud, _ := base64.StdEncoding.DecodeString(runs[0].Form.Get("UserData"))
	if len(ud) > 4<<10 || bytes.Contains(ud, []byte(secret)) || !bytes.Contains(ud, []byte("X-Amz-Signature=")) || !bytes.Contains(ud, []byte("/"+bucket+"/"+key)) {
		t.Errorf("user data (%d bytes) is not a small bootstrap with a presigned URL of %s and no secret:\n%s", len(ud), key, ud)
	}
	bundles := guests.Bundles()
	if len(bundles) != 1 {
		t.Fatalf("guest played %d instances", len(bundles))
	}
	for _, b := range bundles {
		if b.Err != nil || b.URL == "" || b.Size < 1<<20 {
			t.Fatalf("guest: fetched %d bytes from %q: %v", b.Size, b.URL, b.Err)
		}
		if len(b.Files["steps/3/src"]) != 1<<20 || len(b.Files["steps/4/src/part-t.conf"]) == 0 ||
			b.Files["steps/5/playbook/roles/base/tasks/main.yml"] == nil || b.Files["steps/5/playbook/site.yml"] == nil {
			t.Error("the bundle lacks the recipe's files, tree or playbook with its role")
		}
		for _, f := range []string{"vars/vars.env", "vars/ansible-5.json"} {
			if !bytes.Contains(b.Files[f], []byte(secret)) || b.Modes[f] != 0o600 {
				t.Errorf("%s: mode %o, holds the secret %v; want 0600 and the value", f, b.Modes[f], bytes.Contains(b.Files[f], []byte(secret)))
			}
		}
		if !bytes.Contains(b.Files["vars/ansible-5.json"], []byte(`"greeting":"hi"`)) {
			t.Errorf("extra vars %s", b.Files["vars/ansible-5.json"])
		}
	}

	// Until the temporary resources go, the bundle is an asset of the run,
	// tagged like the others.
	tags, err := r.s3("us-east-1").GetObjectTagging(t.Context(), &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	got := tagSetMap(tags.TagSet)
	if !cloud.Match(got, map[string]string{cloud.TagManaged: "true", cloud.TagAssetID: in.Tags[cloud.TagAssetID], cloud.TagToken: in.Token, "cost-center": "images"}) {
		t.Errorf("object tags %v", got)
	}
	assets, err := r.b.ListAssets(t.Context(), "us-east-1", cloud.Filter{Tags: map[string]string{cloud.TagAssetID: in.Tags[cloud.TagAssetID]}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range assets {
		found = found || (a.Kind == cloud.KindObject && a.ID == "s3://"+bucket+"/"+key)
	}
	if !found {
		t.Errorf("assets %+v lack the staged bundle", assets)
	}
	if err := cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.s3("us-east-1").HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); !errors.Is(classify(err), cloud.ErrNotFound) {
		t.Errorf("the staged bundle is still there after the build: %v", err)
	}
	assertBuilt(t, r, in, img)
	log, err := os.ReadFile(filepath.Join(in.StateDir, "logs", "aws-build-"+in.Token+".log"))
	if err != nil || bytes.Contains(log, []byte(secret)) || !bytes.Contains(log, []byte("logging in with [REDACTED]")) {
		t.Errorf("kept build console (%v) is not masked:\n%s", err, log)
	}
}

// A step that fails on the guest fails the build with the guest's reason;
// the staged bundle goes with the temporary resources.
func TestBuildStagedGuestFails(t *testing.T) {
	const bucket = "kiln-staging-test"
	r := newRig(t, withConfig(func(c *config.AWSBackend) { c.Bucket = bucket }))
	makeBucket(t, r, "us-east-1", bucket)
	guests := awstest.SimulateGuests(t, motoServer.URL, "us-east-1")
	r.stub.SetConsole(guests.Console)
	guests.FailWith(func(phase, id string) string { return "step 1 exited with status 3" })
	base := seedImage(t, r.ec2("us-east-1"), "debian-12-base", nil)
	in := buildInput(t, config.Base{AMI: *base.ImageId})
	_, err := r.b.Build(ctxTimeout(t, 2*time.Minute), in)
	if err == nil || !strings.Contains(err.Error(), "provisioning failed") || !strings.Contains(err.Error(), "step 1 exited with status 3") {
		t.Fatalf("error %v, want the guest's FAIL", err)
	}
	out, err := r.s3("us-east-1").ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil || len(out.Contents) != 0 {
		t.Errorf("objects left in the bucket: %v %v", out, err)
	}
}

func TestObjectTags(t *testing.T) {
	tags := map[string]string{
		cloud.TagManaged: "true", cloud.TagProject: "p", cloud.TagAssetID: "a", cloud.TagUseCase: "u", cloud.TagArch: "x86_64",
		cloud.TagVersion: "1", cloud.TagPhase: "build", cloud.TagToken: "t", cloud.TagDeployment: "d", "cost": "c", "kiln:extra": "e", "kiln:more": "m",
	}
	got := objectTags(tags)
	if len(got) != maxObjectTags {
		t.Fatalf("%d tags: %v", len(got), got)
	}
	for _, k := range []string{cloud.TagManaged, cloud.TagProject, cloud.TagAssetID, cloud.TagToken, cloud.TagPhase, cloud.TagUseCase, cloud.TagDeployment, "cost"} {
		if got[k] != tags[k] {
			t.Errorf("tag %s dropped: %v", k, got)
		}
	}
	small := map[string]string{"a": "1"}
	if got := objectTags(small); len(got) != 1 {
		t.Errorf("%v", got)
	}
}
