package aws

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestRootDevice(t *testing.T) {
	base := ec2types.Image{
		RootDeviceName: aws.String("/dev/xvda"),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{
			{DeviceName: aws.String("/dev/xvdb"), Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(100)}},
			{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(8), VolumeType: ec2types.VolumeTypeGp3,
				SnapshotId: aws.String("snap-1"), Encrypted: aws.Bool(false)}},
		},
	}
	tests := []struct {
		size int64
		want int32 // 0: keep the image's own
	}{
		{0, 0},
		{2 << 30, 0},
		{8 << 30, 0},
		{8<<30 + 1, 9},
		{20 << 30, 20},
	}
	for _, tt := range tests {
		got := rootDevice(base, tt.size)
		if tt.want == 0 {
			if got != nil {
				t.Errorf("rootDevice(%d) = %+v, want none", tt.size, got)
			}
			continue
		}
		if len(got) != 1 || aws.ToString(got[0].DeviceName) != "/dev/xvda" || aws.ToInt32(got[0].Ebs.VolumeSize) != tt.want ||
			got[0].Ebs.VolumeType != ec2types.VolumeTypeGp3 || got[0].Ebs.SnapshotId != nil || !aws.ToBool(got[0].Ebs.DeleteOnTermination) {
			t.Errorf("rootDevice(%d) = %+v, want /dev/xvda at %d GiB", tt.size, got, tt.want)
		}
	}
}
