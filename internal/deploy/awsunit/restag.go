package awsunit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// tagger reads and adds the tags of one resource type, by physical id.
type tagger interface {
	read(ctx context.Context, c *clients, id string) (map[string]string, error)
	add(ctx context.Context, c *clients, id string, tags map[string]string) error
}

// ec2ID matches EC2 resource ids (i-..., sg-..., vol-...), which CreateTags
// takes; other physical ids of EC2 types (a key pair's name) do not.
var ec2ID = regexp.MustCompile(`^[a-z]+(-[a-z]+)?-[0-9a-f]{8,17}$`)

// taggerFor returns the tagger of a resource type, nil for types kiln
// does not tag itself. These are the types whose tags CloudFormation
// passes on in AWS but moto does not (S3, ECR, CloudWatch Logs, SSM
// parameters, and EC2 resources made through change sets).
func taggerFor(typ, id string) tagger {
	switch {
	case typ == "AWS::S3::Bucket":
		return s3Tagger{}
	case typ == "AWS::Logs::LogGroup":
		return logsTagger{}
	case typ == "AWS::ECR::Repository":
		return ecrTagger{}
	case typ == "AWS::SSM::Parameter":
		return ssmTagger{}
	case strings.HasPrefix(typ, "AWS::EC2::") && ec2ID.MatchString(id):
		return ec2Tagger{}
	}
	return nil
}

// tagResources adds to the stack's resources the tags of want they do not
// carry, and reads them back.
func (k *Stack) tagResources(ctx context.Context, c *clients, stack string, res []cfntypes.StackResourceSummary, want map[string]string) error {
	n := 0
	for _, r := range res {
		typ, id := aws.ToString(r.ResourceType), aws.ToString(r.PhysicalResourceId)
		t := taggerFor(typ, id)
		if t == nil {
			continue
		}
		have, err := t.read(ctx, c, id)
		if err != nil {
			return fmt.Errorf("stack %s: tags of %s %s: %w", stack, typ, id, err)
		}
		miss := missingTags(have, want)
		if len(miss) == 0 {
			continue
		}
		if err := t.add(ctx, c, id, miss); err != nil {
			return fmt.Errorf("stack %s: tag %s %s: %w", stack, typ, id, err)
		}
		have, err = t.read(ctx, c, id)
		if err != nil {
			return fmt.Errorf("stack %s: tags of %s %s: %w", stack, typ, id, err)
		}
		if miss := missingTags(have, want); len(miss) > 0 {
			return fmt.Errorf("stack %s: %s %s does not carry %s after kiln tagged it", stack, typ, id, strings.Join(slices.Sorted(maps.Keys(miss)), ", "))
		}
		n++
	}
	if n > 0 {
		k.o.log().Info("tagged what CloudFormation did not", "stack", stack, "region", c.region, "resources", n)
		k.o.hook("stack %s tagged %d resources", stack, n)
	}
	return nil
}

// untagged counts the resources kiln tags that lack some of want.
func (k *Stack) untagged(ctx context.Context, c *clients, res []cfntypes.StackResourceSummary, want map[string]string) (int, error) {
	drift, err := k.tagDrift(ctx, c, res, want)
	return len(drift), err
}

// tagDrift names the resources kiln tags that lack some of want.
func (k *Stack) tagDrift(ctx context.Context, c *clients, res []cfntypes.StackResourceSummary, want map[string]string) ([]string, error) {
	var out []string
	for _, r := range res {
		typ, id := aws.ToString(r.ResourceType), aws.ToString(r.PhysicalResourceId)
		t := taggerFor(typ, id)
		if t == nil {
			continue
		}
		have, err := t.read(ctx, c, id)
		if errors.Is(err, cloud.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("tags of %s %s: %w", typ, id, err)
		}
		if miss := missingTags(have, want); len(miss) > 0 {
			out = append(out, fmt.Sprintf("%s %s (%s) lacks the tags %s", typ, id, aws.ToString(r.LogicalResourceId), strings.Join(slices.Sorted(maps.Keys(miss)), ", ")))
		}
	}
	return out, nil
}

type ec2Tagger struct{}

func (ec2Tagger) read(ctx context.Context, c *clients, id string) (map[string]string, error) {
	out := map[string]string{}
	p := ec2.NewDescribeTagsPaginator(c.ec2, &ec2.DescribeTagsInput{
		Filters: []ec2types.Filter{{Name: aws.String("resource-id"), Values: []string{id}}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		for _, t := range page.Tags {
			out[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return out, nil
}

func (ec2Tagger) add(ctx context.Context, c *clients, id string, tags map[string]string) error {
	var ts []ec2types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	_, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: ts})
	return classify(err)
}

type s3Tagger struct{}

func (s3Tagger) read(ctx context.Context, c *clients, bucket string) (map[string]string, error) {
	out, err := c.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(bucket)})
	if isCode(err, "NoSuchTagSet") {
		return map[string]string{}, nil
	} else if err != nil {
		return nil, classify(err)
	}
	m := map[string]string{}
	for _, t := range out.TagSet {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m, nil
}

// add merges: PutBucketTagging replaces a bucket's whole tag set.
func (t s3Tagger) add(ctx context.Context, c *clients, bucket string, tags map[string]string) error {
	have, err := t.read(ctx, c, bucket)
	if err != nil {
		return err
	}
	maps.Copy(have, tags)
	var set []s3types.Tag
	for _, k := range slices.Sorted(maps.Keys(have)) {
		set = append(set, s3types.Tag{Key: aws.String(k), Value: aws.String(have[k])})
	}
	_, err = c.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(bucket), Tagging: &s3types.Tagging{TagSet: set}})
	return classify(err)
}

type logsTagger struct{}

// arn is the log group's ARN, which the tagging calls take.
func (logsTagger) arn(ctx context.Context, c *clients, name string) (string, error) {
	out, err := c.logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(name)})
	if err != nil {
		return "", classify(err)
	}
	for _, g := range out.LogGroups {
		if aws.ToString(g.LogGroupName) != name {
			continue
		}
		if a := aws.ToString(g.LogGroupArn); a != "" {
			return a, nil
		}
		return strings.TrimSuffix(aws.ToString(g.Arn), ":*"), nil
	}
	return "", cloud.Mark(fmt.Errorf("log group %s does not exist", name), cloud.ErrNotFound)
}

func (t logsTagger) read(ctx context.Context, c *clients, name string) (map[string]string, error) {
	arn, err := t.arn(ctx, c, name)
	if err != nil {
		return nil, err
	}
	out, err := c.logs.ListTagsForResource(ctx, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		return nil, classify(err)
	}
	return maps.Clone(out.Tags), nil
}

func (t logsTagger) add(ctx context.Context, c *clients, name string, tags map[string]string) error {
	arn, err := t.arn(ctx, c, name)
	if err != nil {
		return err
	}
	_, err = c.logs.TagResource(ctx, &cloudwatchlogs.TagResourceInput{ResourceArn: aws.String(arn), Tags: tags})
	return classify(err)
}

type ecrTagger struct{}

func (ecrTagger) arn(ctx context.Context, c *clients, name string) (string, error) {
	out, err := c.ecr.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}})
	if err != nil {
		return "", classify(err)
	}
	if len(out.Repositories) == 0 {
		return "", cloud.Mark(fmt.Errorf("repository %s does not exist", name), cloud.ErrNotFound)
	}
	return aws.ToString(out.Repositories[0].RepositoryArn), nil
}

func (t ecrTagger) read(ctx context.Context, c *clients, name string) (map[string]string, error) {
	arn, err := t.arn(ctx, c, name)
	if err != nil {
		return nil, err
	}
	out, err := c.ecr.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		return nil, classify(err)
	}
	m := map[string]string{}
	for _, t := range out.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m, nil
}

func (t ecrTagger) add(ctx context.Context, c *clients, name string, tags map[string]string) error {
	arn, err := t.arn(ctx, c, name)
	if err != nil {
		return err
	}
	var ts []ecrtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, ecrtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	_, err = c.ecr.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: aws.String(arn), Tags: ts})
	return classify(err)
}

type ssmTagger struct{}

func (ssmTagger) read(ctx context.Context, c *clients, name string) (map[string]string, error) {
	out, err := c.ssm.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(name)})
	if err != nil {
		return nil, classify(err)
	}
	m := map[string]string{}
	for _, t := range out.TagList {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m, nil
}

func (ssmTagger) add(ctx context.Context, c *clients, name string, tags map[string]string) error {
	var ts []ssmtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	_, err := c.ssm.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(name), Tags: ts})
	return classify(err)
}
