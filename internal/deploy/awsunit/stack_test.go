package awsunit

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/unittest"
)

// appTemplate is a deployment stack: an instance of the image, storage
// CloudFormation does not tag in moto, a secret the template masks.
const appTemplate = `AWSTemplateFormatVersion: "2010-09-09"
Description: kiln test app
Parameters:
  ImageId: {Type: String}
  Setting: {Type: String, Default: one}
  Token: {Type: String, NoEcho: true}
Resources:
  Web:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: !Ref ImageId
      InstanceType: t3.micro
  Bucket:
    Type: AWS::S3::Bucket
  Logs:
    Type: AWS::Logs::LogGroup
    Properties:
      RetentionInDays: 7
  Config:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/setting"
      Type: String
      Value: !Ref Setting
  Repo:
    Type: AWS::ECR::Repository
    Properties:
      RepositoryName: !Sub "${AWS::StackName}-repo"
Outputs:
  URL:
    Value: !Join ["", ["http://", !GetAtt Web.PublicIp, ":8080"]]
  BucketName:
    Value: !Ref Bucket
`

func appParams(setting string) map[string]string {
	return map[string]string{"ImageId": "{image_id}", "Setting": setting, "Token": "{inputs.token}"}
}

var secretInputs = map[string]deploy.Value{"token": {Text: "s3cr3t-value-9f2c", Secret: true}}

// stackObserve reads the unit's stack and its instance straight from moto.
func (w *world) stackObserve(t *testing.T, u deploy.Unit) (exists, running bool) {
	t.Helper()
	name, _ := physicalName(u)
	if w.stack(t, name) == nil {
		return false, false
	}
	res, err := w.cfn().DescribeStackResources(t.Context(), &cloudformation.DescribeStackResourcesInput{StackName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	running = false
	for _, r := range res.StackResources {
		if aws.ToString(r.ResourceType) != typeInstance {
			continue
		}
		out, err := w.ec2().DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(r.PhysicalResourceId)}})
		if err != nil {
			t.Fatal(err)
		}
		running = out.Reservations[0].Instances[0].State.Name == ec2types.InstanceStateNameRunning
	}
	return true, running
}

func TestStackConformance(t *testing.T) {
	w := newWorld(t)
	tmpl := w.write(t, "app.yaml", appTemplate)
	unittest.Run(t, unittest.Harness{
		Kind: NewStack(w.o),
		Unit: func(t *testing.T, dep string, variant int) deploy.Unit {
			// Variant 1 changes the setting of an SSM parameter: an update
			// moto carries out (it cannot update an instance or a log
			// group).
			return w.unit(dep, "app", tmpl, appParams([]string{"one", "two"}[variant]), secretInputs)
		},
		Observe: w.stackObserve,
	})
}
