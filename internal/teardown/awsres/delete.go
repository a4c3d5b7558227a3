package awsres

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cognito "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/teardown"
)

// Delete deletes one resource. Absent succeeds; a bucket or repository
// that is not empty, or a role something still uses, is an error
// matching cloud.ErrNotYet.
func (a *Account) Delete(ctx context.Context, r deploy.Resource) error {
	c := a.region(r.Region)
	var err error
	switch r.Type {
	case teardown.TypeBucket:
		_, err = c.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(r.ID)})
	case teardown.TypeRepository:
		_, err = c.ecr.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String(r.ID)})
	case teardown.TypeLogGroup:
		_, err = c.logs.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(r.ID)})
	case teardown.TypeSecret:
		// Recoverable for 7 days (the least AWS allows), and gone for
		// kiln meanwhile.
		_, err = c.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(r.ID), RecoveryWindowInDays: aws.Int64(7)})
		if c.scheduledForDeletion(ctx, r.ID, err) {
			return nil // deleted before (a rerun): it is gone for kiln
		}
	case teardown.TypeUserPool:
		_, err = c.cognito.DeleteUserPool(ctx, &cognito.DeleteUserPoolInput{UserPoolId: aws.String(r.ID)})
	case teardown.TypeRole:
		err = c.deleteRole(ctx, r.ID)
	default:
		return cloud.Mark(fmt.Errorf("delete %s %s: not a type this lister deletes", r.Type, r.ID), cloud.ErrInvalid)
	}
	if notFound(err) {
		return nil
	}
	if err != nil {
		return wrap("delete "+r.Type, r.ID, err)
	}
	c.log(ctx, "deleted", "type", r.Type, "id", r.ID)
	return nil
}

// deleteRole removes what holds a role (its managed and inline policies,
// its instance profiles), then the role.
func (c *clients) deleteRole(ctx context.Context, name string) error {
	attached, err := c.iam.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	if err != nil {
		return err
	}
	for _, p := range attached.AttachedPolicies {
		if _, err := c.iam.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(name), PolicyArn: p.PolicyArn}); err != nil && !notFound(err) {
			return err
		}
	}
	inline, err := c.iam.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
	if err != nil {
		return err
	}
	for _, p := range inline.PolicyNames {
		if _, err := c.iam.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(p)}); err != nil && !notFound(err) {
			return err
		}
	}
	profiles, err := c.iam.ListInstanceProfilesForRole(ctx, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String(name)})
	if err != nil {
		return err
	}
	for _, p := range profiles.InstanceProfiles {
		if _, err := c.iam.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{
			RoleName: aws.String(name), InstanceProfileName: p.InstanceProfileName,
		}); err != nil && !notFound(err) {
			return err
		}
	}
	_, err = c.iam.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)})
	return err
}

// scheduledForDeletion reports whether err is Secrets Manager refusing to
// delete a secret because it is scheduled for deletion already (the
// wording differs between AWS and moto; the secret's DeletedDate does
// not).
func (c *clients) scheduledForDeletion(ctx context.Context, id string, err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidRequestException" {
		return false
	}
	out, derr := c.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	return derr == nil && out.DeletedDate != nil
}
