package awstest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// What a teardown meets on AWS that the CloudFormation overlay (cfn.go,
// EmulateStackFailures: DELETE_FAILED, termination protection) does not
// cover, served by the stub:
//
//   - A late writer: OnDeleteStack calls a test's function at each
//     DeleteStack, before the overlay looks at the stack's buckets, so a
//     bucket emptied before the delete can be full again when it runs.
//   - The tag index (Resource Groups Tagging API) lists resources for an
//     hour or more after they are deleted; moto never does. AddStale makes
//     GetResources list such entries.

// teardownState is the stub's state for the behaviours above.
type teardownState struct {
	onDelete func(region, stack string)
	stale    []staleEntry
}

type staleEntry struct {
	region, arn string
	tags        map[string]string
}

func (s *Stub) td() *teardownState {
	if s.teardown == nil {
		s.teardown = &teardownState{}
	}
	return s.teardown
}

// OnDeleteStack calls fn with the stack's name at each DeleteStack of a
// live stack that is not protected, before the stub looks at the stack's
// buckets: a test's late writer.
func (s *Stub) OnDeleteStack(fn func(region, stack string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.td().onDelete = fn
}

// onDeleteStack runs the function OnDeleteStack set, if any.
func (s *Stub) onDeleteStack(region, stack string) {
	s.mu.Lock()
	var fn func(region, stack string)
	if s.teardown != nil {
		fn = s.teardown.onDelete
	}
	s.mu.Unlock()
	if fn != nil {
		fn(region, stack)
	}
}

// AddStale makes GetResources in region list arn with tags, as the tag
// index of AWS does for a while after the resource is deleted.
func (s *Stub) AddStale(region, arn string, tags map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.td().stale = append(s.td().stale, staleEntry{region: region, arn: arn, tags: tags})
}

// serveTeardown answers GetResources when stale entries were added; it
// reports whether it did.
func (s *Stub) serveTeardown(w http.ResponseWriter, r *http.Request, c Call, body []byte) bool {
	if c.Service != "tagging" || c.Action != "GetResources" {
		return false
	}
	s.mu.Lock()
	var stale []staleEntry
	if s.teardown != nil {
		stale = slices.Clone(s.teardown.stale)
	}
	s.mu.Unlock()
	if len(stale) == 0 {
		return false
	}
	s.forward(w, r, body, func(out []byte) []byte { return addStale(out, body, c.Region, stale) })
	return true
}

// addStale appends the stale entries that match a GetResources request
// (its tag filters, its region) to the last page of the answer.
func addStale(out, body []byte, region string, stale []staleEntry) []byte {
	var req struct {
		TagFilters []struct {
			Key    string
			Values []string
		}
		ResourceTypeFilters []string
	}
	json.Unmarshal(body, &req)
	var resp map[string]any
	if json.Unmarshal(out, &resp) != nil {
		return out
	}
	if tok, _ := resp["PaginationToken"].(string); tok != "" {
		return out
	}
	list, _ := resp["ResourceTagMappingList"].([]any)
	for _, e := range stale {
		if e.region != region || !matchFilters(e.tags, req.TagFilters) || !matchTypes(e.arn, req.ResourceTypeFilters) {
			continue
		}
		var tags []map[string]string
		for _, k := range sortedKeys(e.tags) {
			tags = append(tags, map[string]string{"Key": k, "Value": e.tags[k]})
		}
		list = append(list, map[string]any{"ResourceARN": e.arn, "Tags": tags})
	}
	resp["ResourceTagMappingList"] = list
	patched, err := json.Marshal(resp)
	if err != nil {
		return out
	}
	return patched
}

func matchFilters(tags map[string]string, filters []struct {
	Key    string
	Values []string
}) bool {
	for _, f := range filters {
		v, ok := tags[f.Key]
		if !ok || len(f.Values) > 0 && !slices.Contains(f.Values, v) {
			return false
		}
	}
	return true
}

// matchTypes reports whether arn is of one of the types ("s3",
// "ec2:snapshot") a GetResources request filters on; no filter matches
// everything.
func matchTypes(arn string, types []string) bool {
	if len(types) == 0 {
		return true
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return false
	}
	typ, _, _ := strings.Cut(parts[5], "/")
	typ, _, _ = strings.Cut(typ, ":")
	for _, t := range types {
		if t == parts[2] || t == parts[2]+":"+typ {
			return true
		}
	}
	return false
}
