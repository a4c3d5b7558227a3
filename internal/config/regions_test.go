package config

import "testing"

func TestValidAWSRegion(t *testing.T) {
	for _, r := range []string{"us-east-1", "eu-central-2", "ap-southeast-7", "mx-central-1", "us-gov-west-1", "cn-northwest-1"} {
		if !ValidAWSRegion(r) {
			t.Errorf("ValidAWSRegion(%q) = false", r)
		}
	}
	for _, r := range []string{"us-east-9", "", "US-EAST-1", "aws-global", "us-iso-east-1", "local-a"} {
		if ValidAWSRegion(r) {
			t.Errorf("ValidAWSRegion(%q) = true", r)
		}
	}
}

func TestValidLocalRegion(t *testing.T) {
	long := "a"
	for len(long) < 63 {
		long += "b"
	}
	for _, r := range []string{"local-a", "a", "r1", long, "us-east-1"} {
		if !ValidLocalRegion(r) {
			t.Errorf("ValidLocalRegion(%q) = false", r)
		}
	}
	for _, r := range []string{"", "1a", "-a", "Local", "a_b", "a/b", "..", long + "c"} {
		if ValidLocalRegion(r) {
			t.Errorf("ValidLocalRegion(%q) = true", r)
		}
	}
}
