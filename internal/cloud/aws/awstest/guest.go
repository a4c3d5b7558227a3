package awstest

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// SimulateGuests plays the guest of build instances until the test ends:
// moto never runs user data and puts instances straight into running, so
// this stops every running instance tagged kiln:phase=build in regions,
// which is exactly what the provisioning script does when it finishes
// (shutdown with InstanceInitiatedShutdownBehavior=stop). It talks to moto
// directly, not through the stub or fault proxy.
func SimulateGuests(t testing.TB, motoURL string, regions ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	clients := make([]*ec2.Client, len(regions))
	for i, r := range regions {
		clients[i] = ec2.NewFromConfig(Config(motoURL, r))
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, c := range clients {
				stopBuildInstances(ctx, c)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

func stopBuildInstances(ctx context.Context, c *ec2.Client) {
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:kiln:phase"), Values: []string{"build"}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
	}})
	if err != nil {
		return // moto is being reset or the test is ending; try again
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	if len(ids) > 0 {
		c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids})
	}
}
