package manifest

import "regexp"

// Rules are the backend-specific checks Validate applies. A nil function
// skips its check. The Form strings describe what is allowed, for messages.
type Rules struct {
	ValidID     func(id string) bool
	IDForm      string // e.g. "ami- followed by 8 or 17 lowercase hex digits"
	ValidRegion func(region string) bool
	RegionForm  string // e.g. "an AWS region name like us-east-1"
}

// AWSRules check AWS image ids and region names.
var AWSRules = Rules{
	ValidID:     ValidAWSImageID,
	IDForm:      "ami- followed by 8 or 17 lowercase hex digits",
	ValidRegion: ValidAWSRegion,
	RegionForm:  "an AWS region name like us-east-1, us-gov-west-1 or us-isob-east-1",
}

// LocalRules check the local backend's image ids and region names.
var LocalRules = Rules{
	ValidID:     ValidLocalImageID,
	IDForm:      "img- followed by 17 lowercase hex digits",
	ValidRegion: ValidLocalRegion,
	RegionForm:  "a lowercase letter, then up to 62 lowercase letters, digits or hyphens",
}

var (
	awsImageID   = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	awsRegion    = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$`)
	localImageID = regexp.MustCompile(`^img-[0-9a-f]{17}$`)
	localRegion  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
)

// ValidAWSImageID reports whether id has the form of an AMI id.
func ValidAWSImageID(id string) bool { return awsImageID.MatchString(id) }

// ValidAWSRegion reports whether region has the shape of an AWS region name.
// It does not check that the region exists.
func ValidAWSRegion(region string) bool { return awsRegion.MatchString(region) }

// ValidLocalImageID reports whether id has the form of a local backend image id.
func ValidLocalImageID(id string) bool { return localImageID.MatchString(id) }

// ValidLocalRegion reports whether region is a valid local region name.
func ValidLocalRegion(region string) bool { return localRegion.MatchString(region) }
