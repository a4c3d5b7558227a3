package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	tagtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/fanout"
)

// The peers below do, regions in parallel, only the calls their task cannot
// do without, with the largest pages and batches the APIs allow. They are
// the floor each kiln command is measured against.

// maxFilterValues is EC2's limit on filter values in one call
// (FilterLimitExceeded above it).
const maxFilterValues = 200

// MinimalAWSInventory lists kiln's assets the least expensive way the
// tagging API allows: the account check (one STS call); per region the
// GetResources pages (100 resources each) for kiln:managed=true, then the
// confirmation: DescribeImages for the tagged images, DescribeSnapshots for
// the tagged snapshots and those behind the images, each in batches of 200
// ids, and one DescribeKeyPairs (key pairs are not in the tagging API). It
// returns how many images and snapshots it confirmed.
func MinimalAWSInventory(ctx context.Context, endpoint string, regions []string) (int, error) {
	if err := account(ctx, endpoint, regions[0]); err != nil {
		return 0, err
	}
	var found atomic.Int64
	errs := fanout.Each(ctx, regions, len(regions), func(ctx context.Context, region string) error {
		cfg := awstest.Config(endpoint, region)
		tag := resourcegroupstaggingapi.NewFromConfig(cfg)
		c := ec2.NewFromConfig(cfg)
		var images, snaps []string
		p := resourcegroupstaggingapi.NewGetResourcesPaginator(tag, &resourcegroupstaggingapi.GetResourcesInput{
			TagFilters:       []tagtypes.TagFilter{{Key: aws.String(cloud.TagManaged), Values: []string{"true"}}},
			ResourcesPerPage: aws.Int32(100),
			ResourceTypeFilters: []string{
				"ec2:image", "ec2:snapshot", "ec2:instance", "ec2:volume", "ec2:security-group",
				"cloudformation:stack", "ssm:parameter",
			},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, m := range page.ResourceTagMappingList {
				arn := aws.ToString(m.ResourceARN)
				if _, id, ok := strings.Cut(arn, ":image/"); ok {
					images = append(images, id)
				} else if _, id, ok := strings.Cut(arn, ":snapshot/"); ok {
					snaps = append(snaps, id)
				}
			}
		}
		for batch := range slices.Chunk(images, maxFilterValues) {
			ip := ec2.NewDescribeImagesPaginator(c, &ec2.DescribeImagesInput{
				Owners: []string{"self"}, Filters: []ec2types.Filter{{Name: aws.String("image-id"), Values: batch}},
			})
			for ip.HasMorePages() {
				page, err := ip.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, im := range page.Images {
					found.Add(1)
					for _, m := range im.BlockDeviceMappings {
						if m.Ebs != nil && aws.ToString(m.Ebs.SnapshotId) != "" {
							snaps = append(snaps, aws.ToString(m.Ebs.SnapshotId))
						}
					}
				}
			}
		}
		slices.Sort(snaps)
		snaps = slices.Compact(snaps)
		for batch := range slices.Chunk(snaps, maxFilterValues) {
			sp := ec2.NewDescribeSnapshotsPaginator(c, &ec2.DescribeSnapshotsInput{
				OwnerIds: []string{"self"}, Filters: []ec2types.Filter{{Name: aws.String("snapshot-id"), Values: batch}},
			})
			for sp.HasMorePages() {
				page, err := sp.NextPage(ctx)
				if err != nil {
					return err
				}
				found.Add(int64(len(page.Snapshots)))
			}
		}
		_, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{
			Filters: []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagManaged), Values: []string{"true"}}},
		})
		return err
	})
	for i, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("minimal inventory in %s: %w", regions[i], err)
		}
	}
	return int(found.Load()), nil
}

// MinimalAWSImages reads every image the account owns, as a drift check
// must: the account check, then one paged DescribeImages per region. It
// returns how many images it read.
func MinimalAWSImages(ctx context.Context, endpoint string, regions []string) (int, error) {
	if err := account(ctx, endpoint, regions[0]); err != nil {
		return 0, err
	}
	var found atomic.Int64
	errs := fanout.Each(ctx, regions, len(regions), func(ctx context.Context, region string) error {
		p := ec2.NewDescribeImagesPaginator(ec2.NewFromConfig(awstest.Config(endpoint, region)), &ec2.DescribeImagesInput{Owners: []string{"self"}})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			found.Add(int64(len(page.Images)))
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("minimal image scan in %s: %w", regions[i], err)
		}
	}
	return int(found.Load()), nil
}

func account(ctx context.Context, endpoint, region string) error {
	_, err := sts.NewFromConfig(awstest.Config(endpoint, region)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	return err
}

// record is the part of a local image record a scan needs.
type record struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Architecture string            `json:"architecture"`
	State        string            `json:"state"`
	Created      time.Time         `json:"created"`
	Tags         map[string]string `json:"tags"`
}

// MinimalLocal reads and decodes every image record of the regions under
// root (one directory read and one file read per record), regions in
// parallel: what any listing of the local store has to do. It returns how
// many records it read.
func MinimalLocal(ctx context.Context, root string, regions []string) (int, error) {
	var found atomic.Int64
	errs := fanout.Each(ctx, regions, len(regions), func(ctx context.Context, region string) error {
		dir := filepath.Join(root, region, "images")
		names, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range names {
			if !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			var r record
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("%s: %w", e.Name(), err)
			}
			found.Add(1)
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("minimal local scan in %s: %w", regions[i], err)
		}
	}
	return int(found.Load()), nil
}
