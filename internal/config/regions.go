package config

import "regexp"

// awsRegions is every AWS region in the commercial, GovCloud and China
// partitions, as listed in the partition metadata of aws-sdk-go-v2 v1.47.
var awsRegions = map[string]bool{
	"af-south-1": true,
	"ap-east-1":  true, "ap-east-2": true,
	"ap-northeast-1": true, "ap-northeast-2": true, "ap-northeast-3": true,
	"ap-south-1": true, "ap-south-2": true,
	"ap-southeast-1": true, "ap-southeast-2": true, "ap-southeast-3": true,
	"ap-southeast-4": true, "ap-southeast-5": true, "ap-southeast-6": true,
	"ap-southeast-7": true,
	"ca-central-1":   true, "ca-west-1": true,
	"eu-central-1": true, "eu-central-2": true,
	"eu-north-1": true,
	"eu-south-1": true, "eu-south-2": true,
	"eu-west-1": true, "eu-west-2": true, "eu-west-3": true,
	"il-central-1": true,
	"me-central-1": true, "me-south-1": true,
	"mx-central-1": true,
	"sa-east-1":    true,
	"us-east-1":    true, "us-east-2": true,
	"us-west-1": true, "us-west-2": true,
	// GovCloud
	"us-gov-east-1": true, "us-gov-west-1": true,
	// China
	"cn-north-1": true, "cn-northwest-1": true,
}

// ValidAWSRegion reports whether name is a known AWS region (commercial,
// GovCloud or China).
func ValidAWSRegion(name string) bool { return awsRegions[name] }

var localRegionRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// ValidLocalRegion reports whether name can name a region of the local
// backend: a lowercase letter, then up to 62 lowercase letters, digits or
// dashes. Such names are safe as directory names.
func ValidLocalRegion(name string) bool { return localRegionRE.MatchString(name) }
