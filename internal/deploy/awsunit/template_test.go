package awsunit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
)

func TestSpecOf(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app.yaml", appTemplate)
	write("app.json", `{"Parameters": {"ImageId": {"Type": "String"}, "Token": {"Type": "String", "NoEcho": "true"}},
		"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"}}}`)
	write("empty.yaml", "Parameters: {}\n")
	write("broken.yaml", "Resources: [\n")
	write("big.yaml", "Resources: {B: {Type: AWS::S3::Bucket}}\n#"+strings.Repeat("x", maxTemplateBody))
	secret := "hunter2-7f1d"
	inputs := map[string]deploy.Value{"token": {Text: secret, Secret: true}, "name": {Text: "web"}}
	for _, tc := range []struct {
		name, file string
		params     map[string]string
		want       string // "" for success, else part of the error
	}{
		{"yaml with short-form tags", "app.yaml", appParams("one"), ""},
		{"json", "app.json", map[string]string{"ImageId": "{image_id}", "Token": "{inputs.token}"}, ""},
		{"missing file", "nope.yaml", nil, "stack.template"},
		{"no resources", "empty.yaml", nil, "no Resources"},
		{"not yaml", "broken.yaml", nil, "not a CloudFormation template"},
		{"too large", "big.yaml", nil, "CloudFormation takes at most 51200"},
		{"undeclared parameter", "app.yaml", map[string]string{"ImageId": "x", "Token": "y", "Colour": "red"}, "stack.parameters.Colour: the template declares no parameter Colour (it declares: ImageId, Setting, Token)"},
		{"required parameter missing", "app.yaml", map[string]string{"Token": "y"}, "parameter ImageId has no Default"},
		{"unknown placeholder", "app.yaml", map[string]string{"ImageId": "{nope}", "Token": "y"}, "stack.parameters.ImageId: {nope}"},
		{"secret into a plain parameter", "app.yaml", map[string]string{"ImageId": "{inputs.token}", "Token": "y"}, "stack.parameters.ImageId gets a secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := deploy.Unit{Project: "p", Deployment: "dev", Name: "app", Region: region, Dir: dir, Token: "tok",
				Config: &config.Unit{Stack: &config.StackUnit{Template: tc.file, Parameters: tc.params}},
				Image:  deploy.Image{ID: "ami-0123456789abcdef0"}, Inputs: inputs, Tags: map[string]string{"a": "b"}}
			sp, err := specOf(u)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if sp.stack != "kiln-p-dev-app" || !strings.HasPrefix(sp.changeSet, "kiln-") || sp.tags[tagToken] != "tok" || sp.tags["a"] != "b" || len(sp.tags[tagTemplate]) != 16 {
					t.Errorf("spec %+v", sp)
				}
				if !sp.noEcho["Token"] || sp.public["Token"] != "" || sp.public["ImageId"] != "ami-0123456789abcdef0" {
					t.Errorf("parameters shown %v, masked %v", sp.public, sp.noEcho)
				}
				return
			}
			if !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalid with %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.file) && tc.file != "nope.yaml" {
				t.Errorf("the error does not name the template: %v", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestTemplateRetained(t *testing.T) {
	tm, err := parseTemplate([]byte("Resources:\n  A: {Type: X, DeletionPolicy: Retain}\n  B: {Type: X, DeletionPolicy: RetainExceptOnCreate}\n  C: {Type: X, DeletionPolicy: Snapshot}\n  D: {Type: X}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"A": true, "B": true, "C": false, "D": false} {
		if got := tm.Resources[id].retained(); got != want {
			t.Errorf("%s retained = %v, want %v", id, got, want)
		}
	}
}

func TestTaggerFor(t *testing.T) {
	for _, tc := range []struct {
		typ, id string
		want    bool
	}{
		{"AWS::EC2::Instance", "i-0123456789abcdef0", true},
		{"AWS::EC2::SecurityGroup", "sg-01234567", true},
		{"AWS::EC2::LaunchTemplate", "lt-0123456789abcdef0", true},
		{"AWS::EC2::KeyPair", "my-key", false},
		{"AWS::S3::Bucket", "b", true},
		{"AWS::SQS::Queue", "https://sqs/q", false},
	} {
		if got := taggerFor(tc.typ, tc.id) != nil; got != tc.want {
			t.Errorf("taggerFor(%s, %s) = %v, want %v", tc.typ, tc.id, got, tc.want)
		}
	}
}
