package awsres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	cognito "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	tagtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/fanout"
	"github.com/kiln-images/kiln/internal/teardown"
)

// tagConcurrency bounds the calls that read one resource's tags at once.
const tagConcurrency = 8

// Find returns the buckets, log groups and secrets the tagging API lists
// for tags in region, and the repositories, user pools and roles whose own
// tags match (the tagging API does not return those everywhere), each
// confirmed to exist. Roles are global; they are listed with every region.
func (a *Account) Find(ctx context.Context, region string, tags map[string]string) ([]deploy.Resource, error) {
	c := a.region(region)
	mappings, err := c.tagged(ctx, tags, []string{"s3", "logs", "secretsmanager"})
	if err != nil {
		return nil, err
	}
	// Confirmed one by one, tagConcurrency at once: the tag index lists
	// what was deleted an hour ago.
	out, err := matching(ctx, mappings, func(ctx context.Context, m mapping) (*deploy.Resource, error) {
		typ, id, ok := parseARN(m.arn)
		if !ok {
			return nil, nil
		}
		exists, err := c.exists(ctx, typ, id)
		if err != nil || !exists {
			return nil, err
		}
		return &deploy.Resource{Type: typ, ID: id, Region: region, Tags: m.tags}, nil
	})
	if err != nil {
		return nil, err
	}
	// The services the tag index misses, each listed at the same time.
	listers := []func(context.Context, map[string]string) ([]deploy.Resource, error){c.repositories, c.userPools, c.roles}
	found := make([][]deploy.Resource, len(listers))
	errs := fanout.Range(ctx, len(listers), len(listers), func(ctx context.Context, i int) error {
		var err error
		found[i], err = listers[i](ctx, tags)
		return err
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, rs := range found {
		out = append(out, rs...)
	}
	return out, nil
}

// mapping is one entry of the tagging API.
type mapping struct {
	arn  string
	tags map[string]string
}

// tagged pages through GetResources for tags (100 a page, the most the
// API gives), limited to types when given.
func (c *clients) tagged(ctx context.Context, want map[string]string, types []string) ([]mapping, error) {
	var filters []tagtypes.TagFilter
	for _, k := range slices.Sorted(maps.Keys(want)) {
		f := tagtypes.TagFilter{Key: aws.String(k)}
		if v := want[k]; v != "" {
			f.Values = []string{v}
		}
		filters = append(filters, f)
	}
	p := resourcegroupstaggingapi.NewGetResourcesPaginator(c.tag, &resourcegroupstaggingapi.GetResourcesInput{
		TagFilters: filters, ResourceTypeFilters: types, ResourcesPerPage: aws.Int32(100),
	})
	var out []mapping
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("tagging API in %s: %w", c.region, classify(err))
		}
		for _, m := range page.ResourceTagMappingList {
			out = append(out, mapping{arn: aws.ToString(m.ResourceARN),
				tags: mapTags(m.Tags, func(t tagtypes.Tag) (*string, *string) { return t.Key, t.Value })})
		}
	}
	return out, nil
}

// parseARN maps an ARN to kiln's type and id: the names and ids the
// services' own calls take (and CloudFormation reports as physical ids).
func parseARN(arn string) (typ, id string, ok bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return "", "", false
	}
	service, res := parts[2], parts[5]
	rtype, rest, _ := strings.Cut(res, "/")
	switch service {
	case "s3":
		if !strings.Contains(res, "/") && res != "" {
			return teardown.TypeBucket, res, true
		}
	case "logs":
		if name, ok := strings.CutPrefix(res, "log-group:"); ok {
			name = strings.TrimSuffix(name, ":*")
			return teardown.TypeLogGroup, name, name != ""
		}
	case "secretsmanager":
		if strings.HasPrefix(res, "secret:") {
			return teardown.TypeSecret, arn, true
		}
	case "ecr":
		if rtype == "repository" && rest != "" {
			return teardown.TypeRepository, rest, true
		}
	case "cognito-idp":
		if rtype == "userpool" && rest != "" {
			return teardown.TypeUserPool, rest, true
		}
	case "iam":
		if rtype == "role" && rest != "" {
			return teardown.TypeRole, rest[strings.LastIndex(rest, "/")+1:], true
		}
	case "ec2":
		kinds := map[string]cloud.Kind{
			"image": cloud.KindImage, "snapshot": cloud.KindSnapshot, "instance": cloud.KindInstance,
			"volume": cloud.KindVolume, "security-group": cloud.KindSecurityGroup, "key-pair": cloud.KindKeyPair,
		}
		if k, ok := kinds[rtype]; ok && rest != "" {
			return string(k), rest, true
		}
	case "cloudformation":
		if rtype == "stack" {
			name, _, _ := strings.Cut(rest, "/")
			return string(cloud.KindStack), name, name != ""
		}
	case "ssm":
		if rtype == "parameter" && rest != "" {
			if strings.Contains(rest, "/") {
				rest = "/" + rest
			}
			return string(cloud.KindParameter), rest, true
		}
	}
	return "", "", false
}

// exists confirms one resource with its service's own describe. Types it
// has no describe for are an error matching cloud.ErrInvalid.
func (c *clients) exists(ctx context.Context, typ, id string) (bool, error) {
	var err error
	switch typ {
	case teardown.TypeBucket:
		_, err = c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(id)})
		if isStatus(err, 404) {
			return false, nil
		}
	case teardown.TypeLogGroup:
		var out *cloudwatchlogs.DescribeLogGroupsOutput
		out, err = c.logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(id)})
		if err == nil {
			return slices.ContainsFunc(out.LogGroups, func(g cwltypes.LogGroup) bool { return aws.ToString(g.LogGroupName) == id }), nil
		}
	case teardown.TypeSecret:
		var out *secretsmanager.DescribeSecretOutput
		out, err = c.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		if err == nil {
			return out.DeletedDate == nil, nil // one scheduled for deletion is gone
		}
	case teardown.TypeRepository:
		_, err = c.ecr.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{id}})
	case teardown.TypeUserPool:
		_, err = c.cognito.DescribeUserPool(ctx, &cognito.DescribeUserPoolInput{UserPoolId: aws.String(id)})
	case teardown.TypeRole:
		_, err = c.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(id)})
	default:
		return c.existsCore(ctx, typ, id)
	}
	if notFound(err) {
		return false, nil
	}
	if err != nil {
		return false, wrap("confirm "+typ, id, err)
	}
	return true, nil
}

// isStatus reports whether err is an HTTP answer with status code (HEAD
// answers carry no error code).
func isStatus(err error, code int) bool {
	var re interface{ HTTPStatusCode() int }
	return err != nil && errors.As(err, &re) && re.HTTPStatusCode() == code
}

// repositories lists the ECR repositories whose tags match.
func (c *clients) repositories(ctx context.Context, want map[string]string) ([]deploy.Resource, error) {
	var repos []ecrtypes.Repository
	p := ecr.NewDescribeRepositoriesPaginator(c.ecr, &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("list repositories in", c.region, err)
		}
		repos = append(repos, page.Repositories...)
	}
	return matching(ctx, repos, func(ctx context.Context, r ecrtypes.Repository) (*deploy.Resource, error) {
		out, err := c.ecr.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: r.RepositoryArn})
		if notFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, wrap("tags of repository", aws.ToString(r.RepositoryName), err)
		}
		tags := mapTags(out.Tags, func(t ecrtypes.Tag) (*string, *string) { return t.Key, t.Value })
		if !cloud.Match(tags, want) {
			return nil, nil
		}
		return &deploy.Resource{Type: teardown.TypeRepository, ID: aws.ToString(r.RepositoryName), Region: c.region,
			Tags: tags, Created: aws.ToTime(r.CreatedAt)}, nil
	})
}

// userPools lists the Cognito user pools whose tags match.
func (c *clients) userPools(ctx context.Context, want map[string]string) ([]deploy.Resource, error) {
	var ids []string
	p := cognito.NewListUserPoolsPaginator(c.cognito, &cognito.ListUserPoolsInput{MaxResults: aws.Int32(60)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("list user pools in", c.region, err)
		}
		for _, u := range page.UserPools {
			ids = append(ids, aws.ToString(u.Id))
		}
	}
	return matching(ctx, ids, func(ctx context.Context, id string) (*deploy.Resource, error) {
		out, err := c.cognito.DescribeUserPool(ctx, &cognito.DescribeUserPoolInput{UserPoolId: aws.String(id)})
		if notFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, wrap("describe user pool", id, err)
		}
		if !cloud.Match(out.UserPool.UserPoolTags, want) {
			return nil, nil
		}
		return &deploy.Resource{Type: teardown.TypeUserPool, ID: id, Region: c.region, Tags: out.UserPool.UserPoolTags,
			Created: aws.ToTime(out.UserPool.CreationDate)}, nil
	})
}

// roles lists the IAM roles whose tags match.
func (c *clients) roles(ctx context.Context, want map[string]string) ([]deploy.Resource, error) {
	var names []string
	p := iam.NewListRolesPaginator(c.iam, &iam.ListRolesInput{MaxItems: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("list roles", "", err)
		}
		for _, r := range page.Roles {
			if !strings.HasPrefix(aws.ToString(r.Path), "/aws-service-role/") {
				names = append(names, aws.ToString(r.RoleName))
			}
		}
	}
	return matching(ctx, names, func(ctx context.Context, name string) (*deploy.Resource, error) {
		out, err := c.iam.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: aws.String(name)})
		if notFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, wrap("tags of role", name, err)
		}
		tags := mapTags(out.Tags, func(t iamtypes.Tag) (*string, *string) { return t.Key, t.Value })
		if !cloud.Match(tags, want) {
			return nil, nil
		}
		return &deploy.Resource{Type: teardown.TypeRole, ID: name, Region: c.region, Tags: tags}, nil
	})
}

// matching runs check on every item, tagConcurrency at once, and returns
// the resources it reports, in the items' order, or the first error —
// also the context's, for items never checked: a listing cut short is not
// a listing.
func matching[T any](ctx context.Context, items []T, check func(context.Context, T) (*deploy.Resource, error)) ([]deploy.Resource, error) {
	found := make([]*deploy.Resource, len(items))
	errs := fanout.Range(ctx, len(items), tagConcurrency, func(ctx context.Context, i int) error {
		var err error
		found[i], err = check(ctx, items[i])
		return err
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	var out []deploy.Resource
	for _, r := range found {
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}
