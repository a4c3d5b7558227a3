// Package awsres is teardown's reach into an aws account beyond the
// backend's inventory: it finds, empties and deletes by tag the buckets,
// container repositories, log groups, secrets, user pools and roles a
// deployment makes (teardown.Leftovers), answers for the account's tag
// index with every entry confirmed by its own service (teardown.Index).
// Stacks are not its business: they are units, destroyed through the
// stack unit kind (package awsunit), which lists their resources.
//
// Listing follows what each service offers: the Resource Groups Tagging
// API for buckets, log groups and secrets; per-service listers for what
// the tagging API does not return (ECR repositories, Cognito user pools,
// IAM roles), each resource's tags read with its own call. Buckets are
// emptied page by page from the start (list the first page of versions
// and delete markers, delete them, list again) until a listing is empty,
// which is also the check that it is: deleting while paginating with
// markers misses objects on some endpoints (moto), and listing from the
// start after each delete is as cheap.
package awsres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/kiln-images/kiln/internal/cloud"
	kilnaws "github.com/kiln-images/kiln/internal/cloud/aws"
	"github.com/kiln-images/kiln/internal/teardown"
)

// Account is one aws account, in any region.
type Account struct {
	base aws.Config
	log  *slog.Logger

	mu sync.Mutex
	by map[string]*clients
}

var (
	_ teardown.Leftovers = (*Account)(nil)
	_ teardown.Index     = (*Account)(nil)
)

// New returns the account cfg reaches (the backend's SDK config).
func New(cfg aws.Config, log *slog.Logger) *Account {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Account{base: cfg, log: log, by: map[string]*clients{}}
}

// clients are one region's.
type clients struct {
	region  string
	logger  *slog.Logger
	s3      *s3.Client
	ecr     *ecr.Client
	logs    *cloudwatchlogs.Client
	cognito *cognitoidentityprovider.Client
	iam     *iam.Client
	sm      *secretsmanager.Client
	ssm     *ssm.Client
	ec2     *ec2.Client
	cfn     *cloudformation.Client
	tag     *resourcegroupstaggingapi.Client
}

func (a *Account) region(region string) *clients {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.by[region]; ok {
		return c
	}
	cfg := a.base.Copy()
	cfg.Region = region
	c := &clients{
		region: region, logger: a.log,
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			// Custom endpoints (moto, MinIO) serve buckets by path.
			if o.BaseEndpoint != nil {
				o.UsePathStyle = true
			}
		}),
		ecr: ecr.NewFromConfig(cfg), logs: cloudwatchlogs.NewFromConfig(cfg),
		cognito: cognitoidentityprovider.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg),
		sm: secretsmanager.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg),
		cfn: cloudformation.NewFromConfig(cfg), tag: resourcegroupstaggingapi.NewFromConfig(cfg),
	}
	a.by[region] = c
	return c
}

// classify marks an SDK error with kiln's error class, including the codes
// of the services the backend does not use.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchEntity", "NoSuchBucket", "RepositoryNotFoundException", "ImageNotFoundException":
			return cloud.Mark(err, cloud.ErrNotFound)
		case "RepositoryNotEmptyException", "DeleteConflict", "BucketNotEmpty":
			return cloud.Mark(err, cloud.ErrNotYet)
		}
	}
	return kilnaws.Classify(err)
}

// notFound reports whether err says the resource is not there.
func notFound(err error) bool { return errors.Is(classify(err), cloud.ErrNotFound) }

func wrap(what, id string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w", what, id, classify(err))
}

// mapTags turns a list of key/value pairs into a map.
func mapTags[T any](list []T, kv func(T) (*string, *string)) map[string]string {
	out := map[string]string{}
	for _, t := range list {
		k, v := kv(t)
		out[aws.ToString(k)] = aws.ToString(v)
	}
	return out
}

func (c *clients) log(ctx context.Context, msg string, args ...any) {
	c.logger.InfoContext(ctx, msg, append(args, "region", c.region)...)
}
