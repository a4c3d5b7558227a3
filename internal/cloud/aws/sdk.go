package aws

import (
	"github.com/aws/aws-sdk-go-v2/aws"
)

// SDKConfig returns the SDK configuration the backend's clients are made
// from (credentials, profile, endpoint overrides, retries, HTTP client),
// for packages that talk to services the backend does not (teardown's
// buckets, repositories, log groups...). Set its Region before use.
func (b *Backend) SDKConfig() aws.Config { return b.clients.base.Copy() }

// Classify marks an AWS SDK error with kiln's error class of its code
// (cloud.ErrNotFound, ErrNotYet, ErrThrottled, ErrAccessDenied,
// ErrQuota, ErrInvalid), keeping its message.
func Classify(err error) error { return classify(err) }
