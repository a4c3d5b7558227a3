package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/kiln-images/kiln/internal/cloud"
)

func apiErr(service, op, code, msg string) error {
	return &smithy.OperationError{ServiceID: service, OperationName: op,
		Err: &smithy.GenericAPIError{Code: code, Message: msg}}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err   error
		class error  // nil: unclassified
		says  string // the message must contain this
	}{
		{apiErr("EC2", "DescribeImages", "InvalidAMIID.NotFound", "The image id '[ami-1]' does not exist"), cloud.ErrNotFound, "ami-1"},
		{apiErr("EC2", "DescribeImages", "InvalidAMIID.Unavailable", "gone"), cloud.ErrNotFound, ""},
		{apiErr("EC2", "DeleteSnapshot", "InvalidSnapshot.NotFound", ""), cloud.ErrNotFound, ""},
		{apiErr("EC2", "TerminateInstances", "InvalidInstanceID.NotFound", ""), cloud.ErrNotFound, ""},
		{apiErr("EC2", "DeleteSecurityGroup", "InvalidGroup.NotFound", ""), cloud.ErrNotFound, ""},
		{apiErr("SSM", "GetParameter", "ParameterNotFound", ""), cloud.ErrNotFound, ""},
		{apiErr("S3", "GetObject", "NoSuchKey", ""), cloud.ErrNotFound, ""},
		{apiErr("CloudFormation", "DescribeStacks", "ValidationError", "Stack with id kiln-x does not exist"), cloud.ErrNotFound, ""},
		{apiErr("EC2", "DeleteSecurityGroup", "DependencyViolation", "resource has a dependent object"), cloud.ErrNotYet, ""},
		{apiErr("EC2", "DeleteSnapshot", "InvalidSnapshot.InUse", ""), cloud.ErrNotYet, ""},
		{apiErr("CloudFormation", "DeleteStack", "ResourceInUse", ""), cloud.ErrNotYet, ""},
		{apiErr("S3", "DeleteBucket", "BucketNotEmpty", ""), cloud.ErrNotYet, ""},
		{apiErr("EC2", "CopyImage", "RequestLimitExceeded", "Request limit exceeded."), cloud.ErrThrottled, ""},
		{apiErr("CloudFormation", "DescribeStacks", "Throttling", "Rate exceeded"), cloud.ErrThrottled, ""},
		{apiErr("SSM", "PutParameter", "ThrottlingException", ""), cloud.ErrThrottled, ""},
		{apiErr("EC2", "CopyImage", "UnauthorizedOperation", "You are not authorized"), cloud.ErrAccessDenied, "allow ec2:CopyImage"},
		{apiErr("S3", "ListObjectsV2", "AccessDenied", ""), cloud.ErrAccessDenied, "allow s3:ListBucket"},
		{apiErr("SSM", "PutParameter", "AccessDeniedException", ""), cloud.ErrAccessDenied, "allow ssm:PutParameter"},
		{apiErr("Resource Groups Tagging API", "GetResources", "AccessDeniedException", ""), cloud.ErrAccessDenied, "allow tag:GetResources"},
		{apiErr("STS", "GetCallerIdentity", "InvalidClientTokenId", ""), cloud.ErrAccessDenied, "check the credentials"},
		{apiErr("EC2", "CopyImage", "AMIQuotaExceeded", ""), cloud.ErrQuota, "EC2 'AMIs'"},
		{apiErr("EC2", "RunInstances", "InstanceLimitExceeded", ""), cloud.ErrQuota, "Running On-Demand instances"},
		{apiErr("EC2", "ModifyImageAttribute", "ResourceLimitExceeded", "You have reached your quota for public AMIs"), cloud.ErrQuota, "EC2 'Public AMIs'"},
		{apiErr("EC2", "CreateImage", "ResourceLimitExceeded", "too many"), cloud.ErrQuota, "raise the"},
		{apiErr("EC2", "ModifyImageAttribute", "ImageBlockPublicAccessEnabled", ""), cloud.ErrPublicAccessBlocked, ""},
		{apiErr("EC2", "ModifyImageAttribute", "OperationNotPermitted", "Image block public access is enabled for this region"), cloud.ErrPublicAccessBlocked, ""},
		{apiErr("EC2", "CopyImage", "InvalidAMIName.Duplicate", ""), cloud.ErrInvalid, ""},
		{apiErr("EC2", "RunInstances", "InvalidParameterValue", ""), cloud.ErrInvalid, ""},
		{apiErr("EC2", "RunInstances", "SomethingNew", ""), nil, ""},
		{context.Canceled, nil, ""},
	}
	classes := []error{cloud.ErrNotFound, cloud.ErrNotYet, cloud.ErrThrottled, cloud.ErrAccessDenied,
		cloud.ErrQuota, cloud.ErrPublicAccessBlocked, cloud.ErrInvalid}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			got := classify(tt.err)
			if !errors.Is(got, tt.err) {
				t.Errorf("classified error no longer wraps the original")
			}
			for _, c := range classes {
				if errors.Is(got, c) != (c == tt.class) {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", got, c, !(c == tt.class), c == tt.class)
				}
			}
			if !strings.Contains(got.Error(), tt.says) {
				t.Errorf("message %q does not say %q", got, tt.says)
			}
		})
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}
