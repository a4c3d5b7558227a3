package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"go.yaml.in/yaml/v3"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Logical ids in the build stack's template.
const (
	stackKeyPair  = "KeyPair"
	stackGroup    = "SecurityGroup"
	stackInstance = "Instance"
)

type cfnTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func cfnTags(m map[string]string) []cfnTag {
	out := make([]cfnTag, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, cfnTag{k, m[k]})
	}
	return out
}

// stackTemplate is the CloudFormation template (JSON) of a build: key pair,
// security group without inbound rules, and the instance using both, each
// tagged; deleting the stack removes all three.
func stackTemplate(spec instanceSpec, name, vpc string) ([]byte, error) {
	inst := map[string]any{
		"ImageId":                           spec.ImageID,
		"InstanceType":                      spec.InstanceType,
		"KeyName":                           map[string]any{"Ref": stackKeyPair},
		"SecurityGroupIds":                  []any{map[string]any{"Fn::GetAtt": []string{stackGroup, "GroupId"}}},
		"UserData":                          spec.UserData,
		"InstanceInitiatedShutdownBehavior": "stop",
		"PropagateTagsToVolumeOnCreation":   true,
		"Tags":                              cfnTags(spec.Tags),
	}
	if spec.SubnetID != "" {
		inst["SubnetId"] = spec.SubnetID
	}
	if len(spec.Devices) > 0 {
		d := spec.Devices[0]
		inst["BlockDeviceMappings"] = []any{map[string]any{
			"DeviceName": aws.ToString(d.DeviceName),
			"Ebs": map[string]any{
				"VolumeSize":          aws.ToInt32(d.Ebs.VolumeSize),
				"DeleteOnTermination": true,
			},
		}}
	}
	t := map[string]any{
		"AWSTemplateFormatVersion": "2010-09-09",
		"Description":              "kiln build " + name + ": temporary instance, key pair and security group",
		"Resources": map[string]any{
			stackKeyPair: map[string]any{
				"Type": "AWS::EC2::KeyPair",
				"Properties": map[string]any{
					"KeyName": name,
					"KeyType": "ed25519",
					"Tags":    cfnTags(spec.Tags),
				},
			},
			stackGroup: map[string]any{
				"Type": "AWS::EC2::SecurityGroup",
				"Properties": map[string]any{
					"GroupName":        name,
					"GroupDescription": "kiln build instance: no inbound access",
					"VpcId":            vpc,
					"Tags":             cfnTags(spec.Tags),
				},
			},
			stackInstance: map[string]any{
				"Type":       "AWS::EC2::Instance",
				"Properties": inst,
			},
		},
		"Outputs": map[string]any{
			"InstanceId": map[string]any{"Value": map[string]any{"Ref": stackInstance}},
		},
	}
	return json.MarshalIndent(t, "", "  ")
}

// ensureStack creates the build stack unless it exists, waits for
// CREATE_COMPLETE and returns the instance id. A stack that failed to
// create is deleted and made again.
func (b *Backend) ensureStack(ctx context.Context, c *regional, name string, template []byte, tags map[string]string, token string) (string, error) {
	st, ok, err := describeStack(ctx, c, name)
	if err != nil {
		return "", err
	}
	if ok && failedCreate(st.StackStatus) {
		b.log.Warn("build stack failed before; recreating", "region", c.region, "stack", name, "status", st.StackStatus, "reason", aws.ToString(st.StackStatusReason))
		if err := b.deleteStack(ctx, c, name); err != nil {
			return "", err
		}
		ok = false
		token = cloud.Token(token, "recreate")
	}
	if !ok {
		var cfnT []cfntypes.Tag
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			cfnT = append(cfnT, cfntypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
		}
		_, err := c.cfn.CreateStack(ctx, &cloudformation.CreateStackInput{
			StackName:          aws.String(name),
			TemplateBody:       aws.String(string(template)),
			Tags:               cfnT,
			ClientRequestToken: aws.String(token),
			TimeoutInMinutes:   aws.Int32(30),
		})
		if err != nil && !isCode(err, "AlreadyExistsException") {
			return "", fmt.Errorf("create stack %s in %s: %w", name, c.region, classify(err))
		}
		b.log.Info("build stack created", "region", c.region, "stack", name)
	}
	err = b.poll(ctx, fmt.Sprintf("stack %s in %s to reach CREATE_COMPLETE", name, c.region), 30*time.Minute, func(ctx context.Context) (bool, error) {
		st, ok, err := describeStack(ctx, c, name)
		switch {
		case err != nil:
			return false, err
		case !ok:
			return false, cloud.Mark(fmt.Errorf("stack %s disappeared from %s", name, c.region), cloud.ErrNotFound)
		case st.StackStatus == cfntypes.StackStatusCreateComplete:
			return true, nil
		case failedCreate(st.StackStatus):
			return false, fmt.Errorf("stack %s in %s: %s: %s", name, c.region, st.StackStatus, aws.ToString(st.StackStatusReason))
		}
		return false, nil
	})
	if err != nil {
		return "", err
	}
	res, err := stackResources(ctx, c, name)
	if err != nil {
		return "", err
	}
	for _, r := range res {
		if aws.ToString(r.LogicalResourceId) == stackInstance {
			return aws.ToString(r.PhysicalResourceId), nil
		}
	}
	return "", fmt.Errorf("stack %s in %s has no %s resource", name, c.region, stackInstance)
}

func failedCreate(s cfntypes.StackStatus) bool {
	switch s {
	case cfntypes.StackStatusCreateFailed, cfntypes.StackStatusRollbackComplete,
		cfntypes.StackStatusRollbackFailed, cfntypes.StackStatusRollbackInProgress:
		return true
	}
	return false
}

// describeStack returns the live stack called name; a deleted one counts
// as absent.
func describeStack(ctx context.Context, c *regional, name string) (cfntypes.Stack, bool, error) {
	out, err := c.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err = classify(err); errors.Is(err, cloud.ErrNotFound) {
		return cfntypes.Stack{}, false, nil
	} else if err != nil {
		return cfntypes.Stack{}, false, fmt.Errorf("describe stack %s in %s: %w", name, c.region, err)
	}
	for _, s := range out.Stacks {
		if s.StackStatus != cfntypes.StackStatusDeleteComplete {
			return s, true, nil
		}
	}
	return cfntypes.Stack{}, false, nil
}

func stackResources(ctx context.Context, c *regional, name string) ([]cfntypes.StackResource, error) {
	out, err := c.cfn.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("resources of stack %s in %s: %w", name, c.region, classify(err))
	}
	// Keep only real resources (moto lists an entry for the stack itself).
	var res []cfntypes.StackResource
	for _, r := range out.StackResources {
		if aws.ToString(r.LogicalResourceId) != "" {
			res = append(res, r)
		}
	}
	return res, nil
}

// deleteStack empties the buckets the stack owns (CloudFormation cannot
// delete a bucket with objects), deletes it and waits for DELETE_COMPLETE.
// An absent stack is done.
func (b *Backend) deleteStack(ctx context.Context, c *regional, name string) error {
	st, ok, err := describeStack(ctx, c, name)
	if err != nil || !ok {
		return err
	}
	id := aws.ToString(st.StackId)
	res, err := stackResources(ctx, c, name)
	if err != nil {
		return err
	}
	for _, r := range res {
		if aws.ToString(r.ResourceType) == "AWS::S3::Bucket" && aws.ToString(r.PhysicalResourceId) != "" {
			if err := emptyBucket(ctx, c, aws.ToString(r.PhysicalResourceId)); err != nil {
				return fmt.Errorf("delete stack %s in %s: %w", name, c.region, err)
			}
		}
	}
	if _, err := c.cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(id)}); err != nil {
		return fmt.Errorf("delete stack %s in %s: %w", name, c.region, classify(err))
	}
	// Describe by id: by name a deleted stack is simply absent, by id it
	// shows DELETE_COMPLETE or DELETE_FAILED with the reason.
	return b.poll(ctx, fmt.Sprintf("stack %s in %s to reach DELETE_COMPLETE", name, c.region), 30*time.Minute, func(ctx context.Context) (bool, error) {
		out, err := c.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(id)})
		if err = classify(err); errors.Is(err, cloud.ErrNotFound) {
			return true, nil
		} else if err != nil {
			return false, err
		}
		if len(out.Stacks) == 0 {
			return true, nil
		}
		switch s := out.Stacks[0]; s.StackStatus {
		case cfntypes.StackStatusDeleteComplete:
			return true, nil
		case cfntypes.StackStatusDeleteFailed:
			return false, cloud.Mark(fmt.Errorf("delete stack %s in %s: DELETE_FAILED: %s", name, c.region, aws.ToString(s.StackStatusReason)), cloud.ErrNotYet)
		}
		return false, nil
	})
}

// emptyBucket deletes every object version in a bucket.
func emptyBucket(ctx context.Context, c *regional, bucket string) error {
	p := s3.NewListObjectVersionsPaginator(c.s3, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err = classify(err); errors.Is(err, cloud.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("list objects in bucket %s: %w", bucket, err)
		}
		var ids []s3types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if len(ids) == 0 {
			continue
		}
		out, err := c.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return fmt.Errorf("empty bucket %s: %w", bucket, classify(err))
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("empty bucket %s: %s: %s %s", bucket, aws.ToString(e.Key), aws.ToString(e.Code), strings.TrimSpace(aws.ToString(e.Message)))
		}
	}
	return nil
}

// retainedResources reads the stack's template and returns the logical ids
// of resources CloudFormation keeps on delete (DeletionPolicy Retain or
// RetainExceptOnCreate). The YAML decoder reads JSON templates too.
func retainedResources(ctx context.Context, c *regional, name string) (map[string]bool, error) {
	out, err := c.cfn.GetTemplate(ctx, &cloudformation.GetTemplateInput{StackName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("template of stack %s in %s: %w", name, c.region, classify(err))
	}
	var t struct {
		Resources map[string]struct {
			DeletionPolicy string `yaml:"DeletionPolicy"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal([]byte(aws.ToString(out.TemplateBody)), &t); err != nil {
		return nil, fmt.Errorf("template of stack %s in %s: %w", name, c.region, err)
	}
	keep := map[string]bool{}
	for id, r := range t.Resources {
		if strings.HasPrefix(r.DeletionPolicy, "Retain") {
			keep[id] = true
		}
	}
	return keep, nil
}
