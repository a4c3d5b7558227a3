package aws

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/kiln-images/kiln/internal/cloud"
)

// classify marks an SDK error with the cloud error class of its AWS error
// code, so the core can decide with errors.Is while the message keeps the
// operation, status and request id. Errors without an API error code
// (cancelled contexts, connection failures after all retries) are returned
// as they are.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	code, msg := ae.ErrorCode(), ae.ErrorMessage()
	switch {
	case isNotFound(code, msg):
		return cloud.Mark(err, cloud.ErrNotFound)
	case isPublicAccessBlock(code, msg):
		return cloud.Mark(err, cloud.ErrPublicAccessBlocked)
	case notYetCodes[code]:
		return cloud.Mark(err, cloud.ErrNotYet)
	case throttleCodes[code]:
		return cloud.Mark(err, cloud.ErrThrottled)
	case accessDeniedCodes[code]:
		return cloud.Mark(fmt.Errorf("%w (allow %s for these credentials)", err, iamAction(err)), cloud.ErrAccessDenied)
	case credentialCodes[code]:
		return cloud.Mark(fmt.Errorf("%w (check the credentials: AWS_PROFILE or backend.aws.profile, environment, SSO login)", err), cloud.ErrAccessDenied)
	case quotaCodes[code] != "" || code == "ResourceLimitExceeded":
		return cloud.Mark(fmt.Errorf("%w (raise the %s quota in Service Quotas or free some)", err, quotaName(code, msg)), cloud.ErrQuota)
	case invalidCodes[code] || strings.HasSuffix(code, ".Malformed") || strings.HasSuffix(code, ".Duplicate"):
		return cloud.Mark(err, cloud.ErrInvalid)
	}
	return err
}

func isNotFound(code, msg string) bool {
	switch {
	case strings.HasSuffix(code, ".NotFound"), strings.HasSuffix(code, "NotFound"),
		strings.HasSuffix(code, "NotFoundException"),
		code == "InvalidAMIID.Unavailable", code == "NoSuchKey", code == "NoSuchBucket",
		code == "InvalidKeyPair.NotFound":
		return true
	case code == "ValidationError" && strings.Contains(msg, "does not exist"):
		// CloudFormation reports an absent stack this way.
		return true
	}
	return false
}

func isPublicAccessBlock(code, msg string) bool {
	return strings.HasPrefix(code, "ImageBlockPublicAccess") ||
		strings.Contains(strings.ToLower(msg), "block public access")
}

var notYetCodes = map[string]bool{
	"DependencyViolation":     true,
	"InvalidSnapshot.InUse":   true,
	"ResourceInUse":           true,
	"ResourceInUseException":  true,
	"BucketNotEmpty":          true,
	"VolumeInUse":             true,
	"IncorrectInstanceState":  true,
	"IncorrectState":          true,
	"InvalidGroup.InUse":      true,
	"OperationInProgress":     true,
	"InvalidImage.InUse":      true,
	"ConcurrentModification":  true,
	"TooManyUpdates":          true, // SSM: another update of the parameter is running
	"InvalidInstanceID.InUse": true,
}

var throttleCodes = map[string]bool{
	"RequestLimitExceeded":                   true,
	"Throttling":                             true,
	"ThrottlingException":                    true,
	"ThrottledException":                     true,
	"RequestThrottled":                       true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"SlowDown":                               true,
	"EC2ThrottledException":                  true,
	"PriorRequestNotComplete":                true,
	"ProvisionedThroughputExceededException": true,
	"BandwidthLimitExceeded":                 true,
}

var accessDeniedCodes = map[string]bool{
	"UnauthorizedOperation": true,
	"AccessDenied":          true,
	"AccessDeniedException": true,
	"Forbidden":             true,
	"OptInRequired":         true,
}

var credentialCodes = map[string]bool{
	"AuthFailure":                 true,
	"InvalidClientTokenId":        true,
	"UnrecognizedClientException": true,
	"ExpiredToken":                true,
	"ExpiredTokenException":       true,
	"SignatureDoesNotMatch":       true,
	"InvalidAccessKeyId":          true,
}

// quotaCodes maps quota error codes to the Service Quotas name to raise.
var quotaCodes = map[string]string{
	"AMIQuotaExceeded":                 "EC2 'AMIs'",
	"InstanceLimitExceeded":            "EC2 'Running On-Demand instances' (vCPUs)",
	"VcpuLimitExceeded":                "EC2 'Running On-Demand instances' (vCPUs)",
	"MaxSpotInstanceCountExceeded":     "EC2 'Spot Instance requests'",
	"SnapshotLimitExceeded":            "EBS 'Snapshots per Region'",
	"VolumeLimitExceeded":              "EBS storage for the volume type",
	"SecurityGroupLimitExceeded":       "VPC 'VPC security groups per Region'",
	"KeyPairLimitExceeded":             "EC2 key pairs",
	"LimitExceededException":           "service limit named in the message",
	"LimitExceeded":                    "service limit named in the message",
	"ParameterLimitExceeded":           "SSM 'Standard parameters'",
	"ParameterMaxVersionLimitExceeded": "SSM parameter versions (delete old versions)",
	"TooManyBuckets":                   "S3 'General purpose buckets'",
	"TooManyTagsException":             "tags per resource",
	"TagLimitExceeded":                 "tags per resource",
}

func quotaName(code, msg string) string {
	if code == "ResourceLimitExceeded" {
		if strings.Contains(strings.ToLower(msg), "public") {
			return "EC2 'Public AMIs'"
		}
		return "EC2 resource limit named in the message"
	}
	return quotaCodes[code]
}

var invalidCodes = map[string]bool{
	"InvalidParameterValue":        true,
	"InvalidParameterCombination":  true,
	"InvalidParameter":             true,
	"InvalidParameterException":    true,
	"ValidationError":              true,
	"ValidationException":          true,
	"MissingParameter":             true,
	"InvalidRequest":               true,
	"InvalidAMIAttributeItemValue": true,
	"UnsupportedOperation":         true,
	"InvalidUserID.Malformed":      true,
}

// iamPrefix maps SDK service ids to IAM action prefixes.
var iamPrefix = map[string]string{
	"EC2":                         "ec2",
	"STS":                         "sts",
	"SSM":                         "ssm",
	"S3":                          "s3",
	"CloudFormation":              "cloudformation",
	"Resource Groups Tagging API": "tag",
}

// iamActionFor names IAM actions that differ from their operation's name.
var iamActionFor = map[string]string{
	"s3:ListObjectsV2":      "s3:ListBucket",
	"s3:DeleteObjects":      "s3:DeleteObject",
	"s3:HeadObject":         "s3:GetObject",
	"s3:HeadBucket":         "s3:ListBucket",
	"s3:ListObjectVersions": "s3:ListBucketVersions",
}

// iamAction names the IAM action a denied call needs, e.g. "ec2:CopyImage".
func iamAction(err error) string {
	var oe *smithy.OperationError
	if !errors.As(err, &oe) {
		return "the denied action"
	}
	prefix := iamPrefix[oe.Service()]
	if prefix == "" {
		prefix = strings.ToLower(strings.ReplaceAll(oe.Service(), " ", ""))
	}
	a := prefix + ":" + oe.Operation()
	if alt, ok := iamActionFor[a]; ok {
		return alt
	}
	return a
}

// isCode reports whether err carries the AWS error code code.
func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
