package awsunit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/kiln-images/kiln/internal/cloud"
	awsb "github.com/kiln-images/kiln/internal/cloud/aws"
	"github.com/kiln-images/kiln/internal/deploy"
)

// Options configure both kinds.
type Options struct {
	// Config is the AWS SDK configuration: credentials, retries and
	// endpoint overrides, as the aws backend loaded them (SDKConfig).
	Config aws.Config
	// Poll is the pause between the reads of a wait (a change set, a
	// stack operation, instances starting); default 5s.
	Poll time.Duration
	// Timeout bounds each wait; default 60 minutes (a stack can take
	// that long).
	Timeout time.Duration
	// Hook, when set, is called at each step boundary inside an Apply or
	// Destroy (a change set made, executed, ...): the crash harness's
	// failpoints.
	Hook func(event string)
	Log  *slog.Logger
}

func (o Options) poll() time.Duration {
	if o.Poll > 0 {
		return o.Poll
	}
	return 5 * time.Second
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 60 * time.Minute
}

func (o Options) log() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (o Options) hook(format string, args ...any) {
	if o.Hook != nil {
		o.Hook(fmt.Sprintf(format, args...))
	}
}

// wait polls cond until it is done, fails for good, or the timeout passes.
func (o Options) wait(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	return cloud.Poll(ctx, what, o.poll(), o.timeout(), cond)
}

// The narrow client interfaces: the calls the kinds make.

type cfnAPI interface {
	DescribeStacks(context.Context, *cloudformation.DescribeStacksInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	CreateChangeSet(context.Context, *cloudformation.CreateChangeSetInput, ...func(*cloudformation.Options)) (*cloudformation.CreateChangeSetOutput, error)
	DescribeChangeSet(context.Context, *cloudformation.DescribeChangeSetInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeChangeSetOutput, error)
	ExecuteChangeSet(context.Context, *cloudformation.ExecuteChangeSetInput, ...func(*cloudformation.Options)) (*cloudformation.ExecuteChangeSetOutput, error)
	DeleteChangeSet(context.Context, *cloudformation.DeleteChangeSetInput, ...func(*cloudformation.Options)) (*cloudformation.DeleteChangeSetOutput, error)
	ListChangeSets(context.Context, *cloudformation.ListChangeSetsInput, ...func(*cloudformation.Options)) (*cloudformation.ListChangeSetsOutput, error)
	DeleteStack(context.Context, *cloudformation.DeleteStackInput, ...func(*cloudformation.Options)) (*cloudformation.DeleteStackOutput, error)
	ListStackResources(context.Context, *cloudformation.ListStackResourcesInput, ...func(*cloudformation.Options)) (*cloudformation.ListStackResourcesOutput, error)
	DescribeStackEvents(context.Context, *cloudformation.DescribeStackEventsInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStackEventsOutput, error)
	GetTemplate(context.Context, *cloudformation.GetTemplateInput, ...func(*cloudformation.Options)) (*cloudformation.GetTemplateOutput, error)
	UpdateTerminationProtection(context.Context, *cloudformation.UpdateTerminationProtectionInput, ...func(*cloudformation.Options)) (*cloudformation.UpdateTerminationProtectionOutput, error)
}

type ec2API interface {
	ec2.DescribeInstancesAPIClient
	ec2.DescribeVolumesAPIClient
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	StartInstances(context.Context, *ec2.StartInstancesInput, ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error)
	StopInstances(context.Context, *ec2.StopInstancesInput, ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error)
	TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DescribeTags(context.Context, *ec2.DescribeTagsInput, ...func(*ec2.Options)) (*ec2.DescribeTagsOutput, error)
}

type s3API interface {
	GetBucketTagging(context.Context, *s3.GetBucketTaggingInput, ...func(*s3.Options)) (*s3.GetBucketTaggingOutput, error)
	PutBucketTagging(context.Context, *s3.PutBucketTaggingInput, ...func(*s3.Options)) (*s3.PutBucketTaggingOutput, error)
}

type logsAPI interface {
	DescribeLogGroups(context.Context, *cloudwatchlogs.DescribeLogGroupsInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error)
	ListTagsForResource(context.Context, *cloudwatchlogs.ListTagsForResourceInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.ListTagsForResourceOutput, error)
	TagResource(context.Context, *cloudwatchlogs.TagResourceInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.TagResourceOutput, error)
}

type ssmAPI interface {
	ListTagsForResource(context.Context, *ssm.ListTagsForResourceInput, ...func(*ssm.Options)) (*ssm.ListTagsForResourceOutput, error)
	AddTagsToResource(context.Context, *ssm.AddTagsToResourceInput, ...func(*ssm.Options)) (*ssm.AddTagsToResourceOutput, error)
}

type ecrAPI interface {
	DescribeRepositories(context.Context, *ecr.DescribeRepositoriesInput, ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	ListTagsForResource(context.Context, *ecr.ListTagsForResourceInput, ...func(*ecr.Options)) (*ecr.ListTagsForResourceOutput, error)
	TagResource(context.Context, *ecr.TagResourceInput, ...func(*ecr.Options)) (*ecr.TagResourceOutput, error)
}

// clients are one region's.
type clients struct {
	region string
	cfn    cfnAPI
	ec2    ec2API
	s3     s3API
	logs   logsAPI
	ecr    ecrAPI
	ssm    ssmAPI
}

// clientCache makes each region's clients on first use; SDK clients are
// safe for concurrent use.
type clientCache struct {
	cfg aws.Config
	mu  sync.Mutex
	by  map[string]*clients
}

func newClientCache(cfg aws.Config) *clientCache {
	return &clientCache{cfg: cfg, by: map[string]*clients{}}
}

func (cc *clientCache) region(region string) (*clients, error) {
	if region == "" {
		return nil, cloud.Mark(errors.New("no region"), cloud.ErrInvalid)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if c, ok := cc.by[region]; ok {
		return c, nil
	}
	cfg := cc.cfg.Copy()
	cfg.Region = region
	c := &clients{
		region: region,
		cfn:    cloudformation.NewFromConfig(cfg),
		ec2:    ec2.NewFromConfig(cfg),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			// Custom endpoints (moto, MinIO) serve buckets by path.
			if o.BaseEndpoint != nil {
				o.UsePathStyle = true
			}
		}),
		logs: cloudwatchlogs.NewFromConfig(cfg),
		ecr:  ecr.NewFromConfig(cfg),
		ssm:  ssm.NewFromConfig(cfg),
	}
	cc.by[region] = c
	return c, nil
}

// classify gives an SDK error kiln's error class (the aws backend's
// classification).
func classify(err error) error { return awsb.Classify(err) }

// unit returns the name of what unit u makes (physicalName) and the
// clients of its region.
func (cc *clientCache) unit(u deploy.Unit) (string, *clients, error) {
	name, err := physicalName(u)
	if err != nil {
		return "", nil, err
	}
	c, err := cc.region(u.Region)
	if err != nil {
		return "", nil, err
	}
	return name, c, nil
}

// physicalName is the name of what a unit makes: kiln-<project>-
// <deployment>-<unit>. The project comes from u.Project, or from its tags
// for a unit known only by its deployment, name and tags (Destroy).
func physicalName(u deploy.Unit) (string, error) {
	project := u.Project
	if project == "" {
		project = u.Tags[cloud.TagProject]
	}
	if project == "" || u.Deployment == "" || u.Name == "" {
		return "", cloud.Mark(fmt.Errorf("unit %q of deployment %q: project, deployment and unit name are needed to name its resources", u.Name, u.Deployment), cloud.ErrInvalid)
	}
	return strings.Join([]string{"kiln", project, u.Deployment, u.Name}, "-"), nil
}

// scope is the tag filter of one unit's resources.
func scope(u deploy.Unit) map[string]string {
	project := u.Project
	if project == "" {
		project = u.Tags[cloud.TagProject]
	}
	return map[string]string{
		cloud.TagManaged:    "true",
		cloud.TagProject:    project,
		cloud.TagDeployment: u.Deployment,
		cloud.TagUnit:       u.Name,
	}
}

// missingTags returns the pairs of want that have does not hold.
func missingTags(have, want map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			out[k] = v
		}
	}
	return out
}
