package awstest

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Call is what an AWS request asks for, read from its signature scope and
// body: the service and region it was signed for and the action.
type Call struct {
	Service string // signing name: ec2, s3, ssm, sts, cloudformation, tagging
	Region  string
	Action  string     // query Action, JSON target operation, or S3 method
	Form    url.Values // the query protocol's parameters (nil for others)
	// Key is the access key that signed the request: moto tells accounts
	// apart by it.
	Key string
}

var scopeRE = regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request`)

// readCall reads r's body (leaving it readable again) and returns the call
// and the body.
func readCall(r *http.Request) (Call, []byte, error) {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return Call{}, nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var c Call
	if m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		c.Region, c.Service = m[1], m[2]
	}
	if m := accessKeyRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		c.Key = m[1]
	}
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		t := r.Header.Get("X-Amz-Target")
		c.Action = t[strings.LastIndexByte(t, '.')+1:]
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		if f, err := url.ParseQuery(string(body)); err == nil {
			c.Form = f
			c.Action = f.Get("Action")
		}
	default:
		c.Action = r.Method
	}
	if c.Service == "ebs" {
		c.Action = EBSAction(r.Method, r.URL.Path)
	}
	return c, body, nil
}

// EBSAction names an EBS direct API call (a REST API: the method and the
// path say which).
func EBSAction(method, path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case method == http.MethodPost && len(parts) == 1:
		return "StartSnapshot"
	case method == http.MethodPost && len(parts) == 3 && parts[1] == "completion":
		return "CompleteSnapshot"
	case method == http.MethodPut && len(parts) == 4:
		return "PutSnapshotBlock"
	case method == http.MethodGet && len(parts) == 4:
		return "GetSnapshotBlock"
	case method == http.MethodGet && len(parts) == 3 && parts[2] == "blocks":
		return "ListSnapshotBlocks"
	case method == http.MethodGet && len(parts) == 3 && parts[2] == "changedblocks":
		return "ListChangedBlocks"
	}
	return method
}

// protocol is how a service encodes errors.
func (c Call) protocol() string {
	switch c.Service {
	case "ec2":
		return "ec2"
	case "s3":
		return "rest-xml"
	case "ssm", "tagging", "ebs":
		return "json"
	}
	return "query"
}

// writeError answers with an AWS error in the call's protocol.
func writeError(w http.ResponseWriter, c Call, status int, code, msg string) {
	var body string
	switch c.protocol() {
	case "ec2":
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		body = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<Response><Errors><Error><Code>` + esc(code) + `</Code><Message>` + esc(msg) +
			`</Message></Error></Errors><RequestID>` + requestID() + `</RequestID></Response>`
	case "rest-xml":
		w.Header().Set("Content-Type", "application/xml")
		body = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<Error><Code>` + esc(code) + `</Code><Message>` + esc(msg) + `</Message><RequestId>` + requestID() + `</RequestId></Error>`
	case "json":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", code)
		body = `{"__type":"` + code + `","message":"` + strings.ReplaceAll(msg, `"`, `'`) + `"}`
	default:
		w.Header().Set("Content-Type", "text/xml")
		body = `<ErrorResponse xmlns="https://` + c.Service + `.amazonaws.com/doc/"><Error><Type>Sender</Type><Code>` + esc(code) +
			`</Code><Message>` + esc(msg) + `</Message></Error><RequestId>` + requestID() + `</RequestId></ErrorResponse>`
	}
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func esc(s string) string {
	var b strings.Builder
	_ = xmlEscape(&b, s)
	return b.String()
}
