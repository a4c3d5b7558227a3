// Package teardowntest makes what deployments make on an aws endpoint
// (moto, through the awstest stub) — stacks with resources, versioned
// buckets with delete markers, repositories with images, snapshots,
// volumes, log groups, user pools, roles — tagged as kiln tags them, and
// reads the account back straight from each service, not through kiln:
// the setup and the direct reads of teardown's tests and benchmark.
package teardowntest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cognito "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/kiln-images/kiln/internal/fanout"
)

// AWS makes and reads resources in one region of an endpoint.
type AWS struct {
	Region  string
	s3      *s3.Client
	ecr     *ecr.Client
	logs    *cloudwatchlogs.Client
	ec2     *ec2.Client
	cfn     *cloudformation.Client
	cognito *cognito.Client
	iam     *iam.Client
	sm      *secretsmanager.Client
}

// NewAWS returns clients of endpoint in region, with test credentials.
func NewAWS(endpoint, region string) *AWS {
	cfg := aws.Config{
		Region: region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("teardowntest", "teardowntest", ""),
	}
	return &AWS{
		Region: region,
		s3:     s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }),
		ecr:    ecr.NewFromConfig(cfg), logs: cloudwatchlogs.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg),
		cfn: cloudformation.NewFromConfig(cfg), cognito: cognito.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg),
		sm: secretsmanager.NewFromConfig(cfg),
	}
}

// Tags are the tags kiln puts on a deployment unit's resources.
func Tags(project, deployment, unit, costKey, costValue string) map[string]string {
	t := map[string]string{
		"kiln:managed": "true", "kiln:project": project, "kiln:deployment": deployment,
		"kiln:unit": unit, "kiln:release": "rel-1",
	}
	if costKey != "" {
		t[costKey] = costValue
	}
	return t
}

func cfnTags(tags map[string]string) []map[string]string {
	var out []map[string]string
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, map[string]string{"Key": k, "Value": tags[k]})
	}
	return out
}

// Stack creates a stack of resources (logical id -> CloudFormation
// resource) with tags, as CreateStack with tags does.
func (a *AWS) Stack(ctx context.Context, name string, tags map[string]string, resources map[string]any) error {
	return a.stack(ctx, name, tags, resources, false)
}

// ProtectedStack is Stack with termination protection on, as the stack
// kind makes the stacks of a deployment with protect: true.
func (a *AWS) ProtectedStack(ctx context.Context, name string, tags map[string]string, resources map[string]any) error {
	return a.stack(ctx, name, tags, resources, true)
}

func (a *AWS) stack(ctx context.Context, name string, tags map[string]string, resources map[string]any, protect bool) error {
	body, err := json.Marshal(map[string]any{"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources})
	if err != nil {
		return err
	}
	var t []cfntypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		t = append(t, cfntypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	if _, err := a.cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(string(body)), Tags: t,
		EnableTerminationProtection: aws.Bool(protect)}); err != nil {
		return fmt.Errorf("create stack %s: %w", name, err)
	}
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		r, _ := resources[id].(map[string]any)
		props, _ := r["Properties"].(map[string]any)
		if r["Type"] != "AWS::S3::Bucket" || props["VersioningConfiguration"] == nil {
			continue
		}
		if err := a.Versioned(ctx, props["BucketName"].(string)); err != nil {
			return err
		}
	}
	return nil
}

// BucketResource is a stack's versioned bucket, tagged.
func BucketResource(name string, tags map[string]string, retain bool) map[string]any {
	r := map[string]any{"Type": "AWS::S3::Bucket", "Properties": map[string]any{
		"BucketName": name, "Tags": cfnTags(tags), "VersioningConfiguration": map[string]string{"Status": "Enabled"},
	}}
	if retain {
		r["DeletionPolicy"] = "Retain"
	}
	return r
}

// RepositoryResource is a stack's container repository, tagged.
func RepositoryResource(name string, tags map[string]string) map[string]any {
	return map[string]any{"Type": "AWS::ECR::Repository", "Properties": map[string]any{"RepositoryName": name, "Tags": cfnTags(tags)}}
}

// LogGroupResource is a stack's log group, kept on delete when retain.
func LogGroupResource(name string, retain bool) map[string]any {
	r := map[string]any{"Type": "AWS::Logs::LogGroup", "Properties": map[string]any{"LogGroupName": name}}
	if retain {
		r["DeletionPolicy"] = "Retain"
	}
	return r
}

// VolumeResource is a stack's EBS volume, tagged.
func VolumeResource(tags map[string]string) map[string]any {
	return map[string]any{"Type": "AWS::EC2::Volume", "Properties": map[string]any{
		"AvailabilityZone": "us-east-1a", "Size": 1, "Tags": cfnTags(tags)}}
}

// Bucket creates a versioned bucket with tags.
func (a *AWS) Bucket(ctx context.Context, name string, tags map[string]string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if a.Region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(a.Region)}
	}
	if _, err := a.s3.CreateBucket(ctx, in); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if err := a.Versioned(ctx, name); err != nil {
		return err
	}
	if len(tags) == 0 {
		return nil
	}
	var ts []s3types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, s3types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	_, err := a.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(name), Tagging: &s3types.Tagging{TagSet: ts}})
	return err
}

// Versioned turns versioning on for a bucket. Moto ignores the
// VersioningConfiguration of an AWS::S3::Bucket in a template, so a
// stack's bucket gets it this way too.
func (a *AWS) Versioned(ctx context.Context, bucket string) error {
	_, err := a.s3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
	if err != nil {
		return fmt.Errorf("versioning of bucket %s: %w", bucket, err)
	}
	return nil
}

// FillBucket writes versions object versions (over ten keys) into a
// versioned bucket, and markers more keys each written and deleted: a
// version and a delete marker each.
func (a *AWS) FillBucket(ctx context.Context, bucket string, versions, markers int) error {
	jobs := make([]int, versions+markers)
	for i := range jobs {
		jobs[i] = i
	}
	errs := fanout.Each(ctx, jobs, 16, func(ctx context.Context, i int) error {
		key := fmt.Sprintf("data/%03d", i%10)
		if i >= versions {
			key = fmt.Sprintf("gone/%05d", i)
		}
		if _, err := a.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(fmt.Sprint(i))}); err != nil {
			return err
		}
		if i < versions {
			return nil
		}
		_, err := a.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		return err
	})
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("fill bucket %s: %w", bucket, err)
		}
	}
	return nil
}

// Put writes one object into a bucket (a late writer).
func (a *AWS) Put(ctx context.Context, bucket, key string) error {
	_, err := a.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("late")})
	return err
}

// BucketVersions counts a bucket's object versions and delete markers;
// -1 when it does not exist.
func (a *AWS) BucketVersions(ctx context.Context, bucket string) (int, error) {
	n := 0
	p := s3.NewListObjectVersionsPaginator(a.s3, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if strings.Contains(err.Error(), "NoSuchBucket") {
				return -1, nil
			}
			return 0, err
		}
		n += len(page.Versions) + len(page.DeleteMarkers)
	}
	return n, nil
}

// Repository creates a container repository with tags.
func (a *AWS) Repository(ctx context.Context, name string, tags map[string]string) error {
	var ts []ecrtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, ecrtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	_, err := a.ecr.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(name), Tags: ts})
	return err
}

// PushImages puts n images (each with its own manifest, two tags each)
// into a repository.
func (a *AWS) PushImages(ctx context.Context, repo string, n int) error {
	for i := range n {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s-%d", repo, i)))
		manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":"sha256:%s"},"layers":[]}`,
			hex.EncodeToString(sum[:]))
		for _, tag := range []string{fmt.Sprintf("v%d", i), fmt.Sprintf("build-%d", i)} {
			if _, err := a.ecr.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(manifest), ImageTag: aws.String(tag)}); err != nil {
				return fmt.Errorf("push image %d to %s: %w", i, repo, err)
			}
		}
	}
	return nil
}

// LogGroup creates a log group with tags.
func (a *AWS) LogGroup(ctx context.Context, name string, tags map[string]string) error {
	_, err := a.logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(name), Tags: tags})
	return err
}

func ec2Tags(typ ec2types.ResourceType, tags map[string]string) []ec2types.TagSpecification {
	if len(tags) == 0 {
		return nil // EC2 refuses a tag specification without tags
	}
	var ts []ec2types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return []ec2types.TagSpecification{{ResourceType: typ, Tags: ts}}
}

// Volume creates an EBS volume with tags.
func (a *AWS) Volume(ctx context.Context, tags map[string]string) (string, error) {
	out, err := a.ec2.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(a.Region + "a"), Size: aws.Int32(1),
		TagSpecifications: ec2Tags(ec2types.ResourceTypeVolume, tags)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.VolumeId), nil
}

// Snapshot snapshots a volume, with tags.
func (a *AWS) Snapshot(ctx context.Context, volume string, tags map[string]string) (string, error) {
	out, err := a.ec2.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volume),
		TagSpecifications: ec2Tags(ec2types.ResourceTypeSnapshot, tags)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SnapshotId), nil
}

// UserPool creates a Cognito user pool with tags.
func (a *AWS) UserPool(ctx context.Context, name string, tags map[string]string) (string, error) {
	out, err := a.cognito.CreateUserPool(ctx, &cognito.CreateUserPoolInput{PoolName: aws.String(name), UserPoolTags: tags})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.UserPool.Id), nil
}

// Secret creates a Secrets Manager secret with tags and returns its ARN.
func (a *AWS) Secret(ctx context.Context, name string, tags map[string]string) (string, error) {
	var ts []smtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, smtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	out, err := a.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("s3cr3t"), Tags: ts})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ARN), nil
}

// Role creates an IAM role with tags and an inline policy.
func (a *AWS) Role(ctx context.Context, name string, tags map[string]string) error {
	var ts []iamtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, iamtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if _, err := a.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust), Tags: ts}); err != nil {
		return err
	}
	_, err := a.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("read"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)})
	return err
}

// Inventory reads the account straight from each service — not through
// tags, not through kiln — and returns what exists as "type id", sorted:
// buckets, repositories, log groups, volumes, snapshots, live stacks,
// user pools, secrets and roles.
func (a *AWS) Inventory(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	var out []string
	add := func(typ, id string) {
		mu.Lock()
		out = append(out, typ+" "+id)
		mu.Unlock()
	}
	listers := []func(context.Context) error{
		func(ctx context.Context) error {
			b, err := a.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
			if err == nil {
				for _, x := range b.Buckets {
					add("bucket", aws.ToString(x.Name))
				}
			}
			return err
		},
		func(ctx context.Context) error {
			p := ecr.NewDescribeRepositoriesPaginator(a.ecr, &ecr.DescribeRepositoriesInput{})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, r := range page.Repositories {
					add("repository", aws.ToString(r.RepositoryName))
				}
			}
			return nil
		},
		func(ctx context.Context) error {
			p := cloudwatchlogs.NewDescribeLogGroupsPaginator(a.logs, &cloudwatchlogs.DescribeLogGroupsInput{})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, g := range page.LogGroups {
					add("log-group", aws.ToString(g.LogGroupName))
				}
			}
			return nil
		},
		func(ctx context.Context) error {
			v, err := a.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
			if err == nil {
				for _, x := range v.Volumes {
					add("volume", aws.ToString(x.VolumeId))
				}
			}
			return err
		},
		func(ctx context.Context) error {
			s, err := a.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
			if err == nil {
				for _, x := range s.Snapshots {
					add("snapshot", aws.ToString(x.SnapshotId))
				}
			}
			return err
		},
		func(ctx context.Context) error {
			p := cloudformation.NewDescribeStacksPaginator(a.cfn, &cloudformation.DescribeStacksInput{})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, s := range page.Stacks {
					if s.StackStatus != cfntypes.StackStatusDeleteComplete {
						add("stack", aws.ToString(s.StackName))
					}
				}
			}
			return nil
		},
		func(ctx context.Context) error {
			u, err := a.cognito.ListUserPools(ctx, &cognito.ListUserPoolsInput{MaxResults: aws.Int32(60)})
			if err == nil {
				for _, x := range u.UserPools {
					add("user-pool", aws.ToString(x.Name))
				}
			}
			return err
		},
		func(ctx context.Context) error {
			// Those scheduled for deletion are not listed: gone, for kiln.
			p := secretsmanager.NewListSecretsPaginator(a.sm, &secretsmanager.ListSecretsInput{})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, x := range page.SecretList {
					if x.DeletedDate == nil {
						add("secret", aws.ToString(x.Name))
					}
				}
			}
			return nil
		},
		func(ctx context.Context) error {
			r, err := a.iam.ListRoles(ctx, &iam.ListRolesInput{})
			if err == nil {
				for _, x := range r.Roles {
					add("role", aws.ToString(x.RoleName))
				}
			}
			return err
		},
	}
	for _, err := range fanout.Each(ctx, listers, len(listers), func(ctx context.Context, f func(context.Context) error) error { return f(ctx) }) {
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}
