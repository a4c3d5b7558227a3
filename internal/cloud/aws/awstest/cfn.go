package awstest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// What the stub adds to moto's CloudFormation, in AWS's wire format
// (moto 5.2 behaves otherwise, see docs/moto.md):
//
//   - Executing a change set gives the stack the change set's tags and
//     its template's outputs (moto keeps the tags a stack was created
//     with, and a stack made by a change set has no outputs): after moto
//     executes it, the stub asks moto for an update of the stack with its
//     own template and the change set's tags, which changes no resource
//     but recomputes the outputs. A change set whose only change is the
//     stack's tags is executable (moto fails it as "didn't contain
//     changes").
//   - Change sets belong to their stack: a name is looked up among the
//     live stack's change sets (moto looks across all stacks, deleted ones
//     included, and lists them all), a second change set of the same name
//     is AlreadyExistsException (moto makes it and breaks the stack), and
//     deleting a stack deletes its change sets.
//   - The values of parameters the template declares NoEcho read "****"
//     in DescribeStacks and DescribeChangeSet (moto shows them).
//   - A change set executes once: ExecuteChangeSet of one that is not
//     AVAILABLE is InvalidChangeSetStatus, of one that does not exist
//     ChangeSetNotFound (moto executes again, or answers 500).
//   - UpdateTerminationProtection works (moto answers 500), DescribeStacks
//     shows it, and DeleteStack of a protected stack is refused, whether
//     the protection was set that way or at CreateStack (moto stores that
//     but deletes the stack anyway).
//   - With EmulateStackFailures: executing a CREATE change set whose
//     template names a bucket S3 would refuse fails and rolls back
//     (ROLLBACK_COMPLETE with the resource's reason in the stack's
//     events; moto creates it), and deleting a stack whose bucket is not
//     empty ends in DELETE_FAILED with S3's reason (moto deletes the stack
//     and leaves the bucket), the bucket DELETE_FAILED with S3's reason
//     in the stack's resources and events, until a DeleteStack succeeds.
type cfnOverlay struct {
	mu sync.Mutex
	// Recorded from CreateChangeSet, by region/stack/change set.
	csTags map[string]map[string]string
	csBody map[string]string
	csType map[string]string
	// tagsOnly marks change sets moto failed for having no changes but
	// whose tags differ from the stack's: executable on AWS.
	tagsOnly   map[string]bool
	execFailed map[string]bool
	// By stack id. protected holds what UpdateTerminationProtection set;
	// a stack not in it has the protection moto stored at CreateStack.
	protected map[string]bool
	// deleteFailed is the reason of each resource whose delete failed, by
	// logical id, until the next DeleteStack.
	deleteFailed map[string]map[string]string
	noEcho       map[string]map[string]bool // the NoEcho parameters of the stack's template
	status       map[string][2]string       // status, reason
	events       map[string][]cfnEvent
	emulate      bool
	// exec serializes ExecuteChangeSet, as CloudFormation executes a
	// change set once.
	exec sync.Mutex
}

func newCFNOverlay() *cfnOverlay {
	return &cfnOverlay{
		csTags: map[string]map[string]string{}, csBody: map[string]string{}, csType: map[string]string{},
		tagsOnly: map[string]bool{}, execFailed: map[string]bool{},
		protected: map[string]bool{}, deleteFailed: map[string]map[string]string{}, noEcho: map[string]map[string]bool{},
		status: map[string][2]string{}, events: map[string][]cfnEvent{},
	}
}

// EmulateStackFailures makes CloudFormation fail as AWS does where moto
// does not: a stack created with a bucket name S3 refuses rolls back,
// and a stack whose bucket is not empty fails to delete.
func (s *Stub) EmulateStackFailures() {
	s.cfn.mu.Lock()
	defer s.cfn.mu.Unlock()
	s.cfn.emulate = true
}

// cfnNS is the namespace of CloudFormation's query-protocol responses.
const cfnNS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"

// serveCFN answers the CloudFormation calls the stub changes; false
// leaves the request to be forwarded unchanged.
func (s *Stub) serveCFN(w http.ResponseWriter, r *http.Request, c Call, body []byte) bool {
	switch c.Action {
	case "CreateChangeSet":
		s.createChangeSet(w, r, c, body)
	case "DescribeChangeSet":
		key := csKey(c.Region, c.Form.Get("StackName"), c.Form.Get("ChangeSetName"))
		if body, ok := s.byARN(w, r, c); ok {
			s.forward(w, r, body, func(out []byte) []byte { return s.patchChangeSet(r, c, key, out) })
		}
	case "DeleteChangeSet":
		if body, ok := s.byARN(w, r, c); ok {
			s.forward(w, r, body, nil)
		}
	case "ListChangeSets":
		s.listChangeSets(w, r, c, body)
	case "ExecuteChangeSet":
		s.executeChangeSet(w, r, c, body)
	case "DescribeStacks":
		s.forward(w, r, body, s.patchStacks)
	case "DescribeStackEvents":
		s.forward(w, r, body, func(out []byte) []byte { return s.patchEvents(r, c, out) })
	case "ListStackResources", "DescribeStackResources":
		s.forward(w, r, body, func(out []byte) []byte { return s.patchResources(r, c, out) })
	case "UpdateTerminationProtection":
		s.updateProtection(w, r, c)
	case "DeleteStack":
		s.deleteStack(w, r, c, body)
	default:
		return false
	}
	return true
}

func csKey(region, stack, cs string) string {
	if m := csARN.FindStringSubmatch(cs); m != nil {
		cs = m[1]
	}
	return region + "/" + stackNameOf(stack) + "/" + cs
}

var (
	csARN    = regexp.MustCompile(`^arn:aws[a-z-]*:cloudformation:[^:]*:[^:]*:changeSet/([^/]+)/`)
	stackARN = regexp.MustCompile(`^arn:aws[a-z-]*:cloudformation:[^:]*:[^:]*:stack/([^/]+)/`)
)

// stackNameOf returns a stack's name from its name or id.
func stackNameOf(s string) string {
	if m := stackARN.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return s
}

// cfnAuth signs the stub's own calls to moto as the caller: moto reads
// the account from the access key and the region from the scope.
func cfnAuth(r *http.Request, region, service string) string {
	key := "awstest"
	if m := accessKey.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		key = m[1]
	}
	return "AWS4-HMAC-SHA256 Credential=" + key + "/20260101/" + region + "/" + service + "/aws4_request, SignedHeaders=host, Signature=0"
}

var accessKey = regexp.MustCompile(`Credential=([^/]+)/`)

// cfnCall sends a CloudFormation query to moto as r's caller.
func (s *Stub) cfnCall(r *http.Request, region string, params url.Values) (int, []byte, error) {
	params.Set("Version", "2010-05-15")
	req, err := http.NewRequest(http.MethodPost, s.target+"/", strings.NewReader(params.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", cfnAuth(r, region, "cloudformation"))
	return s.do(req)
}

func (s *Stub) do(req *http.Request) (int, []byte, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// cfnStack is what the stub reads of a stack in moto's answers.
type cfnStack struct {
	ID     string `xml:"StackId"`
	Name   string `xml:"StackName"`
	Status string `xml:"StackStatus"`
	// Protection is what moto stored at CreateStack ("true", "false").
	Protection string `xml:"EnableTerminationProtection"`
	Tags       []struct {
		Key   string `xml:"Key"`
		Value string `xml:"Value"`
	} `xml:"Tags>member"`
}

func (st cfnStack) tagMap() map[string]string {
	m := map[string]string{}
	for _, t := range st.Tags {
		m[t.Key] = t.Value
	}
	return m
}

// stackOf asks moto for a live stack by name or id.
func (s *Stub) stackOf(r *http.Request, region, nameOrID string) (cfnStack, bool, error) {
	status, out, err := s.cfnCall(r, region, url.Values{"Action": {"DescribeStacks"}, "StackName": {nameOrID}})
	if err != nil {
		return cfnStack{}, false, err
	}
	if status != http.StatusOK {
		return cfnStack{}, false, nil
	}
	var doc struct {
		Stacks []cfnStack `xml:"DescribeStacksResult>Stacks>member"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		return cfnStack{}, false, err
	}
	for _, st := range doc.Stacks {
		if st.Status != "DELETE_COMPLETE" {
			return st, true, nil
		}
	}
	return cfnStack{}, false, nil
}

// tagsParam reads Tags.member.N from a query.
func tagsParam(form url.Values) map[string]string {
	out := map[string]string{}
	for n := 1; ; n++ {
		k := form.Get(fmt.Sprintf("Tags.member.%d.Key", n))
		if k == "" {
			return out
		}
		out[k] = form.Get(fmt.Sprintf("Tags.member.%d.Value", n))
	}
}

// csSummary is one change set as moto lists it.
type csSummary struct {
	StackID string `xml:"StackId"`
	Stack   string `xml:"StackName"`
	ID      string `xml:"ChangeSetId"`
	Name    string `xml:"ChangeSetName"`
}

// changeSetOf finds the change set called name of the live stack (by name
// or id), as AWS scopes change sets.
func (s *Stub) changeSetOf(r *http.Request, region, stack, name string) (string, bool, error) {
	if csARN.MatchString(name) {
		return name, true, nil
	}
	st, ok, err := s.stackOf(r, region, stack)
	if err != nil || !ok {
		return "", false, err
	}
	all, err := s.allChangeSets(r, region)
	if err != nil {
		return "", false, err
	}
	for _, cs := range all {
		if cs.StackID == st.ID && cs.Name == name {
			return cs.ID, true, nil
		}
	}
	return "", false, nil
}

// allChangeSets lists every change set moto has in region (moto ignores
// ListChangeSets' stack).
func (s *Stub) allChangeSets(r *http.Request, region string) ([]csSummary, error) {
	status, out, err := s.cfnCall(r, region, url.Values{"Action": {"ListChangeSets"}, "StackName": {"any"}})
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("stub: list change sets: %d %s", status, out)
	}
	var doc struct {
		Summaries []csSummary `xml:"ListChangeSetsResult>Summaries>member"`
	}
	return doc.Summaries, xml.Unmarshal(out, &doc)
}

// byARN rewrites a request naming a change set by stack and name to name
// it by the ARN of the live stack's change set, or answers
// ChangeSetNotFound.
func (s *Stub) byARN(w http.ResponseWriter, r *http.Request, c Call) ([]byte, bool) {
	name := c.Form.Get("ChangeSetName")
	arn, ok, err := s.changeSetOf(r, c.Region, c.Form.Get("StackName"), name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return nil, false
	}
	if !ok {
		writeError(w, c, http.StatusNotFound, "ChangeSetNotFound", "ChangeSet ["+name+"] does not exist")
		return nil, false
	}
	form := url.Values{}
	for k, v := range c.Form {
		form[k] = v
	}
	form.Set("ChangeSetName", arn)
	return []byte(form.Encode()), true
}

// listChangeSets answers with the change sets of the stack asked for.
func (s *Stub) listChangeSets(w http.ResponseWriter, r *http.Request, c Call, body []byte) {
	st, ok, err := s.stackOf(r, c.Region, c.Form.Get("StackName"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if !ok {
		writeError(w, c, http.StatusBadRequest, "ValidationError", "Stack ["+c.Form.Get("StackName")+"] does not exist")
		return
	}
	s.forward(w, r, body, func(out []byte) []byte {
		return eachMember(out, "Summaries", func(m []byte) []byte {
			var cs csSummary
			if xml.Unmarshal(m, &cs) == nil && cs.StackID != st.ID {
				return nil
			}
			return m
		})
	})
}

func (s *Stub) createChangeSet(w http.ResponseWriter, r *http.Request, c Call, body []byte) {
	name := c.Form.Get("ChangeSetName")
	if _, dup, err := s.changeSetOf(r, c.Region, c.Form.Get("StackName"), name); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	} else if dup {
		writeError(w, c, http.StatusBadRequest, "AlreadyExistsException", "ChangeSet ["+name+"] already exists")
		return
	}
	key := csKey(c.Region, c.Form.Get("StackName"), name)
	s.cfn.mu.Lock()
	if _, ok := c.Form["Tags.member.1.Key"]; ok {
		s.cfn.csTags[key] = tagsParam(c.Form)
	}
	s.cfn.csBody[key] = c.Form.Get("TemplateBody")
	s.cfn.csType[key] = c.Form.Get("ChangeSetType")
	delete(s.cfn.tagsOnly, key)
	delete(s.cfn.execFailed, key)
	s.cfn.mu.Unlock()
	s.forward(w, r, body, nil)
}

// changeSetStatus reads a DescribeChangeSet answer.
type changeSetStatus struct {
	StackID   string `xml:"DescribeChangeSetResult>StackId"`
	StackName string `xml:"DescribeChangeSetResult>StackName"`
	ID        string `xml:"DescribeChangeSetResult>ChangeSetId"`
	Status    string `xml:"DescribeChangeSetResult>Status"`
	Exec      string `xml:"DescribeChangeSetResult>ExecutionStatus"`
	Reason    string `xml:"DescribeChangeSetResult>StatusReason"`
}

// patchChangeSet shows a tags-only change set as AWS does (executable),
// and one whose execution the stub failed as EXECUTE_FAILED.
func (s *Stub) patchChangeSet(r *http.Request, c Call, key string, out []byte) []byte {
	var cs changeSetStatus
	if xml.Unmarshal(out, &cs) != nil {
		return out
	}
	s.cfn.mu.Lock()
	tagsOnly, failed := s.cfn.tagsOnly[key], s.cfn.execFailed[key]
	want, hasTags := s.cfn.csTags[key]
	s.cfn.mu.Unlock()
	if !tagsOnly && hasTags && cs.Status == "FAILED" && strings.Contains(cs.Reason, "didn't contain changes") && cs.Exec == "UNAVAILABLE" {
		if st, ok, err := s.stackOf(r, c.Region, cs.StackID); err == nil && ok && !sameTags(st.tagMap(), want) {
			tagsOnly = true
			s.cfn.mu.Lock()
			s.cfn.tagsOnly[key] = true
			s.cfn.mu.Unlock()
		}
	}
	if tagsOnly {
		out = setElement(out, "Status", "CREATE_COMPLETE")
		out = removeElement(out, "StatusReason")
		if cs.Exec == "UNAVAILABLE" {
			out = setElement(out, "ExecutionStatus", "AVAILABLE")
		}
	}
	if failed {
		out = setElement(out, "ExecutionStatus", "EXECUTE_FAILED")
	}
	s.cfn.mu.Lock()
	body := s.cfn.csBody[key]
	s.cfn.mu.Unlock()
	return maskParams(out, noEchoParams(body))
}

// noEchoParams lists the parameters a template declares NoEcho.
func noEchoParams(body string) map[string]bool {
	var doc struct {
		Parameters map[string]struct {
			NoEcho yaml.Node `yaml:"NoEcho"`
		} `yaml:"Parameters"`
	}
	out := map[string]bool{}
	if yaml.Unmarshal([]byte(body), &doc) != nil {
		return out
	}
	for name, p := range doc.Parameters {
		if strings.EqualFold(p.NoEcho.Value, "true") {
			out[name] = true
		}
	}
	return out
}

// maskParams shows the values of the NoEcho parameters in the Parameters
// list of m as CloudFormation does.
func maskParams(m []byte, noEcho map[string]bool) []byte {
	if len(noEcho) == 0 {
		return m
	}
	return eachMember(m, "Parameters", func(p []byte) []byte {
		var param struct {
			Key string `xml:"ParameterKey"`
		}
		if xml.Unmarshal(p, &param) == nil && noEcho[param.Key] && bytes.Contains(p, []byte("<ParameterValue>")) {
			return setElement(p, "ParameterValue", "****")
		}
		return p
	})
}

func sameTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (s *Stub) executeChangeSet(w http.ResponseWriter, r *http.Request, c Call, body []byte) {
	s.cfn.exec.Lock()
	defer s.cfn.exec.Unlock()
	stack, name := c.Form.Get("StackName"), c.Form.Get("ChangeSetName")
	key := csKey(c.Region, stack, name)
	body, ok := s.byARN(w, r, c)
	if !ok {
		return
	}
	// Read the change set as the client would see it.
	form, _ := url.ParseQuery(string(body))
	status, out, err := s.cfnCall(r, c.Region, url.Values{"Action": {"DescribeChangeSet"}, "ChangeSetName": {form.Get("ChangeSetName")}})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if status != http.StatusOK {
		writeError(w, c, http.StatusNotFound, "ChangeSetNotFound", "ChangeSet ["+name+"] does not exist")
		return
	}
	out = s.patchChangeSet(r, c, key, out)
	var cs changeSetStatus
	if err := xml.Unmarshal(out, &cs); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if cs.Exec != "AVAILABLE" {
		writeError(w, c, http.StatusBadRequest, "InvalidChangeSetStatus",
			fmt.Sprintf("ChangeSet [%s] cannot be executed in its current status of [%s]", cs.ID, cs.Exec))
		return
	}
	s.cfn.mu.Lock()
	emulate, tmpl, typ, tags := s.cfn.emulate, s.cfn.csBody[key], s.cfn.csType[key], s.cfn.csTags[key]
	s.cfn.mu.Unlock()
	if emulate && typ == "CREATE" {
		if logical, reason, bad := refusedBucket(tmpl); bad {
			s.rollBackCreate(cs, key, logical, reason)
			writeCFNResult(w, "ExecuteChangeSet", "")
			return
		}
	}
	s.forward(w, r, body, func(out []byte) []byte {
		if !refreshable(tmpl) {
			return out
		}
		if err := s.refreshStack(r, c.Region, cs.StackID, tags, typ == "CREATE"); err != nil {
			return []byte(err.Error()) // the client sees a broken answer and the test fails
		}
		s.cfn.mu.Lock()
		s.cfn.noEcho[cs.StackID] = noEchoParams(tmpl)
		s.cfn.mu.Unlock()
		return out
	})
}

// refreshable reports whether moto can take refreshStack's update of a
// stack made from tmpl: an UpdateStack of a WAFv2 web ACL or a CloudFront
// distribution (the download stacks) leaves moto's stack unreadable
// (DescribeStacks answers 500), so those stacks are left as moto made them.
func refreshable(tmpl string) bool {
	return !strings.Contains(tmpl, "AWS::WAFv2::") && !strings.Contains(tmpl, "AWS::CloudFront::")
}

// refreshStack makes moto recompute a stack's outputs and take the tags of
// the change set it executed: an update with the stack's own template and
// no parameters (moto then keeps the previous values and changes no
// resource). A stack made by a CREATE change set shows CREATE_COMPLETE
// afterwards, as on AWS.
func (s *Stub) refreshStack(r *http.Request, region, id string, tags map[string]string, created bool) error {
	q := url.Values{"Action": {"UpdateStack"}, "StackName": {id}, "UsePreviousTemplate": {"true"}}
	n := 0
	for _, k := range sortedKeys(tags) {
		n++
		q.Set(fmt.Sprintf("Tags.member.%d.Key", n), k)
		q.Set(fmt.Sprintf("Tags.member.%d.Value", n), tags[k])
	}
	status, out, err := s.cfnCall(r, region, q)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("stub: refresh stack %s: %d %s", id, status, out)
	}
	s.cfn.mu.Lock()
	defer s.cfn.mu.Unlock()
	if created {
		s.cfn.status[id] = [2]string{"CREATE_COMPLETE", ""}
	} else {
		delete(s.cfn.status, id)
	}
	return nil
}

// writeCFNResult answers a CloudFormation action with an empty (or given)
// result.
func writeCFNResult(w http.ResponseWriter, action, inner string) {
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", requestID())
	fmt.Fprintf(w, `<%sResponse xmlns="%s"><%sResult>%s</%sResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`,
		action, cfnNS, action, inner, action, requestID(), action)
}

// bucketNameOK is S3's rule for bucket names (general purpose buckets).
var bucketNameOK = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// refusedBucket finds a bucket in a template whose literal BucketName S3
// refuses, and S3's reason as CloudFormation reports it.
func refusedBucket(body string) (logical, reason string, bad bool) {
	var t struct {
		Resources map[string]struct {
			Type       string               `yaml:"Type"`
			Properties map[string]yaml.Node `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if yaml.Unmarshal([]byte(body), &t) != nil {
		return "", "", false
	}
	for id, r := range t.Resources {
		n, ok := r.Properties["BucketName"]
		if r.Type != "AWS::S3::Bucket" || !ok || n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			continue
		}
		if !bucketNameOK.MatchString(n.Value) {
			return id, fmt.Sprintf("Resource handler returned message: \"Invalid bucket name: %s (Service: S3, Status Code: 400, Request ID: %s)\" (RequestToken: %s, HandlerErrorCode: InvalidRequest)",
				n.Value, requestID()[:16], requestID()), true
		}
	}
	return "", "", false
}

// rollBackCreate makes the stack of a CREATE change set look as AWS
// leaves one whose resource failed: ROLLBACK_COMPLETE, nothing created,
// the story in its events.
func (s *Stub) rollBackCreate(cs changeSetStatus, key, logical, reason string) {
	s.cfn.mu.Lock()
	defer s.cfn.mu.Unlock()
	why := fmt.Sprintf("The following resource(s) failed to create: [%s]. Rollback requested by user.", logical)
	s.cfn.status[cs.StackID] = [2]string{"ROLLBACK_COMPLETE", why}
	s.cfn.execFailed[key] = true
	ev := func(id, typ, status, reason string) cfnEvent {
		phys := ""
		if typ == "AWS::CloudFormation::Stack" {
			phys = cs.StackID
		}
		return cfnEvent{StackID: cs.StackID, StackName: cs.StackName, Logical: id, Physical: phys, Type: typ, Status: status, Reason: reason}
	}
	s.cfn.events[cs.StackID] = stamp([]cfnEvent{
		ev(cs.StackName, "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", ""),
		ev(logical, "AWS::S3::Bucket", "DELETE_COMPLETE", ""),
		ev(cs.StackName, "AWS::CloudFormation::Stack", "ROLLBACK_IN_PROGRESS", why),
		ev(logical, "AWS::S3::Bucket", "CREATE_FAILED", reason),
		ev(logical, "AWS::S3::Bucket", "CREATE_IN_PROGRESS", ""),
		ev(cs.StackName, "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", "User Initiated"),
	})
}

// cfnEvent is one stack event the stub serves.
type cfnEvent struct {
	StackID   string `xml:"StackId"`
	EventID   string `xml:"EventId"`
	StackName string `xml:"StackName"`
	Logical   string `xml:"LogicalResourceId"`
	Physical  string `xml:"PhysicalResourceId"`
	Type      string `xml:"ResourceType"`
	Time      string `xml:"Timestamp"`
	Status    string `xml:"ResourceStatus"`
	Reason    string `xml:"ResourceStatusReason,omitempty"`
}

// stamp gives events, newest first, ids and times a millisecond apart.
func stamp(evs []cfnEvent) []cfnEvent {
	now := time.Now().UTC()
	for i := range evs {
		evs[i].EventID = requestID()
		evs[i].Time = now.Add(-time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
	}
	return evs
}

// patchStacks shows termination protection and the states the stub
// serves in DescribeStacks answers.
func (s *Stub) patchStacks(out []byte) []byte {
	return eachMember(out, "Stacks", func(m []byte) []byte {
		var st cfnStack
		if xml.Unmarshal(append(append([]byte("<member>"), inner(m)...), "</member>"...), &st) != nil {
			return m
		}
		s.cfn.mu.Lock()
		prot, set := s.cfn.protected[st.ID]
		if !set {
			prot = st.Protection == "true"
		}
		status, overlaid := s.cfn.status[st.ID]
		noEcho := s.cfn.noEcho[st.ID]
		s.cfn.mu.Unlock()
		m = maskParams(m, noEcho)
		m = setElement(m, "EnableTerminationProtection", fmt.Sprint(prot))
		if overlaid {
			m = setElement(m, "StackStatus", status[0])
			if status[1] != "" {
				m = setElement(m, "StackStatusReason", status[1])
			}
		}
		return m
	})
}

// patchEvents puts the stub's events first in DescribeStackEvents answers.
func (s *Stub) patchEvents(r *http.Request, c Call, out []byte) []byte {
	id := c.Form.Get("StackName")
	if !strings.HasPrefix(id, "arn:") {
		st, ok, err := s.stackOf(r, c.Region, id)
		if err != nil || !ok {
			return out
		}
		id = st.ID
	}
	s.cfn.mu.Lock()
	evs := s.cfn.events[id]
	s.cfn.mu.Unlock()
	if len(evs) == 0 {
		return out
	}
	var b bytes.Buffer
	for _, e := range evs {
		x, err := xml.Marshal(struct {
			XMLName xml.Name `xml:"member"`
			cfnEvent
		}{cfnEvent: e})
		if err == nil {
			b.Write(x)
		}
	}
	if i := bytes.Index(out, []byte("<StackEvents>")); i >= 0 {
		i += len("<StackEvents>")
		return append(append(append([]byte{}, out[:i]...), b.Bytes()...), out[i:]...)
	}
	if i := bytes.Index(out, []byte("<StackEvents/>")); i >= 0 {
		return append(append(append([]byte{}, out[:i]...), []byte("<StackEvents>"+b.String()+"</StackEvents>")...), out[i+len("<StackEvents/>"):]...)
	}
	return out
}

func (s *Stub) updateProtection(w http.ResponseWriter, r *http.Request, c Call) {
	st, ok, err := s.stackOf(r, c.Region, c.Form.Get("StackName"))
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	case !ok:
		writeError(w, c, http.StatusBadRequest, "ValidationError", "Stack ["+c.Form.Get("StackName")+"] does not exist")
		return
	}
	on := strings.EqualFold(c.Form.Get("EnableTerminationProtection"), "true")
	s.cfn.mu.Lock()
	s.cfn.protected[st.ID] = on
	s.cfn.mu.Unlock()
	writeCFNResult(w, "UpdateTerminationProtection", "<StackId>"+esc(st.ID)+"</StackId>")
}

func (s *Stub) deleteStack(w http.ResponseWriter, r *http.Request, c Call, body []byte) {
	st, ok, err := s.stackOf(r, c.Region, c.Form.Get("StackName"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if !ok {
		s.forward(w, r, body, nil) // AWS answers success for an absent stack; so does moto
		return
	}
	s.cfn.mu.Lock()
	prot, set := s.cfn.protected[st.ID]
	if !set {
		prot = st.Protection == "true"
	}
	emulate := s.cfn.emulate
	s.cfn.mu.Unlock()
	if prot {
		writeError(w, c, http.StatusBadRequest, "ValidationError",
			fmt.Sprintf("Stack [%s] cannot be deleted while TerminationProtection is enabled", st.ID))
		return
	}
	s.onDeleteStack(c.Region, st.Name) // teardown.go
	if emulate {
		full, err := s.nonEmptyBuckets(r, c.Region, st)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if len(full) > 0 {
			s.failDelete(st, full)
			writeCFNResult(w, "DeleteStack", "")
			return
		}
	}
	s.forward(w, r, body, func(out []byte) []byte {
		// The stack's change sets go with it.
		if all, err := s.allChangeSets(r, c.Region); err == nil {
			for _, cs := range all {
				if cs.StackID == st.ID {
					s.cfnCall(r, c.Region, url.Values{"Action": {"DeleteChangeSet"}, "ChangeSetName": {cs.ID}})
				}
			}
		}
		s.cfn.mu.Lock()
		delete(s.cfn.protected, st.ID)
		delete(s.cfn.deleteFailed, st.ID)
		delete(s.cfn.noEcho, st.ID)
		delete(s.cfn.status, st.ID)
		delete(s.cfn.events, st.ID)
		s.cfn.mu.Unlock()
		return out
	})
}

// stackBucket is a bucket of a stack.
type stackBucket struct{ logical, name string }

// nonEmptyBuckets lists the stack's buckets that hold objects (or object
// versions) and that CloudFormation would delete (not retained).
func (s *Stub) nonEmptyBuckets(r *http.Request, region string, st cfnStack) ([]stackBucket, error) {
	status, out, err := s.cfnCall(r, region, url.Values{"Action": {"ListStackResources"}, "StackName": {st.ID}})
	if err != nil || status != http.StatusOK {
		return nil, err
	}
	var doc struct {
		Res []struct {
			Logical  string `xml:"LogicalResourceId"`
			Physical string `xml:"PhysicalResourceId"`
			Type     string `xml:"ResourceType"`
		} `xml:"ListStackResourcesResult>StackResourceSummaries>member"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		return nil, err
	}
	_, tout, err := s.cfnCall(r, region, url.Values{"Action": {"GetTemplate"}, "StackName": {st.ID}})
	if err != nil {
		return nil, err
	}
	var tdoc struct {
		Body string `xml:"GetTemplateResult>TemplateBody"`
	}
	xml.Unmarshal(tout, &tdoc)
	var t struct {
		Resources map[string]struct {
			DeletionPolicy string `yaml:"DeletionPolicy"`
		} `yaml:"Resources"`
	}
	yaml.Unmarshal([]byte(tdoc.Body), &t)
	var full []stackBucket
	for _, res := range doc.Res {
		if res.Type != "AWS::S3::Bucket" || res.Physical == "" || strings.HasPrefix(t.Resources[res.Logical].DeletionPolicy, "Retain") {
			continue
		}
		req, err := http.NewRequest(http.MethodGet, s.target+"/"+url.PathEscape(res.Physical)+"?versions&max-keys=1", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", cfnAuth(r, region, "s3"))
		status, body, err := s.do(req)
		if err != nil {
			return nil, err
		}
		if status == http.StatusOK && (bytes.Contains(body, []byte("<Version>")) || bytes.Contains(body, []byte("<DeleteMarker>"))) {
			full = append(full, stackBucket{res.Logical, res.Physical})
		}
	}
	return full, nil
}

// failDelete makes the stack look as AWS leaves one whose buckets were not
// empty: DELETE_FAILED, with S3's reason in the events.
func (s *Stub) failDelete(st cfnStack, full []stackBucket) {
	var names []string
	for _, b := range full {
		names = append(names, b.logical)
	}
	why := fmt.Sprintf("The following resource(s) failed to delete: [%s]. ", strings.Join(names, ", "))
	evs := []cfnEvent{{StackID: st.ID, StackName: st.Name, Logical: st.Name, Physical: st.ID, Type: "AWS::CloudFormation::Stack", Status: "DELETE_FAILED", Reason: why}}
	failed := map[string]string{}
	for _, b := range full {
		reason := fmt.Sprintf("The bucket you tried to delete is not empty (Service: S3, Status Code: 409, Request ID: %s)", requestID()[:16])
		failed[b.logical] = reason
		evs = append(evs, cfnEvent{StackID: st.ID, StackName: st.Name, Logical: b.logical, Physical: b.name, Type: "AWS::S3::Bucket", Status: "DELETE_FAILED", Reason: reason})
		evs = append(evs, cfnEvent{StackID: st.ID, StackName: st.Name, Logical: b.logical, Physical: b.name, Type: "AWS::S3::Bucket", Status: "DELETE_IN_PROGRESS"})
	}
	evs = append(evs, cfnEvent{StackID: st.ID, StackName: st.Name, Logical: st.Name, Physical: st.ID, Type: "AWS::CloudFormation::Stack", Status: "DELETE_IN_PROGRESS", Reason: "User Initiated"})
	s.cfn.mu.Lock()
	defer s.cfn.mu.Unlock()
	s.cfn.status[st.ID] = [2]string{"DELETE_FAILED", why}
	s.cfn.deleteFailed[st.ID] = failed
	s.cfn.events[st.ID] = append(stamp(evs), s.cfn.events[st.ID]...)
}

// patchResources shows, in ListStackResources and DescribeStackResources
// answers, the resources of a failed delete as DELETE_FAILED with their
// reasons.
func (s *Stub) patchResources(r *http.Request, c Call, out []byte) []byte {
	id := c.Form.Get("StackName")
	if !strings.HasPrefix(id, "arn:") {
		st, ok, err := s.stackOf(r, c.Region, id)
		if err != nil || !ok {
			return out
		}
		id = st.ID
	}
	s.cfn.mu.Lock()
	failed := s.cfn.deleteFailed[id]
	s.cfn.mu.Unlock()
	if len(failed) == 0 {
		return out
	}
	list := "StackResourceSummaries"
	if c.Action == "DescribeStackResources" {
		list = "StackResources"
	}
	return eachMember(out, list, func(m []byte) []byte {
		var res struct {
			Logical string `xml:"LogicalResourceId"`
		}
		if xml.Unmarshal(m, &res) != nil {
			return m
		}
		if reason, ok := failed[res.Logical]; ok {
			m = setElement(m, "ResourceStatus", "DELETE_FAILED")
			m = setElement(m, "ResourceStatusReason", reason)
		}
		return m
	})
}

// XML surgery on query-protocol answers: moto's answers are compact, one
// element after another, so the elements of one member can be found and
// replaced as text.

// eachMember rewrites each top-level <member> of the list element list.
func eachMember(doc []byte, list string, f func([]byte) []byte) []byte {
	open, end := []byte("<"+list+">"), []byte("</"+list+">")
	i := bytes.Index(doc, open)
	j := bytes.LastIndex(doc, end)
	if i < 0 || j < i {
		return doc
	}
	body := doc[i+len(open) : j]
	var out bytes.Buffer
	out.Write(doc[:i+len(open)])
	depth, start := 0, -1
	for k := 0; k < len(body); {
		switch {
		case bytes.HasPrefix(body[k:], []byte("<member>")):
			if depth == 0 {
				start = k
			}
			depth++
			k += len("<member>")
		case bytes.HasPrefix(body[k:], []byte("</member>")):
			depth--
			k += len("</member>")
			if depth == 0 && start >= 0 {
				out.Write(f(body[start:k]))
				start = -1
			}
		default:
			if depth == 0 {
				out.WriteByte(body[k])
			}
			k++
		}
	}
	out.Write(doc[j:])
	return out.Bytes()
}

// inner returns what is between a member's outer tags.
func inner(m []byte) []byte {
	m = bytes.TrimPrefix(m, []byte("<member>"))
	return bytes.TrimSuffix(m, []byte("</member>"))
}

// setElement sets the text of the first element name in m, adding it
// before m's closing tag when there is none.
func setElement(m []byte, name, text string) []byte { return setRaw(m, name, esc(text)) }

// setRaw sets the inner XML of the first element name in m.
func setRaw(m []byte, name, raw string) []byte {
	open, end, empty := []byte("<"+name+">"), []byte("</"+name+">"), []byte("<"+name+"/>")
	elem := []byte("<" + name + ">" + raw + "</" + name + ">")
	if i := bytes.Index(m, open); i >= 0 {
		if j := bytes.Index(m[i:], end); j >= 0 {
			return append(append(append([]byte{}, m[:i]...), elem...), m[i+j+len(end):]...)
		}
	}
	if i := bytes.Index(m, empty); i >= 0 {
		return append(append(append([]byte{}, m[:i]...), elem...), m[i+len(empty):]...)
	}
	if i := bytes.LastIndex(m, []byte("</")); i >= 0 {
		return append(append(append([]byte{}, m[:i]...), elem...), m[i:]...)
	}
	return m
}

// removeElement drops the first element name from m.
func removeElement(m []byte, name string) []byte {
	open, end := []byte("<"+name+">"), []byte("</"+name+">")
	i := bytes.Index(m, open)
	if i < 0 {
		return m
	}
	j := bytes.Index(m[i:], end)
	if j < 0 {
		return m
	}
	return append(append([]byte{}, m[:i]...), m[i+j+len(end):]...)
}
