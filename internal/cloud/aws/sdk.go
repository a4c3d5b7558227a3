package aws

import "github.com/aws/aws-sdk-go-v2/aws"

// SDKConfig is the SDK configuration the backend's clients are made from
// (credentials, profile, retries, endpoint overrides), for features that
// call services of their own (the distribution's S3, CloudFront, WAF).
func (b *Backend) SDKConfig() aws.Config { return b.clients.base.Copy() }
