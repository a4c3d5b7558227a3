package aws

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	tagtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/fanout"
)

// ListAssets returns the assets in region whose tags match f, each
// confirmed by its own service's describe call, plus their untagged
// children: the snapshots of images, the volumes of instances and the
// resources of stacks (Retain set where the template keeps the resource on
// delete). The tagging API is the fast path across kinds; it can list
// resources that are gone, hence the confirmation, and it misses key pairs
// on some endpoints and S3 objects everywhere, which are listed directly.
func (b *Backend) ListAssets(ctx context.Context, region string, f cloud.Filter) ([]cloud.Asset, error) {
	c, err := b.clients.region(region)
	if err != nil {
		return nil, err
	}
	inv := &inventory{b: b, c: c, assets: map[assetKey]*cloud.Asset{}, stackState: map[assetKey]bool{}}
	if err := inv.collect(ctx, f); err != nil {
		return nil, fmt.Errorf("list assets in %s: %w", region, err)
	}
	out := make([]cloud.Asset, 0, len(inv.assets))
	for _, a := range inv.assets {
		if len(f.IDs) > 0 && !slices.Contains(f.IDs, a.ID) {
			continue
		}
		out = append(out, *a)
	}
	order := map[cloud.Kind]int{}
	for i, k := range cloud.DeleteOrder {
		order[k] = i
	}
	slices.SortFunc(out, func(a, b cloud.Asset) int {
		return cmp.Or(cmp.Compare(order[a.Kind], order[b.Kind]), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

type assetKey struct {
	kind cloud.Kind
	id   string
}

// inventory accumulates one ListAssets call's findings. Its steps run
// at once, so what each finds is merged the same whichever comes first.
type inventory struct {
	b *Backend
	c *regional

	mu     sync.Mutex
	assets map[assetKey]*cloud.Asset
	// stackState holds the assets whose State is their stack's view of
	// them (a resource status), which their own describe call replaces.
	stackState map[assetKey]bool
}

// add records an asset as its own service describes it, merging with
// what is already known of it.
func (inv *inventory) add(a cloud.Asset) { inv.merge(a, false) }

// addStackResource records a resource as its stack lists it.
func (inv *inventory) addStackResource(a cloud.Asset) { inv.merge(a, true) }

func (inv *inventory) merge(a cloud.Asset, stackView bool) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	a.Region = inv.c.loc
	k := assetKey{a.Kind, a.ID}
	cur, ok := inv.assets[k]
	if !ok {
		inv.assets[k] = &a
		inv.stackState[k] = stackView && a.State != ""
		return
	}
	if len(a.Tags) > 0 {
		cur.Tags = a.Tags
	}
	// The resource's own state beats its stack's view.
	if a.State != "" && (cur.State == "" || inv.stackState[k] && !stackView) {
		cur.State, inv.stackState[k] = a.State, stackView
	}
	if cur.Created.IsZero() {
		cur.Created = a.Created
	}
	cur.Parent = cmp.Or(cur.Parent, a.Parent)
	cur.Retain = cur.Retain || a.Retain
}

func (inv *inventory) collect(ctx context.Context, f cloud.Filter) error {
	byKind, tags, err := inv.tagged(ctx, f.Tags)
	if err != nil {
		return err
	}
	steps := []func(context.Context) error{
		func(ctx context.Context) error {
			return inv.images(ctx, byKind[cloud.KindImage], byKind[cloud.KindSnapshot])
		},
		func(ctx context.Context) error {
			return inv.instances(ctx, byKind[cloud.KindInstance], byKind[cloud.KindVolume])
		},
		func(ctx context.Context) error { return inv.groups(ctx, byKind[cloud.KindSecurityGroup]) },
		func(ctx context.Context) error { return inv.keyPairs(ctx, f.Tags) },
		func(ctx context.Context) error { return inv.stacks(ctx, byKind[cloud.KindStack], tags) },
		func(ctx context.Context) error { return inv.parameters(ctx, byKind[cloud.KindParameter], tags) },
		func(ctx context.Context) error { return inv.exports(ctx, f.Tags) },
		func(ctx context.Context) error { return inv.staged(ctx, f.Tags) },
		func(ctx context.Context) error { return inv.workDirs(f.Tags) },
	}
	// Each step waits on its own service; none needs another's findings.
	return errors.Join(fanout.Each(ctx, steps, len(steps), func(ctx context.Context, step func(context.Context) error) error {
		return step(ctx)
	})...)
}

// tagged asks the tagging API for resources whose tags match want and
// sorts their ids by kind; tags holds each id's tags.
func (inv *inventory) tagged(ctx context.Context, want map[string]string) (map[cloud.Kind][]string, map[string]map[string]string, error) {
	var filters []tagtypes.TagFilter
	for _, k := range slices.Sorted(maps.Keys(want)) {
		tf := tagtypes.TagFilter{Key: aws.String(k)}
		if v := want[k]; v != "" {
			tf.Values = []string{v}
		}
		filters = append(filters, tf)
	}
	byKind := map[cloud.Kind][]string{}
	tags := map[string]map[string]string{}
	p := resourcegroupstaggingapi.NewGetResourcesPaginator(inv.c.tag, &resourcegroupstaggingapi.GetResourcesInput{
		TagFilters: filters,
		// The most the API allows (the default is 50): fewer pages.
		ResourcesPerPage: aws.Int32(100),
		ResourceTypeFilters: []string{
			// Key pairs are listed by DescribeKeyPairs: the tagging API
			// names them by key pair id, DeleteKeyPair wants the name.
			"ec2:image", "ec2:snapshot", "ec2:instance", "ec2:volume", "ec2:security-group",
			"cloudformation:stack", "ssm:parameter",
		},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("tagging API: %w", classify(err))
		}
		for _, m := range page.ResourceTagMappingList {
			kind, id, ok := parseARN(aws.ToString(m.ResourceARN))
			if !ok {
				continue
			}
			byKind[kind] = append(byKind[kind], id)
			t := map[string]string{}
			for _, tag := range m.Tags {
				t[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			tags[id] = t
		}
	}
	return byKind, tags, nil
}

// parseARN maps a resource ARN to an asset kind and the id DeleteAsset
// takes: the EC2 id, the stack name, the parameter name.
func parseARN(arn string) (cloud.Kind, string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return "", "", false
	}
	service, res := parts[2], parts[5]
	typ, rest, _ := strings.Cut(res, "/")
	switch service {
	case "ec2":
		kinds := map[string]cloud.Kind{
			"image": cloud.KindImage, "snapshot": cloud.KindSnapshot, "instance": cloud.KindInstance,
			"volume": cloud.KindVolume, "security-group": cloud.KindSecurityGroup,
		}
		if k, ok := kinds[typ]; ok && rest != "" {
			return k, rest, true
		}
	case "cloudformation":
		if typ == "stack" {
			name, _, _ := strings.Cut(rest, "/")
			return cloud.KindStack, name, name != ""
		}
	case "ssm":
		if typ == "parameter" && rest != "" {
			// Hierarchical names keep their leading slash out of the ARN.
			if strings.Contains(rest, "/") {
				rest = "/" + rest
			}
			return cloud.KindParameter, rest, true
		}
	}
	return "", "", false
}

// maxFilterValues is the most values EC2 accepts in the filters of one
// call; above it the call fails with FilterLimitExceeded.
const maxFilterValues = 200

// images confirms the tagged images, and then in one batched scan the
// tagged snapshots and the snapshots behind the images (as children).
// Every describe asks for up to maxFilterValues ids at once: a call per
// image would make a scan of thousands of images slow and throttled.
func (inv *inventory) images(ctx context.Context, ids, taggedSnapshots []string) error {
	parents := map[string]string{} // snapshot id -> image id
	for batch := range slices.Chunk(ids, maxFilterValues) {
		ims, err := describeImages(ctx, inv.c.ec2, []string{"self"}, cloud.Filter{IDs: batch})
		if err != nil {
			return fmt.Errorf("confirm images: %w", err)
		}
		for _, im := range ims {
			if im.State == ec2types.ImageStateDeregistered {
				continue
			}
			id := aws.ToString(im.ImageId)
			inv.add(cloud.Asset{Kind: cloud.KindImage, ID: id, State: string(im.State),
				Created: parseTime(aws.ToString(im.CreationDate)), Tags: tagMap(im.Tags)})
			for _, s := range snapshotIDs(im) {
				parents[s] = id
			}
		}
	}
	return inv.snapshots(ctx, union(taggedSnapshots, parents), parents)
}

// snapshots confirms snapshots; parents marks those that are an image's.
func (inv *inventory) snapshots(ctx context.Context, ids []string, parents map[string]string) error {
	for batch := range slices.Chunk(ids, maxFilterValues) {
		p := ec2.NewDescribeSnapshotsPaginator(inv.c.ec2, &ec2.DescribeSnapshotsInput{
			OwnerIds: []string{"self"},
			Filters:  []ec2types.Filter{filter("snapshot-id", batch...)},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("confirm snapshots: %w", classify(err))
			}
			for _, s := range page.Snapshots {
				id := aws.ToString(s.SnapshotId)
				inv.add(cloud.Asset{Kind: cloud.KindSnapshot, ID: id, State: string(s.State),
					Created: aws.ToTime(s.StartTime), Tags: tagMap(s.Tags), Parent: parents[id]})
			}
		}
	}
	return nil
}

// union returns the ids in tagged and the keys of children, sorted, each
// once.
func union(tagged []string, children map[string]string) []string {
	out := slices.Concat(tagged, slices.Collect(maps.Keys(children)))
	slices.Sort(out)
	return slices.Compact(out)
}

// instances confirms the tagged instances, then in one batched scan the
// tagged volumes and those attached to the instances (as children).
func (inv *inventory) instances(ctx context.Context, ids, taggedVolumes []string) error {
	parents := map[string]string{} // volume id -> instance id
	for batch := range slices.Chunk(ids, maxFilterValues) {
		insts, err := describeInstances(ctx, inv.c, nil, batch...)
		if err != nil {
			return fmt.Errorf("confirm instances: %w", err)
		}
		for _, inst := range insts {
			if instanceState(inst) == ec2types.InstanceStateNameTerminated {
				continue
			}
			id := aws.ToString(inst.InstanceId)
			inv.add(cloud.Asset{Kind: cloud.KindInstance, ID: id, State: string(instanceState(inst)),
				Created: aws.ToTime(inst.LaunchTime), Tags: tagMap(inst.Tags)})
			for _, m := range inst.BlockDeviceMappings {
				if m.Ebs != nil && aws.ToString(m.Ebs.VolumeId) != "" {
					parents[aws.ToString(m.Ebs.VolumeId)] = id
				}
			}
		}
	}
	return inv.volumes(ctx, union(taggedVolumes, parents), parents)
}

// volumes confirms volumes; parents marks those that are an instance's.
func (inv *inventory) volumes(ctx context.Context, ids []string, parents map[string]string) error {
	for batch := range slices.Chunk(ids, maxFilterValues) {
		p := ec2.NewDescribeVolumesPaginator(inv.c.ec2, &ec2.DescribeVolumesInput{
			Filters: []ec2types.Filter{filter("volume-id", batch...)},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("confirm volumes: %w", classify(err))
			}
			for _, v := range page.Volumes {
				id := aws.ToString(v.VolumeId)
				inv.add(cloud.Asset{Kind: cloud.KindVolume, ID: id, State: string(v.State),
					Created: aws.ToTime(v.CreateTime), Tags: tagMap(v.Tags), Parent: parents[id]})
			}
		}
	}
	return nil
}

func (inv *inventory) groups(ctx context.Context, ids []string) error {
	for batch := range slices.Chunk(ids, maxFilterValues) {
		out, err := inv.c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
			Filters: []ec2types.Filter{filter("group-id", batch...)},
		})
		if err != nil {
			return fmt.Errorf("confirm security groups: %w", classify(err))
		}
		for _, g := range out.SecurityGroups {
			inv.add(cloud.Asset{Kind: cloud.KindSecurityGroup, ID: aws.ToString(g.GroupId), Tags: tagMap(g.Tags)})
		}
	}
	return nil
}

// keyPairs lists key pairs by tag directly: not every tagging API answers
// for them. Their id is the key name.
func (inv *inventory) keyPairs(ctx context.Context, want map[string]string) error {
	if len(want) == 0 {
		return nil
	}
	out, err := inv.c.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: tagFilters(want)})
	if err != nil {
		return fmt.Errorf("list key pairs: %w", classify(err))
	}
	for _, k := range out.KeyPairs {
		inv.add(cloud.Asset{Kind: cloud.KindKeyPair, ID: aws.ToString(k.KeyName), Created: aws.ToTime(k.CreateTime), Tags: tagMap(k.Tags)})
	}
	return nil
}

func (inv *inventory) stacks(ctx context.Context, names []string, tags map[string]map[string]string) error {
	for _, name := range names {
		st, ok, err := describeStack(ctx, inv.c, name)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		t := map[string]string{}
		for _, tag := range st.Tags {
			t[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		inv.add(cloud.Asset{Kind: cloud.KindStack, ID: name, State: string(st.StackStatus), Created: aws.ToTime(st.CreationTime), Tags: t})
		if err := inv.stackChildren(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// stackKinds maps CloudFormation resource types to asset kinds.
var stackKinds = map[string]cloud.Kind{
	"AWS::EC2::Instance":      cloud.KindInstance,
	"AWS::EC2::KeyPair":       cloud.KindKeyPair,
	"AWS::EC2::SecurityGroup": cloud.KindSecurityGroup,
	"AWS::EC2::Volume":        cloud.KindVolume,
	"AWS::SSM::Parameter":     cloud.KindParameter,
}

func (inv *inventory) stackChildren(ctx context.Context, name string) error {
	res, err := stackResources(ctx, inv.c, name)
	if err != nil {
		return err
	}
	retain, err := retainedResources(ctx, inv.c, name)
	if err != nil {
		return err
	}
	for _, r := range res {
		kind, ok := stackKinds[aws.ToString(r.ResourceType)]
		id := aws.ToString(r.PhysicalResourceId)
		if !ok || id == "" {
			continue
		}
		inv.addStackResource(cloud.Asset{Kind: kind, ID: id, State: string(r.ResourceStatus), Parent: name,
			Retain: retain[aws.ToString(r.LogicalResourceId)]})
	}
	return nil
}

func (inv *inventory) parameters(ctx context.Context, names []string, tags map[string]map[string]string) error {
	for _, name := range names {
		p, ok, err := getParameter(ctx, inv.c, name)
		if err != nil {
			return err
		}
		if !ok && !strings.HasPrefix(name, "/") {
			// A one-level name with a leading slash has the same ARN.
			p, ok, err = getParameter(ctx, inv.c, "/"+name)
			if err != nil {
				return err
			}
		}
		if !ok {
			continue
		}
		inv.add(cloud.Asset{Kind: cloud.KindParameter, ID: aws.ToString(p.Name),
			Created: aws.ToTime(p.LastModifiedDate), Tags: tags[name]})
	}
	return nil
}

func (inv *inventory) exports(ctx context.Context, want map[string]string) error {
	if inv.b.cfg.ExportBucket == "" || len(want) == 0 {
		return nil
	}
	objs, err := listExports(ctx, inv.c, inv.b.cfg.ExportBucket, inv.b.cfg.ExportPrefix)
	if errors.Is(err, errOtherRegion) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, o := range objs {
		if cloud.Match(o.tags, want) {
			format := strings.TrimPrefix(path.Ext(o.location), ".")
			inv.add(cloud.Asset{Kind: cloud.KindExport, ID: o.location, Created: o.modified, Tags: o.tags,
				Exports: []cloud.Export{{Format: format, Location: o.location, Size: o.size}}})
		}
	}
	return nil
}
