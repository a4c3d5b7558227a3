package aws

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
)

const paramName = "/kiln/latest/ci-runner"

func paramValue(t *testing.T, r *rig, region string) (string, bool) {
	t.Helper()
	out, err := r.ssm(region).GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String(paramName)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Parameter.Value), true
}

func TestPutParametersAllOrNone(t *testing.T) {
	r := newRig(t)
	img := map[string]string{}
	for _, region := range testRegions {
		img[region] = *seedImage(t, r.ec2(region), "release", nil).ImageId
	}
	old := *seedImage(t, r.ec2("us-east-1"), "previous", nil).ImageId
	if _, err := r.ssm("us-east-1").PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(paramName),
		Value: aws.String(old), Type: ssmtypes.ParameterTypeString, DataType: aws.String("aws:ec2:image")}); err != nil {
		t.Fatal(err)
	}
	values := func() []cloud.Parameter {
		var vs []cloud.Parameter
		for _, region := range testRegions { // us-east-1, us-west-2, eu-west-1: the last one fails
			vs = append(vs, cloud.Parameter{Region: region, Name: paramName, ImageID: img[region], Tags: runTags(cloud.TagPhase, cloud.PhasePublish)})
		}
		return vs
	}

	r.faults.Fail(awstest.Rule{Service: "ssm", Region: "eu-west-1", Action: "PutParameter", Status: 400, Code: "AccessDeniedException", Times: 1})
	err := r.b.PutParameters(t.Context(), values())
	if err == nil || !strings.Contains(err.Error(), "eu-west-1") || !errors.Is(err, cloud.ErrAccessDenied) {
		t.Fatalf("PutParameters with eu-west-1 failing: %v, want an access-denied error naming eu-west-1", err)
	}
	if v, ok := paramValue(t, r, "us-east-1"); !ok || v != old {
		t.Errorf("us-east-1 holds %q (exists %v), want the previous value %s restored", v, ok, old)
	}
	if v, ok := paramValue(t, r, "us-west-2"); ok {
		t.Errorf("us-west-2 holds %q, want the new parameter deleted again", v)
	}
	if v, ok := paramValue(t, r, "eu-west-1"); ok {
		t.Errorf("eu-west-1 holds %q after its write failed", v)
	}

	// Without the failure, every region gets its image and the tags.
	if err := r.b.PutParameters(t.Context(), values()); err != nil {
		t.Fatal(err)
	}
	for _, region := range testRegions {
		if v, _ := paramValue(t, r, region); v != img[region] {
			t.Errorf("%s holds %q, want %s", region, v, img[region])
		}
		tags, err := r.ssm(region).ListTagsForResource(t.Context(), &ssm.ListTagsForResourceInput{
			ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(paramName)})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, tg := range tags.TagList {
			got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		if miss := missingTags(got, runTags(cloud.TagPhase, cloud.PhasePublish)); len(miss) > 0 {
			t.Errorf("%s: parameter lacks tags %v", region, miss)
		}
	}
}

func TestPutParametersBadInput(t *testing.T) {
	r := newRig(t)
	err := r.b.PutParameters(t.Context(), []cloud.Parameter{{Region: "us-east-1", Name: paramName}})
	if !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), paramName) {
		t.Errorf("PutParameters without an image id: %v", err)
	}
}
