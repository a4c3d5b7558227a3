package awstest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Stub is an HTTP server in front of moto that answers the EC2 actions
// moto lacks and forwards every other request to it. Its state (deprecation
// times, block-public-access switches, export tasks) lives in the Stub
// value, so it resets with each test's new Stub.
type Stub struct {
	URL string

	// inflight counts the requests being served (Settle).
	inflight atomic.Int64

	upstream // moto

	mu          sync.Mutex
	deprecation map[string]string    // image id -> RFC 3339 time
	imageState  map[string][3]string // image id -> state, reason code, message
	blocked     map[string]bool      // region -> block public access on
	console     func(region, instanceID string) (string, bool)
	depViol     int // DeleteSecurityGroup calls still to refuse
	exports     map[string]*exportTask
	exportToken map[string]string // client token -> task id
	exportSteps int
	copyTokens  map[string]string // account/region/client token -> image, of copies across accounts
	calls       map[string]int
	requests    map[string][]Call
	registered  map[string]registration // moto's made-up snapshot id -> what RegisterImage asked for
	tokens      map[string][]byte       // region|action|client token -> the first call's answer
	ebs         map[string]*ebsSnapshot // EBS direct snapshots (ebs.go)
	images      map[string]imageReg     // image id -> what RegisterImage asked for, as DescribeImages shows it (ebs.go)
	// dropCopyTags makes CopyImage ignore its TagSpecifications.
	dropCopyTags bool
	// createMu serializes the calls that create named or tokened things
	// (see semantics.go).
	createMu sync.Mutex
	cfn      *cfnOverlay    // CloudFormation as AWS behaves (cfn.go)
	teardown *teardownState // teardown.go
}

type exportTask struct {
	region string
	xml    exportTaskXML
	reads  int
}

// NewStub starts a stub forwarding to target (moto's URL); it stops when
// the test ends.
func NewStub(t testing.TB, target string) *Stub {
	s := &Stub{
		upstream:    newUpstream(target, 60*time.Second),
		deprecation: map[string]string{},
		imageState:  map[string][3]string{},
		blocked:     map[string]bool{},
		exports:     map[string]*exportTask{},
		exportToken: map[string]string{},
		exportSteps: 2,
		copyTokens:  map[string]string{},
		calls:       map[string]int{},
		requests:    map[string][]Call{},
		registered:  map[string]registration{},
		tokens:      map[string][]byte{},
		cfn:         newCFNOverlay(),
		ebs:         map[string]*ebsSnapshot{},
		images:      map[string]imageReg{},
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// SetBlockPublicAccess turns image block public access on or off in region.
func (s *Stub) SetBlockPublicAccess(region string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked[region] = on
}

// SetConsole makes GetConsoleOutput answer with fn's text for the
// instances fn accepts (ok); others get moto's fixed text.
func (s *Stub) SetConsole(fn func(region, instanceID string) (text string, ok bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.console = fn
}

// FailDeleteSecurityGroup answers the next n DeleteSecurityGroup calls with
// DependencyViolation, as AWS does while a terminating instance's network
// interface still holds the group.
func (s *Stub) FailDeleteSecurityGroup(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.depViol = n
}

// SetImageState makes DescribeImages report the image in state (e.g.
// failed, as a copy whose snapshot broke) with a state reason.
func (s *Stub) SetImageState(imageID, state, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.imageState[imageID] = [3]string{state, code, message}
}

// Deprecation returns the deprecation time set on an image, if any.
func (s *Stub) Deprecation(imageID string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.deprecation[imageID]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// Calls returns how many requests for service's action the stub saw, e.g.
// Calls("ec2", "CopyImage").
func (s *Stub) Calls(service, action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[service+":"+action]
}

// Requests returns the query-protocol requests for service's action the
// stub saw, oldest first, so tests can check what was asked.
func (s *Stub) Requests(service, action string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.requests[service+":"+action]...)
}

func (s *Stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	c, body, err := readCall(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.calls[c.Service+":"+c.Action]++
	if c.Form != nil && len(s.requests[c.Service+":"+c.Action]) < 1000 {
		s.requests[c.Service+":"+c.Action] = append(s.requests[c.Service+":"+c.Action], c)
	}
	s.mu.Unlock()
	if s.serveTeardown(w, r, c, body) {
		return
	}
	if c.Service == "cloudformation" && s.serveCFN(w, r, c, body) {
		return
	}
	if c.Service == "ebs" {
		s.ebsCall(w, r, c, body)
		return
	}
	if c.Service == "ec2" {
		switch c.Action {
		case "EnableImageDeprecation":
			s.enableDeprecation(w, r, c)
			return
		case "DisableImageDeprecation":
			s.disableDeprecation(w, r, c)
			return
		case "GetImageBlockPublicAccessState":
			s.blockState(w, c)
			return
		case "ExportImage":
			s.exportImage(w, r, c)
			return
		case "DescribeExportImageTasks":
			s.describeExports(w, c)
			return
		case "GetConsoleOutput":
			if s.consoleOutput(w, c) {
				return
			}
		case "DeleteSecurityGroup":
			if s.refuseGroupDelete(w, c) {
				return
			}
		case "CreateImage":
			s.createImage(w, r, c)
			return
		case "RegisterImage":
			s.registerImage(w, c)
			return
		case "CopyImage":
			// A copy of an image another account shared (accounts.go),
			// else moto's copy with EC2's names and tokens (semantics.go).
			if s.copyShared(w, r, c) {
				return
			}
			s.copyImage(w, c)
			return
		case "RunInstances":
			s.runInstances(w, c)
			return
		case "CreateKeyPair":
			s.createKeyPair(w, c)
			return
		case "DeleteKeyPair":
			if s.deleteKeyPair(w, c) {
				return
			}
		case "DeleteSnapshot":
			if s.refuseSnapshotInUse(w, c) {
				return
			}
		case "DescribeImages":
			s.forward(w, r, body, s.patchImages)
			return
		case "DescribeSnapshots":
			s.forward(w, r, body, s.patchSnapshots)
			return
		case "CreateTags":
			if s.createTags(w, c) {
				return
			}
		}
	}
	s.forward(w, r, body, nil)
}

// ec2 sends an EC2 query request to moto as region, the way the stub's own
// bookkeeping needs it (moto reads the region from the signature scope and
// does not check the signature).
func (s *Stub) ec2(region string, params url.Values) (int, []byte, error) {
	return s.ec2As("awstest", region, params)
}

func scopeAuth(region, service string) string {
	return "AWS4-HMAC-SHA256 Credential=awstest/20260101/" + region + "/" + service + "/aws4_request, SignedHeaders=host, Signature=0"
}

// imageExists asks moto for the image, answering the client with moto's
// error when it does not exist.
func (s *Stub) imageExists(w http.ResponseWriter, c Call, id string) bool {
	status, out, err := s.ec2As(c.key(), c.Region, url.Values{"Action": {"DescribeImages"}, "ImageId.1": {id}})
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadGateway)
		return false
	case status != http.StatusOK:
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(status)
		w.Write(out)
		return false
	case !bytes.Contains(out, []byte("<imageId>"+id+"</imageId>")):
		writeError(w, c, http.StatusBadRequest, "InvalidAMIID.NotFound", fmt.Sprintf("The image id '[%s]' does not exist", id))
		return false
	}
	return true
}

func (s *Stub) enableDeprecation(w http.ResponseWriter, r *http.Request, c Call) {
	id, at := c.Form.Get("ImageId"), c.Form.Get("DeprecateAt")
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		writeError(w, c, http.StatusBadRequest, "InvalidParameterValue", "DeprecateAt "+at+" is not a timestamp")
		return
	}
	if !s.imageExists(w, c, id) {
		return
	}
	// EC2 rounds up to the minute.
	if r := t.Truncate(time.Minute); !r.Equal(t) {
		t = r.Add(time.Minute)
	}
	s.mu.Lock()
	s.deprecation[id] = t.UTC().Format("2006-01-02T15:04:05.000Z")
	s.mu.Unlock()
	writeXML(w, returnResponse{XMLName: xml.Name{Local: "EnableImageDeprecationResponse"}, XMLNS: ec2NS, RequestID: requestID(), Return: true})
}

func (s *Stub) disableDeprecation(w http.ResponseWriter, r *http.Request, c Call) {
	id := c.Form.Get("ImageId")
	if !s.imageExists(w, c, id) {
		return
	}
	s.mu.Lock()
	delete(s.deprecation, id)
	s.mu.Unlock()
	writeXML(w, returnResponse{XMLName: xml.Name{Local: "DisableImageDeprecationResponse"}, XMLNS: ec2NS, RequestID: requestID(), Return: true})
}

var (
	imageIDRE    = regexp.MustCompile(`<imageId>(ami-[0-9a-zA-Z]+)</imageId>`)
	imageStateRE = regexp.MustCompile(`<imageId>(ami-[0-9a-zA-Z]+)</imageId><imageState>[a-z]+</imageState>`)
)

// patchImages puts what moto lacks into DescribeImages answers, after each
// image's id: deprecationTime, and a state set with SetImageState.
func (s *Stub) patchImages(body []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	body = s.patchRegistered(body)
	body = s.patchImageRegs(body)
	// The replacement functions build new slices: m aliases body.
	body = imageStateRE.ReplaceAllFunc(body, func(m []byte) []byte {
		id := string(imageStateRE.FindSubmatch(m)[1])
		st, ok := s.imageState[id]
		if !ok {
			return m
		}
		return []byte("<imageId>" + id + "</imageId><imageState>" + st[0] + "</imageState><stateReason><code>" +
			esc(st[1]) + "</code><message>" + esc(st[2]) + "</message></stateReason>")
	})
	return imageIDRE.ReplaceAllFunc(body, func(m []byte) []byte {
		id := string(imageIDRE.FindSubmatch(m)[1])
		if t, ok := s.deprecation[id]; ok {
			return []byte(string(m) + "<deprecationTime>" + t + "</deprecationTime>")
		}
		return m
	})
}

func (s *Stub) blockState(w http.ResponseWriter, c Call) {
	s.mu.Lock()
	on := s.blocked[c.Region]
	s.mu.Unlock()
	state := "unblocked"
	if on {
		state = "block-new-sharing"
	}
	writeXML(w, blockStateResponse{XMLNS: ec2NS, RequestID: requestID(), State: state, ManagedBy: "account"})
}

func (s *Stub) consoleOutput(w http.ResponseWriter, c Call) bool {
	id := c.Form.Get("InstanceId")
	s.mu.Lock()
	fn := s.console
	s.mu.Unlock()
	if fn == nil {
		return false
	}
	text, ok := fn(c.Region, id)
	if !ok {
		return false
	}
	writeXML(w, consoleResponse{
		XMLNS: ec2NS, RequestID: requestID(), InstanceID: id,
		Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		Output:    b64(text),
	})
	return true
}

func (s *Stub) refuseGroupDelete(w http.ResponseWriter, c Call) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.depViol <= 0 {
		return false
	}
	s.depViol--
	writeError(w, c, http.StatusBadRequest, "DependencyViolation",
		"resource "+c.Form.Get("GroupId")+" has a dependent object")
	return true
}

// tagSpecs reads TagSpecification.N from a query: resource type -> tags.
func tagSpecs(form url.Values) map[string]map[string]string {
	out := map[string]map[string]string{}
	for n := 1; ; n++ {
		p := fmt.Sprintf("TagSpecification.%d.", n)
		rt := form.Get(p + "ResourceType")
		if rt == "" {
			return out
		}
		tags := map[string]string{}
		for i := 1; ; i++ {
			k := form.Get(fmt.Sprintf("%sTag.%d.Key", p, i))
			if k == "" {
				break
			}
			tags[k] = form.Get(fmt.Sprintf("%sTag.%d.Value", p, i))
		}
		out[rt] = tags
	}
}

// withoutTagSpecs returns form without its TagSpecification parameters and
// with the tags of keep renumbered from 1.
func withoutTagSpecs(form url.Values, keep map[string]map[string]string) url.Values {
	out := url.Values{}
	for k, v := range form {
		if !strings.HasPrefix(k, "TagSpecification.") {
			out[k] = v
		}
	}
	n := 0
	for _, rt := range sortedKeys(keep) {
		n++
		p := fmt.Sprintf("TagSpecification.%d.", n)
		out.Set(p+"ResourceType", rt)
		for i, k := range sortedKeys(keep[rt]) {
			out.Set(fmt.Sprintf("%sTag.%d.Key", p, i+1), k)
			out.Set(fmt.Sprintf("%sTag.%d.Value", p, i+1), keep[rt][k])
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

var snapshotIDRE = regexp.MustCompile(`<snapshotId>(snap-[0-9a-zA-Z]+)</snapshotId>`)

// createImage applies CreateImage's snapshot TagSpecification, which moto
// refuses (it answers 500): the stub sends moto the call without it, then
// tags the new image's snapshots before answering, so the client sees the
// tags in place when the call returns, as on AWS.
func (s *Stub) createImage(w http.ResponseWriter, r *http.Request, c Call) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if s.refuseTakenName(w, c, c.Form.Get("Name")) {
		return
	}
	specs := tagSpecs(c.Form)
	snapTags := specs["snapshot"]
	delete(specs, "snapshot")
	status, out, err := s.ec2As(c.key(), c.Region, withoutTagSpecs(c.Form, specs))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if status == http.StatusOK && len(snapTags) > 0 {
		m := imageIDRE.FindSubmatch(out)
		if m == nil {
			http.Error(w, "stub: no image id in moto's CreateImage answer", http.StatusBadGateway)
			return
		}
		_, desc, err := s.ec2As(c.key(), c.Region, url.Values{"Action": {"DescribeImages"}, "ImageId.1": {string(m[1])}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		tag := url.Values{"Action": {"CreateTags"}}
		for i, sm := range snapshotIDRE.FindAllSubmatch(desc, -1) {
			tag.Set(fmt.Sprintf("ResourceId.%d", i+1), string(sm[1]))
		}
		for i, k := range sortedKeys(snapTags) {
			tag.Set(fmt.Sprintf("Tag.%d.Key", i+1), k)
			tag.Set(fmt.Sprintf("Tag.%d.Value", i+1), snapTags[k])
		}
		if st, body, err := s.ec2As(c.key(), c.Region, tag); err != nil || st != http.StatusOK {
			http.Error(w, fmt.Sprintf("stub: tag snapshots: %v %s", err, body), http.StatusBadGateway)
			return
		}
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(out)
}

// Settle waits until the stub has answered every request it received. A
// client killed mid-call leaves its requests to finish here, as AWS
// finishes a request that reached it; a test that then inspects the
// account must see what they made, not race them.
func (s *Stub) Settle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for s.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stub: %d requests still being served after a minute", s.inflight.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
