package awsunit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
)

// Instance is the instance unit kind: Count EC2 instances booted from the
// deployment's image, one per slot, tagged at creation. A change of the
// unit (a new image, type, user data, token) replaces them: the new ones
// are started and running before the old ones are terminated.
type Instance struct {
	o  Options
	cc *clientCache
}

var _ deploy.UnitKind = (*Instance)(nil)

// NewInstance returns the instance kind.
func NewInstance(o Options) *Instance { return &Instance{o: o, cc: newClientCache(o.Config)} }

// Instance tags besides Unit.Tags.
const (
	tagSlot    = "kiln:slot"    // the instance's place, 0 to count-1
	tagSpec    = "kiln:spec"    // digest of the settings EC2 does not show (user data)
	tagRetired = "kiln:retired" // "true": kiln terminated it (a replaced or destroyed unit)
)

// maxUserData is EC2's limit on user data before base64.
const maxUserData = 16 << 10

var liveStates = []string{"pending", "running", "stopping", "stopped"}

// ispec is what the unit's instances should be.
type ispec struct {
	name     string
	image    string
	typ      string
	count    int
	subnet   string
	groups   []string
	userData string // base64
	digest   string
}

func ispecOf(u deploy.Unit) (*ispec, error) {
	if u.Config == nil || u.Config.Instance == nil {
		return nil, cloud.Mark(fmt.Errorf("unit %s is not an instance unit", u.Name), cloud.ErrInvalid)
	}
	name, err := physicalName(u)
	if err != nil {
		return nil, err
	}
	cfg := u.Config.Instance
	if u.Image.ID == "" {
		return nil, cloud.Mark(fmt.Errorf("unit %s: no image in %s", u.Name, u.Region), cloud.ErrInvalid)
	}
	s := &ispec{name: name, image: u.Image.ID, typ: cfg.InstanceType, count: max(cfg.Count, 1), subnet: cfg.SubnetID, groups: cfg.SecurityGroups}
	var data []byte
	if cfg.UserData != "" {
		path := cfg.UserData
		if !filepath.IsAbs(path) && u.Dir != "" {
			path = filepath.Join(u.Dir, path)
		}
		if data, err = os.ReadFile(path); err != nil {
			return nil, cloud.Mark(fmt.Errorf("unit %s: instance.user_data: %w", u.Name, err), cloud.ErrInvalid)
		}
		if len(data) > maxUserData {
			return nil, cloud.Mark(fmt.Errorf("unit %s: instance.user_data %s is %d bytes; EC2 takes at most %d", u.Name, path, len(data), maxUserData), cloud.ErrInvalid)
		}
		s.userData = base64.StdEncoding.EncodeToString(data)
	}
	sum := sha256.Sum256(data)
	s.digest = hex.EncodeToString(sum[:8])
	return s, nil
}

func ec2Filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

// tagFilters selects by tags: an empty value matches any value.
func tagFilters(tags map[string]string) []ec2types.Filter {
	var out []ec2types.Filter
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if tags[k] == "" {
			out = append(out, ec2Filter("tag-key", k))
		} else {
			out = append(out, ec2Filter("tag:"+k, tags[k]))
		}
	}
	return out
}

func ec2Tags(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// instances lists the instances matching filters.
func instances(ctx context.Context, c *clients, filters []ec2types.Filter) ([]ec2types.Instance, error) {
	var out []ec2types.Instance
	p := ec2.NewDescribeInstancesPaginator(c.ec2, &ec2.DescribeInstancesInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances in %s: %w", c.region, classify(err))
		}
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
	}
	// Oldest first, then by id: every process picks the same one to keep.
	slices.SortFunc(out, func(a, b ec2types.Instance) int {
		if c := aws.ToTime(a.LaunchTime).Compare(aws.ToTime(b.LaunchTime)); c != 0 {
			return c
		}
		return strings.Compare(aws.ToString(a.InstanceId), aws.ToString(b.InstanceId))
	})
	return out, nil
}

// unitInstances lists the unit's instances in states (all when none).
func unitInstances(ctx context.Context, c *clients, u deploy.Unit, states ...string) ([]ec2types.Instance, error) {
	f := tagFilters(scope(u))
	if len(states) > 0 {
		f = append(f, ec2Filter("instance-state-name", states...))
	}
	return instances(ctx, c, f)
}

// current reports whether an instance is one of the unit's as it should
// be: at its token and spec, in one of its slots, not retired.
func (s *ispec) current(i ec2types.Instance, token string) (slot int, ok bool) {
	t := ec2Tags(i.Tags)
	slot, err := strconv.Atoi(t[tagSlot])
	return slot, err == nil && slot >= 0 && slot < s.count && t[tagToken] == token && t[tagSpec] == s.digest && t[tagRetired] != "true"
}

// Plan compares the unit's live instances with what it should be.
func (k *Instance) Plan(ctx context.Context, u deploy.Unit) (deploy.UnitPlan, error) {
	sp, err := ispecOf(u)
	if err != nil {
		return deploy.UnitPlan{}, err
	}
	c, err := k.cc.region(u.Region)
	if err != nil {
		return deploy.UnitPlan{}, err
	}
	live, err := unitInstances(ctx, c, u, liveStates...)
	if err != nil {
		return deploy.UnitPlan{}, err
	}
	live = slices.DeleteFunc(live, func(i ec2types.Instance) bool { return ec2Tags(i.Tags)[tagRetired] == "true" })
	if len(live) == 0 {
		return deploy.UnitPlan{Action: deploy.ActionCreate, Changes: []string{
			fmt.Sprintf("launch %d %s instance(s) of %s", sp.count, sp.typ, sp.image),
		}}, nil
	}
	slots, stopped, others := map[int]bool{}, 0, 0
	for _, i := range live {
		if slot, ok := sp.current(i, u.Token); ok {
			slots[slot] = true
			if i.State.Name != ec2types.InstanceStateNameRunning && i.State.Name != ec2types.InstanceStateNamePending {
				stopped++
			}
		} else {
			others++
		}
	}
	if len(slots) == sp.count && others == 0 {
		if stopped > 0 {
			return deploy.UnitPlan{Action: deploy.ActionStart, Changes: []string{fmt.Sprintf("start %d stopped instance(s)", stopped)}}, nil
		}
		return deploy.UnitPlan{Action: deploy.ActionNone}, nil
	}
	return deploy.UnitPlan{Action: deploy.ActionReplace, Changes: replaceChanges(live, sp, u.Token)}, nil
}

// replaceChanges says how the live instances differ from the spec.
func replaceChanges(live []ec2types.Instance, sp *ispec, token string) []string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	n := 0
	for _, i := range live {
		if _, ok := sp.current(i, token); ok {
			continue
		}
		n++
		t := ec2Tags(i.Tags)
		if img := aws.ToString(i.ImageId); img != sp.image {
			add(fmt.Sprintf("image %s -> %s", img, sp.image))
		}
		if typ := string(i.InstanceType); typ != sp.typ {
			add(fmt.Sprintf("instance type %s -> %s", typ, sp.typ))
		}
		if t[tagSpec] != sp.digest {
			add("user data changed")
		}
		if slot, err := strconv.Atoi(t[tagSlot]); err == nil && slot >= sp.count {
			add(fmt.Sprintf("count -> %d", sp.count))
		}
		if t[tagToken] != token {
			add(fmt.Sprintf("unit token %s -> %s", orNone(t[tagToken]), token))
		}
	}
	return append(out, fmt.Sprintf("launch %d new instance(s), then terminate %d old", sp.count, n))
}

// Apply launches the instances the unit lacks (one per empty slot, with a
// client token from the unit's token, the slot and the attempt), keeps the
// oldest where concurrent applies launched two for one slot, starts
// stopped ones, waits until all run, and only then terminates the old
// ones.
func (k *Instance) Apply(ctx context.Context, u deploy.Unit) (deploy.UnitStatus, error) {
	sp, err := ispecOf(u)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	c, err := k.cc.region(u.Region)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	for slot := 0; slot < sp.count; slot++ {
		live, err := unitInstances(ctx, c, u, liveStates...)
		if err != nil {
			return deploy.UnitStatus{}, err
		}
		if !slices.ContainsFunc(live, func(i ec2types.Instance) bool { s, ok := sp.current(i, u.Token); return ok && s == slot }) {
			if err := k.launch(ctx, c, u, sp, slot); err != nil {
				return deploy.UnitStatus{}, err
			}
		}
	}
	live, err := unitInstances(ctx, c, u, liveStates...)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	keep, old := map[int]ec2types.Instance{}, []ec2types.Instance{}
	for _, i := range live {
		if slot, ok := sp.current(i, u.Token); ok {
			if _, dup := keep[slot]; !dup {
				keep[slot] = i
				continue
			}
		}
		old = append(old, i)
	}
	if len(keep) != sp.count {
		return deploy.UnitStatus{}, cloud.Mark(fmt.Errorf("unit %s in %s: %d of %d instances found after launching; deploy again", sp.name, c.region, len(keep), sp.count), cloud.ErrNotYet)
	}
	var ids []string
	for _, slot := range slices.Sorted(maps.Keys(keep)) {
		ids = append(ids, aws.ToString(keep[slot].InstanceId))
	}
	if err := setRunning(ctx, k.o, c, ids, true); err != nil {
		return deploy.UnitStatus{}, err
	}
	if err := k.retire(ctx, c, sp.name, old); err != nil {
		return deploy.UnitStatus{}, err
	}
	return k.Status(ctx, u)
}

// launch starts the instance of one slot, tagged (instance and volumes)
// at creation. EC2 answers a client token it has seen with that call's
// instance, even one terminated since (killed behind kiln's back); then
// the next attempt's token is used.
func (k *Instance) launch(ctx context.Context, c *clients, u deploy.Unit, sp *ispec, slot int) error {
	tags := u.WithTags(map[string]string{
		tagSlot: strconv.Itoa(slot), tagToken: u.Token, tagSpec: sp.digest,
		"Name": fmt.Sprintf("%s-%d", sp.name, slot),
	})
	var ts []ec2types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	for attempt := 0; attempt < 4; attempt++ {
		in := &ec2.RunInstancesInput{
			ImageId: aws.String(sp.image), InstanceType: ec2types.InstanceType(sp.typ),
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			ClientToken: aws.String(cloud.Token(u.Token, sp.digest, strconv.Itoa(slot), strconv.Itoa(attempt))),
			TagSpecifications: []ec2types.TagSpecification{
				{ResourceType: ec2types.ResourceTypeInstance, Tags: ts},
				{ResourceType: ec2types.ResourceTypeVolume, Tags: ts},
			},
			MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired},
		}
		if sp.userData != "" {
			in.UserData = aws.String(sp.userData)
		}
		if sp.subnet != "" {
			in.SubnetId = aws.String(sp.subnet)
		}
		if len(sp.groups) > 0 {
			in.SecurityGroupIds = sp.groups
		}
		out, err := c.ec2.RunInstances(ctx, in)
		if isCode(err, "IdempotentParameterMismatch") {
			continue
		}
		if err != nil {
			return fmt.Errorf("launch %s slot %d in %s: %w", sp.name, slot, c.region, classify(err))
		}
		if len(out.Instances) == 0 {
			return fmt.Errorf("launch %s slot %d in %s: no instance in the answer", sp.name, slot, c.region)
		}
		i := out.Instances[0]
		if st := i.State; st != nil && (st.Name == ec2types.InstanceStateNameTerminated || st.Name == ec2types.InstanceStateNameShuttingDown) {
			continue
		}
		k.o.log().Info("instance launched", "unit", sp.name, "slot", slot, "region", c.region, "instance", aws.ToString(i.InstanceId))
		k.o.hook("instance %s slot %d launched", sp.name, slot)
		return nil
	}
	return fmt.Errorf("launch %s slot %d in %s: every client token answered with a terminated instance", sp.name, slot, c.region)
}

// retire tags instances as kiln's to end, terminates them and waits until
// they are gone. Terminated ones are tagged too (best effort), so that
// Status does not take them for instances killed behind kiln's back.
func (k *Instance) retire(ctx context.Context, c *clients, name string, insts []ec2types.Instance) error {
	var ids, live []string
	for _, i := range insts {
		id := aws.ToString(i.InstanceId)
		if ec2Tags(i.Tags)[tagRetired] != "true" {
			ids = append(ids, id)
		}
		if slices.Contains(liveStates, string(i.State.Name)) {
			live = append(live, id)
		}
	}
	if len(ids) > 0 {
		_, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: []ec2types.Tag{{Key: aws.String(tagRetired), Value: aws.String("true")}}})
		if err != nil && len(live) > 0 {
			return fmt.Errorf("tag instances %s of %s in %s as retired: %w", strings.Join(ids, ", "), name, c.region, classify(err))
		}
	}
	if len(live) == 0 {
		return nil
	}
	k.o.hook("instance %s terminate %d", name, len(live))
	if _, err := c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: live}); err != nil {
		return fmt.Errorf("terminate instances %s of %s in %s: %w", strings.Join(live, ", "), name, c.region, classify(err))
	}
	return k.o.wait(ctx, fmt.Sprintf("instances %s in %s to terminate", strings.Join(live, ", "), c.region), func(ctx context.Context) (bool, error) {
		out, err := instances(ctx, c, []ec2types.Filter{ec2Filter("instance-id", live...), ec2Filter("instance-state-name", append(slices.Clone(liveStates), "shutting-down")...)})
		return len(out) == 0, err
	})
}

// Status reads the unit's instances: absent when it has none (or only ones
// kiln retired), failed when one was terminated or stopped behind kiln's
// back, else running, stopped or pending as they all are.
func (k *Instance) Status(ctx context.Context, u deploy.Unit) (deploy.UnitStatus, error) {
	if _, err := physicalName(u); err != nil {
		return deploy.UnitStatus{}, err
	}
	c, err := k.cc.region(u.Region)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	all, err := unitInstances(ctx, c, u)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	out := deploy.UnitStatus{Outputs: map[string]string{}, Drift: []string{}}
	bySlot := map[int]ec2types.Instance{}
	var killed []string
	tokens := map[string]bool{}
	for _, i := range all {
		t := ec2Tags(i.Tags)
		if t[tagRetired] == "true" {
			continue
		}
		slot, _ := strconv.Atoi(t[tagSlot])
		if !slices.Contains(liveStates, string(i.State.Name)) {
			why := ""
			if i.StateReason != nil {
				why = " (" + aws.ToString(i.StateReason.Message) + ")"
			}
			killed = append(killed, fmt.Sprintf("instance %s (slot %d) was %s outside kiln%s", aws.ToString(i.InstanceId), slot, i.State.Name, why))
			continue
		}
		tokens[t[tagToken]] = true
		if _, dup := bySlot[slot]; !dup {
			bySlot[slot] = i
		}
	}
	if len(bySlot) == 0 {
		if len(killed) == 0 {
			out.State = deploy.UnitAbsent
			return out, nil
		}
		out.State, out.Problem = deploy.UnitFailed, strings.Join(killed, "; ")
		return out, nil
	}
	if len(tokens) == 1 {
		for t := range tokens {
			out.Token = t
		}
	}
	want := len(bySlot)
	if u.Config != nil && u.Config.Instance != nil {
		want = max(u.Config.Instance.Count, 1)
	}
	count := map[ec2types.InstanceStateName]int{}
	var ids, private, public []string
	for _, slot := range slices.Sorted(maps.Keys(bySlot)) {
		i := bySlot[slot]
		count[i.State.Name]++
		ids = append(ids, aws.ToString(i.InstanceId))
		private = append(private, aws.ToString(i.PrivateIpAddress))
		public = append(public, aws.ToString(i.PublicIpAddress))
		if miss := missingTags(ec2Tags(i.Tags), u.Tags); len(miss) > 0 {
			out.Drift = append(out.Drift, fmt.Sprintf("instance %s lacks the tags %s", aws.ToString(i.InstanceId), strings.Join(slices.Sorted(maps.Keys(miss)), ", ")))
		}
	}
	first := bySlot[slices.Min(slices.Collect(maps.Keys(bySlot)))]
	out.Outputs["id"] = aws.ToString(first.InstanceId)
	out.Outputs["private_ip"] = aws.ToString(first.PrivateIpAddress)
	out.Outputs["public_ip"] = aws.ToString(first.PublicIpAddress)
	out.Outputs["public_dns"] = aws.ToString(first.PublicDnsName)
	out.Outputs["ids"] = strings.Join(ids, ",")
	out.Outputs["private_ips"] = strings.Join(private, ",")
	out.Outputs["public_ips"] = strings.Join(public, ",")
	n := len(bySlot)
	switch {
	case n < want && len(killed) > 0:
		out.State, out.Problem = deploy.UnitFailed, strings.Join(killed, "; ")
	case n < want:
		out.State, out.Problem = deploy.UnitFailed, fmt.Sprintf("%d of %d instances exist", n, want)
	case count[ec2types.InstanceStateNameRunning] == n:
		out.State = deploy.UnitRunning
	case count[ec2types.InstanceStateNameStopped] == n:
		out.State = deploy.UnitStopped
	case count[ec2types.InstanceStateNamePending]+count[ec2types.InstanceStateNameStopping] > 0:
		out.State = deploy.UnitPending
	default:
		out.State, out.Problem = deploy.UnitFailed, fmt.Sprintf("%d of %d instances are stopped, the others run", count[ec2types.InstanceStateNameStopped], n)
	}
	return out, nil
}

// SetRunning stops or starts the unit's instances and waits.
func (k *Instance) SetRunning(ctx context.Context, u deploy.Unit, running bool) error {
	name, c, err := k.cc.unit(u)
	if err != nil {
		return err
	}
	live, err := unitInstances(ctx, c, u, liveStates...)
	if err != nil {
		return err
	}
	var ids []string
	for _, i := range live {
		if ec2Tags(i.Tags)[tagRetired] != "true" {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	if len(ids) == 0 {
		return cloud.Mark(fmt.Errorf("unit %s in %s has no instances", name, c.region), cloud.ErrNotFound)
	}
	return setRunning(ctx, k.o, c, ids, running)
}

// Resources lists the instances in region whose tags match, and their
// volumes (Parent the instance). A volume attached to none of them is
// not an instance unit's: a stack's volume is the stack kind's, and a
// volume left over from a terminated instance is found by its tags.
func (k *Instance) Resources(ctx context.Context, region string, tags map[string]string) ([]deploy.Resource, error) {
	c, err := k.cc.region(region)
	if err != nil {
		return nil, err
	}
	f := tagFilters(tags)
	insts, err := instances(ctx, c, append(slices.Clone(f), ec2Filter("instance-state-name", append(slices.Clone(liveStates), "shutting-down")...)))
	if err != nil {
		return nil, err
	}
	out := []deploy.Resource{}
	listed := map[string]bool{}
	for _, i := range insts {
		listed[aws.ToString(i.InstanceId)] = true
		t := ec2Tags(i.Tags)
		out = append(out, deploy.Resource{
			Type: "AWS::EC2::Instance", ID: aws.ToString(i.InstanceId), Region: region, Tags: t,
			Retain: t[cloud.TagRetain] == "true", Created: aws.ToTime(i.LaunchTime).UTC().Truncate(time.Second),
		})
	}
	p := ec2.NewDescribeVolumesPaginator(c.ec2, &ec2.DescribeVolumesInput{
		Filters: append(f, ec2Filter("status", "creating", "available", "in-use")),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe volumes in %s: %w", region, classify(err))
		}
		for _, v := range page.Volumes {
			t := ec2Tags(v.Tags)
			r := deploy.Resource{
				Type: "AWS::EC2::Volume", ID: aws.ToString(v.VolumeId), Region: region, Tags: t,
				Retain: t[cloud.TagRetain] == "true", Created: aws.ToTime(v.CreateTime).UTC().Truncate(time.Second),
			}
			for _, a := range v.Attachments {
				if listed[aws.ToString(a.InstanceId)] {
					r.Parent = aws.ToString(a.InstanceId)
				}
			}
			if r.Parent != "" {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Destroy terminates the unit's instances and waits until they are gone;
// their volumes go with them where the image says so (DeleteOnTermination).
func (k *Instance) Destroy(ctx context.Context, u deploy.Unit) error {
	name, c, err := k.cc.unit(u)
	if err != nil {
		return err
	}
	all, err := unitInstances(ctx, c, u)
	if err != nil {
		return err
	}
	return k.retire(ctx, c, name, all)
}
