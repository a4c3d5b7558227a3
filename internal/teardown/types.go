package teardown

import (
	"slices"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
)

// Resource types by kiln's names: the backend inventory's kinds
// (cloud.Kind: stack, instance, snapshot, volume...), and these.
const (
	TypeBucket     = "bucket"
	TypeRepository = "repository"
	TypeLogGroup   = "log-group"
	TypeUserPool   = "user-pool"
	TypeRole       = "role"
	TypeSecret     = "secret"
)

// cfnTypes maps CloudFormation resource types (what a stack kind reports
// for a stack's resources) to kiln's names, so that the project's retain
// rules and the emptying of buckets apply to a stack's resources as to
// any other.
var cfnTypes = map[string]string{
	"AWS::CloudFormation::Stack":    string(cloud.KindStack),
	"AWS::S3::Bucket":               TypeBucket,
	"AWS::ECR::Repository":          TypeRepository,
	"AWS::Logs::LogGroup":           TypeLogGroup,
	"AWS::Cognito::UserPool":        TypeUserPool,
	"AWS::IAM::Role":                TypeRole,
	"AWS::SecretsManager::Secret":   TypeSecret,
	"AWS::EC2::Instance":            string(cloud.KindInstance),
	"AWS::EC2::Volume":              string(cloud.KindVolume),
	"AWS::EC2::SecurityGroup":       string(cloud.KindSecurityGroup),
	"AWS::EC2::KeyPair":             string(cloud.KindKeyPair),
	"AWS::SSM::Parameter":           string(cloud.KindParameter),
	"AWS::EC2::Image":               string(cloud.KindImage),
	"AWS::EC2::Snapshot":            string(cloud.KindSnapshot),
	"AWS::ImageBuilder::Image":      string(cloud.KindImage),
	"AWS::S3::BucketPolicy":         "bucket-policy",
	"AWS::ECR::RepositoryPolicy":    "repository-policy",
	"AWS::IAM::InstanceProfile":     "instance-profile",
	"AWS::Cognito::UserPoolClient":  "user-pool-client",
	"AWS::Logs::SubscriptionFilter": "subscription-filter",
}

// kilnType returns kiln's name of a resource type.
func kilnType(t string) string {
	if k, ok := cfnTypes[t]; ok {
		return k
	}
	return t
}

// emptied reports whether resources of type t hold things that must go
// before they can (a bucket its object versions, a repository its
// images).
func emptied(t string) bool { return t == TypeBucket || t == TypeRepository }

// leftoverOrder sorts leftovers found by tag the way they may be deleted:
// the backend inventory's kinds in cloud.DeleteOrder (an instance before
// its volumes, an image before its snapshots), then storage and logs,
// then identities (a role after whatever used it), then what else.
func leftoverOrder(t string) int {
	if i := slices.Index(cloud.DeleteOrder, cloud.Kind(t)); i >= 0 {
		return i
	}
	n := len(cloud.DeleteOrder)
	switch t {
	case TypeBucket:
		return n
	case TypeRepository:
		return n + 1
	case TypeLogGroup:
		return n + 2
	case TypeSecret:
		return n + 3
	case TypeUserPool:
		return n + 4
	case TypeRole:
		return n + 5
	}
	return n + 6
}

// key identifies a resource across listers: kiln's type and its id.
func key(r deploy.Resource) string { return kilnType(r.Type) + "|" + r.ID }

// retainedTag reports whether tags say kiln:retain=true, in any case.
func retainedTag(tags map[string]string) bool {
	return strings.EqualFold(strings.TrimSpace(tags[cloud.TagRetain]), "true")
}
