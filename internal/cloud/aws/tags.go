package aws

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// withTags returns a new map holding base overlaid with each of more.
func withTags(base map[string]string, more ...map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	for _, m := range more {
		maps.Copy(out, m)
	}
	return out
}

// checkTags refuses tags AWS would refuse, naming the offending key.
func checkTags(tags map[string]string) error {
	if len(tags) > 50 {
		return cloud.Mark(fmt.Errorf("%d tags: AWS allows 50 per resource", len(tags)), cloud.ErrInvalid)
	}
	for k, v := range tags {
		switch {
		case k == "":
			return cloud.Mark(fmt.Errorf("empty tag key"), cloud.ErrInvalid)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return cloud.Mark(fmt.Errorf("tag key %q: the aws: prefix is reserved", k), cloud.ErrInvalid)
		case len(k) > 128:
			return cloud.Mark(fmt.Errorf("tag key %q: longer than 128 characters", k), cloud.ErrInvalid)
		case len(v) > 256:
			return cloud.Mark(fmt.Errorf("tag %q value: longer than 256 characters", k), cloud.ErrInvalid)
		}
	}
	return nil
}

// ec2Tags converts a map to EC2 tags, sorted by key for stable requests.
func ec2Tags(m map[string]string) []ec2types.Tag {
	out := make([]ec2types.Tag, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// tagMap converts EC2 tags to a map.
func tagMap(tags []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// tagSpecs tags each resource type with tags at creation.
func tagSpecs(tags map[string]string, kinds ...ec2types.ResourceType) []ec2types.TagSpecification {
	out := make([]ec2types.TagSpecification, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, ec2types.TagSpecification{ResourceType: k, Tags: ec2Tags(tags)})
	}
	return out
}

// tagFilters turns a tag match into EC2 filters: tag:KEY=VALUE, or tag-key
// when any value matches.
func tagFilters(want map[string]string) []ec2types.Filter {
	var out []ec2types.Filter
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if v := want[k]; v != "" {
			out = append(out, ec2types.Filter{Name: aws.String("tag:" + k), Values: []string{v}})
		} else {
			out = append(out, ec2types.Filter{Name: aws.String("tag-key"), Values: []string{k}})
		}
	}
	return out
}

// missingTags returns the pairs of want that have do not hold in got.
func missingTags(got, want map[string]string) map[string]string {
	miss := map[string]string{}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			miss[k] = v
		}
	}
	return miss
}

func filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}
