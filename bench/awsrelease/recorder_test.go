package awsrelease

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRecorderDelaysForwardsAndLogs(t *testing.T) {
	var gotBody, gotTarget string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotTarget = string(b), r.Header.Get("X-Amz-Target")
		w.Header().Set("X-Backend", "yes")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "answer")
	}))
	defer backend.Close()
	const latency = 60 * time.Millisecond
	rec := NewRecorder(backend.URL, latency)
	srv := httptest.NewServer(rec)
	defer srv.Close()

	send := func(contentType, target, region, service, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/"+region+"/"+service+"/aws4_request, SignedHeaders=host, Signature=0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	start := time.Now()
	resp := send("application/x-www-form-urlencoded; charset=utf-8", "", "eu-west-1", "ec2", "Action=CopyImage&Version=2016-11-15")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if took := time.Since(start); took < latency {
		t.Errorf("answered after %s, want at least the latency %s", took, latency)
	}
	if resp.StatusCode != http.StatusTeapot || string(body) != "answer" || resp.Header.Get("X-Backend") != "yes" {
		t.Errorf("answer %d %q %v, want the backend's", resp.StatusCode, body, resp.Header)
	}
	if gotBody != "Action=CopyImage&Version=2016-11-15" {
		t.Errorf("backend got body %q", gotBody)
	}
	send("application/x-amz-json-1.1", "AmazonSSM.PutParameter", "us-east-2", "ssm", "{}").Body.Close()
	if gotTarget != "AmazonSSM.PutParameter" {
		t.Errorf("backend got target %q", gotTarget)
	}

	log := rec.Since(0)
	if len(log) != 2 || rec.Len() != 2 {
		t.Fatalf("log %+v, want 2 requests", log)
	}
	want := []Request{
		{Service: "ec2", Region: "eu-west-1", Action: "CopyImage", Status: http.StatusTeapot},
		{Service: "ssm", Region: "us-east-2", Action: "PutParameter", Status: http.StatusTeapot},
	}
	for i, w := range want {
		g := log[i]
		if g.Service != w.Service || g.Region != w.Region || g.Action != w.Action || g.Status != w.Status {
			t.Errorf("request %d: %+v, want %+v", i, g, w)
		}
		if g.End-g.Start < latency {
			t.Errorf("request %d took %s on the recorder's clock, want at least %s", i, g.End-g.Start, latency)
		}
	}
	if got := rec.Since(1); len(got) != 1 || got[0].Action != "PutParameter" {
		t.Errorf("Since(1) = %+v", got)
	}
}
