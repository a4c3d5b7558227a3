package awstest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// What AWS does on a teardown and moto does not, served by the stub:
//
//   - DeleteStack of a stack whose bucket still holds objects: moto
//     answers DELETE_COMPLETE and leaves the bucket behind; AWS ends in
//     DELETE_FAILED, naming the bucket and the reason, and keeps the
//     stack. With StrictStackDeletes the stub checks every bucket the
//     stack would delete (not those it retains) and, when one is not
//     empty, answers DeleteStack as AWS does and then shows the stack in
//     DELETE_FAILED, its bucket with the reason, until the next
//     DeleteStack.
//   - Termination protection: moto stores it at CreateStack but answers
//     UpdateTerminationProtection with 500 and deletes a protected stack.
//     With StrictStackDeletes the stub keeps what UpdateTerminationProtection
//     sets, DescribeStacks shows it, and DeleteStack of a protected stack
//     is a ValidationError, as on AWS.
//   - The tag index (Resource Groups Tagging API) lists resources for an
//     hour or more after they are deleted; moto never does. AddStale makes
//     GetResources list such entries.
//
// Branch awsunit's cfn.go (EmulateStackFailures) serves the DELETE_FAILED
// and termination protection behaviours too; once both are merged, the
// teardown tests can use it and these two parts can go.

// teardownState is the stub's state for the behaviours above.
type teardownState struct {
	strict bool
	// failed maps a stack's id to why its last delete failed; ids maps
	// stack names to ids.
	failed   map[string]stackFailure
	ids      map[string]string
	onDelete func(region, stack string)
	stale    []staleEntry
	// protection is what UpdateTerminationProtection set, by stack id.
	protection map[string]bool
}

type stackFailure struct {
	logicalID, physicalID, reason string
}

type staleEntry struct {
	region, arn string
	tags        map[string]string
}

func (s *Stub) td() *teardownState {
	if s.teardown == nil {
		s.teardown = &teardownState{failed: map[string]stackFailure{}, ids: map[string]string{}, protection: map[string]bool{}}
	}
	return s.teardown
}

// StrictStackDeletes makes DeleteStack fail as on AWS when a bucket the
// stack would delete is not empty (see above).
func (s *Stub) StrictStackDeletes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.td().strict = true
}

// OnDeleteStack calls fn at each DeleteStack, before the stub looks at
// the stack's buckets: a test's late writer.
func (s *Stub) OnDeleteStack(fn func(region, stack string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.td().onDelete = fn
}

// AddStale makes GetResources in region list arn with tags, as the tag
// index of AWS does for a while after the resource is deleted.
func (s *Stub) AddStale(region, arn string, tags map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.td().stale = append(s.td().stale, staleEntry{region: region, arn: arn, tags: tags})
}

// lookup returns the failure of the stack named or identified by key.
func (st *teardownState) lookup(key string) (stackFailure, bool) {
	if f, ok := st.failed[key]; ok {
		return f, true
	}
	f, ok := st.failed[st.ids[key]]
	return f, ok
}

// serveTeardown answers the calls above; it reports whether it did.
func (s *Stub) serveTeardown(w http.ResponseWriter, r *http.Request, c Call, body []byte) bool {
	s.mu.Lock()
	st := s.teardown
	s.mu.Unlock()
	if st == nil {
		return false
	}
	s.mu.Lock()
	strict := st.strict
	s.mu.Unlock()
	switch {
	case c.Service == "cloudformation" && c.Action == "DeleteStack" && strict:
		s.tdDeleteStack(w, r, c, body)
		return true
	case c.Service == "cloudformation" && c.Action == "UpdateTerminationProtection" && strict:
		s.tdUpdateProtection(w, c)
		return true
	case c.Service == "cloudformation" && (c.Action == "DescribeStacks" || c.Action == "DescribeStackResources"):
		s.mu.Lock()
		f, failed := st.lookup(c.Form.Get("StackName"))
		protection := maps.Clone(st.protection)
		s.mu.Unlock()
		if !failed && (c.Action != "DescribeStacks" || len(protection) == 0) {
			return false
		}
		s.forward(w, r, body, func(out []byte) []byte {
			if failed {
				out = patchFailure(c.Action, out, f)
			}
			if c.Action == "DescribeStacks" {
				out = patchProtection(out, protection)
			}
			return out
		})
		return true
	case c.Service == "tagging" && c.Action == "GetResources":
		s.mu.Lock()
		stale := slices.Clone(st.stale)
		s.mu.Unlock()
		if len(stale) == 0 {
			return false
		}
		s.forward(w, r, body, func(out []byte) []byte { return addStale(out, body, c.Region, stale) })
		return true
	}
	return false
}

// tdQuery sends a query-protocol request for service to moto as region.
func (s *Stub) tdQuery(region, service, version string, params url.Values) (int, []byte, error) {
	params.Set("Version", version)
	req, err := http.NewRequest(http.MethodPost, s.target+"/", strings.NewReader(params.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", scopeAuth(region, service))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// bucketHasObjects asks moto whether a bucket holds any object version or
// delete marker.
func (s *Stub) bucketHasObjects(region, bucket string) (bool, error) {
	req, err := http.NewRequest(http.MethodGet, s.target+"/"+url.PathEscape(bucket)+"?versions&max-keys=1", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", scopeAuth(region, "s3"))
	resp, err := s.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("list versions of %s: %s: %s", bucket, resp.Status, out)
	}
	return strings.Contains(string(out), "<Version>") || strings.Contains(string(out), "<DeleteMarker>"), nil
}

var (
	stackIDRE = regexp.MustCompile(`<StackId>([^<]+)</StackId>`)
	memberRE  = regexp.MustCompile(`(?s)<member>(.*?)</member>`)
	fieldRE   = func(name string) *regexp.Regexp { return regexp.MustCompile(`<` + name + `>([^<]*)</` + name + `>`) }
)

// stackProtection returns a stack's id and whether it is protected
// against deletion (what UpdateTerminationProtection set, else what moto
// stored at CreateStack); "" when moto does not know the stack.
func (s *Stub) stackProtection(region, name string) (string, bool, error) {
	status, out, err := s.tdQuery(region, "cloudformation", "2010-05-15", url.Values{"Action": {"DescribeStacks"}, "StackName": {name}})
	if err != nil || status != http.StatusOK {
		return "", false, err
	}
	m := stackIDRE.FindSubmatch(out)
	if m == nil {
		return "", false, nil
	}
	id := string(m[1])
	s.mu.Lock()
	on, set := s.teardown.protection[id]
	s.mu.Unlock()
	if !set {
		on = strings.Contains(string(out), "<EnableTerminationProtection>true</EnableTerminationProtection>")
	}
	return id, on, nil
}

// tdUpdateProtection is UpdateTerminationProtection (moto answers 500).
func (s *Stub) tdUpdateProtection(w http.ResponseWriter, c Call) {
	name := c.Form.Get("StackName")
	id, _, err := s.stackProtection(c.Region, name)
	switch {
	case err != nil:
		http.Error(w, "stub: "+err.Error(), http.StatusBadGateway)
		return
	case id == "":
		writeError(w, c, http.StatusBadRequest, "ValidationError", "Stack with id "+name+" does not exist")
		return
	}
	s.mu.Lock()
	s.teardown.protection[id] = c.Form.Get("EnableTerminationProtection") == "true"
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, `<UpdateTerminationProtectionResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><UpdateTerminationProtectionResult><StackId>`+
		esc(id)+`</StackId></UpdateTerminationProtectionResult><ResponseMetadata><RequestId>`+requestID()+`</RequestId></ResponseMetadata></UpdateTerminationProtectionResponse>`)
}

// patchProtection shows in a DescribeStacks answer the termination
// protection UpdateTerminationProtection set: the first
// EnableTerminationProtection after each stack's id (moto always writes
// it; a stack's tags are members too, so members are not split apart).
func patchProtection(out []byte, protection map[string]bool) []byte {
	text := string(out)
	for id, on := range protection {
		at := strings.Index(text, "<StackId>"+id+"</StackId>")
		if at < 0 {
			continue
		}
		loc := protRE.FindStringIndex(text[at:])
		if loc == nil {
			continue
		}
		text = text[:at+loc[0]] + fmt.Sprintf("<EnableTerminationProtection>%t</EnableTerminationProtection>", on) + text[at+loc[1]:]
	}
	return []byte(text)
}

var protRE = regexp.MustCompile(`<EnableTerminationProtection>[a-z]*</EnableTerminationProtection>`)

// tdDeleteStack is DeleteStack as AWS does it: a protected stack is
// refused; a stack whose bucket still holds objects ends in DELETE_FAILED.
func (s *Stub) tdDeleteStack(w http.ResponseWriter, r *http.Request, c Call, body []byte) {
	name := c.Form.Get("StackName")
	if _, on, err := s.stackProtection(c.Region, name); err != nil {
		http.Error(w, "stub: "+err.Error(), http.StatusBadGateway)
		return
	} else if on {
		writeError(w, c, http.StatusBadRequest, "ValidationError", "Stack ["+name+"] cannot be deleted while TerminationProtection is enabled")
		return
	}
	s.mu.Lock()
	fn := s.teardown.onDelete
	s.mu.Unlock()
	if fn != nil {
		fn(c.Region, name)
	}
	fail, id, err := s.stackFailure(c.Region, name)
	if err != nil {
		http.Error(w, "stub: "+err.Error(), http.StatusBadGateway)
		return
	}
	s.mu.Lock()
	delete(s.teardown.failed, id)
	if fail != nil {
		s.teardown.failed[id] = *fail
		// The stack's name, as its id has it: arn:...:stack/NAME/UUID.
		if parts := strings.Split(id, "/"); len(parts) == 3 {
			s.teardown.ids[parts[1]] = id
		}
	}
	s.mu.Unlock()
	if fail == nil {
		s.forward(w, r, body, nil)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, `<DeleteStackResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><ResponseMetadata><RequestId>`+requestID()+`</RequestId></ResponseMetadata></DeleteStackResponse>`)
}

// stackFailure returns why deleting the stack would fail (a bucket it
// does not retain is not empty), or nil; and the stack's id.
func (s *Stub) stackFailure(region, name string) (*stackFailure, string, error) {
	status, out, err := s.tdQuery(region, "cloudformation", "2010-05-15", url.Values{"Action": {"DescribeStackResources"}, "StackName": {name}})
	if err != nil || status != http.StatusOK {
		return nil, "", err // absent: moto answers DeleteStack itself
	}
	id := ""
	if m := stackIDRE.FindSubmatch(out); m != nil {
		id = string(m[1])
	}
	_, tpl, err := s.tdQuery(region, "cloudformation", "2010-05-15", url.Values{"Action": {"GetTemplate"}, "StackName": {name}})
	if err != nil {
		return nil, id, err
	}
	var doc struct {
		Body string `xml:"GetTemplateResult>TemplateBody"`
	}
	xml.Unmarshal(tpl, &doc)
	var t struct {
		Resources map[string]struct {
			DeletionPolicy string `yaml:"DeletionPolicy"`
		} `yaml:"Resources"`
	}
	yaml.Unmarshal([]byte(doc.Body), &t)
	for _, m := range memberRE.FindAllSubmatch(out, -1) {
		get := func(f string) string {
			if x := fieldRE(f).FindSubmatch(m[1]); x != nil {
				return string(x[1])
			}
			return ""
		}
		logical := get("LogicalResourceId")
		if get("ResourceType") != "AWS::S3::Bucket" || strings.HasPrefix(t.Resources[logical].DeletionPolicy, "Retain") {
			continue
		}
		full, err := s.bucketHasObjects(region, get("PhysicalResourceId"))
		if err != nil {
			return nil, id, err
		}
		if full {
			return &stackFailure{logicalID: logical, physicalID: get("PhysicalResourceId"),
				reason: "The bucket you tried to delete is not empty (Service: S3, Status Code: 409, Error Code: BucketNotEmpty)"}, id, nil
		}
	}
	return nil, id, nil
}

// patchFailure shows a stack whose delete failed as AWS does: the stack
// in DELETE_FAILED with its reason, the bucket in DELETE_FAILED with its
// own.
func patchFailure(action string, out []byte, f stackFailure) []byte {
	text := string(out)
	switch action {
	case "DescribeStacks":
		text = regexp.MustCompile(`<StackStatus>[A-Z_]+</StackStatus>`).ReplaceAllString(text,
			"<StackStatus>DELETE_FAILED</StackStatus><StackStatusReason>"+esc("The following resource(s) failed to delete: ["+f.logicalID+"]. ")+"</StackStatusReason>")
	case "DescribeStackResources":
		text = memberRE.ReplaceAllStringFunc(text, func(m string) string {
			if !strings.Contains(m, "<LogicalResourceId>"+f.logicalID+"</LogicalResourceId>") {
				return m
			}
			return regexp.MustCompile(`<ResourceStatus>[A-Z_]+</ResourceStatus>`).ReplaceAllString(m,
				"<ResourceStatus>DELETE_FAILED</ResourceStatus><ResourceStatusReason>"+esc(f.reason)+"</ResourceStatusReason>")
		})
	}
	return []byte(text)
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
