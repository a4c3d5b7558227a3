package aws

import (
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
)

func TestParseARN(t *testing.T) {
	tests := []struct {
		arn  string
		kind cloud.Kind
		id   string
		ok   bool
	}{
		{"arn:aws:ec2:us-east-1:123456789012:image/ami-1", cloud.KindImage, "ami-1", true},
		{"arn:aws:ec2:us-east-1:123456789012:snapshot/snap-1", cloud.KindSnapshot, "snap-1", true},
		{"arn:aws:ec2:us-east-1:123456789012:instance/i-1", cloud.KindInstance, "i-1", true},
		{"arn:aws:ec2:us-east-1:123456789012:volume/vol-1", cloud.KindVolume, "vol-1", true},
		{"arn:aws:ec2:us-east-1:123456789012:security-group/sg-1", cloud.KindSecurityGroup, "sg-1", true},
		{"arn:aws:ec2:us-east-1:123456789012:key-pair/key-1", "", "", false}, // listed by name instead
		{"arn:aws:cloudformation:us-east-1:123456789012:stack/kiln-x/0b1c-22", cloud.KindStack, "kiln-x", true},
		{"arn:aws:ssm:us-east-1:123456789012:parameter/kiln/latest/x", cloud.KindParameter, "/kiln/latest/x", true},
		{"arn:aws:ssm:us-east-1:123456789012:parameter/flat", cloud.KindParameter, "flat", true},
		{"arn:aws:s3:::bucket", "", "", false},
		{"arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1", "", "", false},
		{"not an arn", "", "", false},
	}
	for _, tt := range tests {
		kind, id, ok := parseARN(tt.arn)
		if kind != tt.kind || id != tt.id || ok != tt.ok {
			t.Errorf("parseARN(%q) = %q, %q, %v; want %q, %q, %v", tt.arn, kind, id, ok, tt.kind, tt.id, tt.ok)
		}
	}
}
