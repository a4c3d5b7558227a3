package awsunit

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/unittest"
)

func (w *world) instanceUnit(dep string, cfg config.InstanceUnit) deploy.Unit {
	u := deploy.Unit{
		Project: "proj", Deployment: dep, Name: "workers", Region: region,
		Config:  &config.Unit{Name: "workers", Instance: &cfg},
		Image:   deploy.Image{ID: w.image, Name: "app-1.0", Region: region, Arch: "x86_64", Version: "1.0"},
		Release: "1.0-abcd", Outputs: map[string]string{},
		Tags: deploy.UnitTags("proj", dep, "workers", "1.0-abcd", "team", dep),
		Dir:  w.dir,
	}
	u.Token = token(u)
	return u
}

// liveInstances reads the unit's instances straight from moto.
func (w *world) liveInstances(t *testing.T, u deploy.Unit) []ec2types.Instance {
	t.Helper()
	out, err := w.ec2().DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: append(tagFilters(scope(u)),
		ec2Filter("instance-state-name", "pending", "running", "stopping", "stopped"))})
	if err != nil {
		t.Fatal(err)
	}
	var is []ec2types.Instance
	for _, r := range out.Reservations {
		is = append(is, r.Instances...)
	}
	return is
}

func TestInstanceConformance(t *testing.T) {
	w := newWorld(t)
	w.write(t, "init.sh", "#!/bin/sh\necho hello\n")
	unittest.Run(t, unittest.Harness{
		Kind: NewInstance(w.o),
		Unit: func(t *testing.T, dep string, variant int) deploy.Unit {
			return w.instanceUnit(dep, config.InstanceUnit{InstanceType: []string{"t3.micro", "t3.small"}[variant], Count: 2, UserData: "init.sh"})
		},
		Observe: func(t *testing.T, u deploy.Unit) (exists, running bool) {
			is := w.liveInstances(t, u)
			running = len(is) > 0
			for _, i := range is {
				running = running && i.State.Name == ec2types.InstanceStateNameRunning
			}
			return len(is) > 0, running
		},
		Kill: func(t *testing.T, u deploy.Unit) {
			is := w.liveInstances(t, u)
			if _, err := w.ec2().TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(is[0].InstanceId)}}); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// Resources lists the deployment's instances and only the volumes
// attached to them: a volume tagged for the deployment that no instance
// of the kind holds (a stack's, or one left over) is not an instance
// unit's, or teardown would plan it as a unit of its own.
func TestInstanceResourcesOwnVolumes(t *testing.T) {
	w := newWorld(t)
	k := NewInstance(w.o)
	u := w.instanceUnit("dev", config.InstanceUnit{InstanceType: "t3.micro", Count: 1})
	if _, err := k.Apply(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	stackTags := deploy.UnitTags("proj", "dev", "data", "1.0-abcd", "team", "dev")
	var tags []ec2types.Tag
	for key, v := range stackTags {
		tags = append(tags, ec2types.Tag{Key: aws.String(key), Value: aws.String(v)})
	}
	vol, err := w.ec2().CreateVolume(t.Context(), &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), Size: aws.Int32(1),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeVolume, Tags: tags}}})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := k.Resources(t.Context(), region, map[string]string{cloud.TagProject: "proj", cloud.TagDeployment: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	insts := map[string]bool{}
	for _, r := range rs {
		if r.Type == "AWS::EC2::Instance" {
			insts[r.ID] = true
		}
	}
	if len(insts) != 1 {
		t.Fatalf("instances %v in %+v", insts, rs)
	}
	for _, r := range rs {
		if r.ID == aws.ToString(vol.VolumeId) {
			t.Errorf("the free volume %s is listed: %+v", r.ID, r)
		}
		if r.Type == "AWS::EC2::Volume" && !insts[r.Parent] {
			t.Errorf("volume %s of %q, no instance listed", r.ID, r.Parent)
		}
	}
}
