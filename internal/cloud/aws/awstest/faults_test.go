package awstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// ec2Request is a signed-looking EC2 query request for region.
func ec2Request(t *testing.T, url, region, action string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("Action="+action+"&Version=2016-11-15"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", scopeAuth(region, "ec2"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestFaultsAreSeeded(t *testing.T) {
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.WriteString(w, "<ok/>")
	}))
	defer target.Close()

	pattern := func(seed uint64) string {
		f := NewFaults(t, target.URL, seed)
		f.SetRate(0.3)
		var b strings.Builder
		for range 200 {
			resp := ec2Request(t, f.URL, "us-east-1", "DescribeImages")
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				b.WriteByte('.')
			case strings.Contains(string(body), "<Code>RequestLimitExceeded</Code>") && resp.StatusCode == 503:
				b.WriteByte('T')
			case resp.StatusCode == 503:
				b.WriteByte('U')
			default:
				t.Fatalf("unexpected answer %d %s", resp.StatusCode, body)
			}
		}
		return b.String()
	}
	a, b, c := pattern(7), pattern(7), pattern(8)
	if a != b {
		t.Errorf("same seed, different faults:\n%s\n%s", a, b)
	}
	if a == c {
		t.Error("different seeds gave the same faults")
	}
	faults := strings.Count(a, "T") + strings.Count(a, "U")
	if faults < 30 || faults > 90 || strings.Count(a, "T") == 0 || strings.Count(a, "U") == 0 {
		t.Errorf("%d faults of 200 at rate 0.3 (%s)", faults, a)
	}
	// Faulted requests never reached the server.
	if want := int32(3*200 - faults - strings.Count(b, "T") - strings.Count(b, "U") - strings.Count(c, "T") - strings.Count(c, "U")); reached.Load() != want {
		t.Errorf("server saw %d requests, want %d", reached.Load(), want)
	}
}

func TestFaultsRule(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<ok/>") }))
	defer target.Close()
	f := NewFaults(t, target.URL, 1)
	f.Fail(Rule{Service: "ec2", Region: "eu-west-1", Action: "CopyImage", Status: 400, Code: "InvalidAMIName.Duplicate", Times: 2})
	for i, tc := range []struct {
		region, action string
		status         int
	}{
		{"us-east-1", "CopyImage", 200},
		{"eu-west-1", "DescribeImages", 200},
		{"eu-west-1", "CopyImage", 400},
		{"eu-west-1", "CopyImage", 400},
		{"eu-west-1", "CopyImage", 200},
	} {
		resp := ec2Request(t, f.URL, tc.region, tc.action)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("call %d (%s %s): status %d, want %d", i, tc.region, tc.action, resp.StatusCode, tc.status)
		}
		if tc.status == 400 && !strings.Contains(string(body), "<Code>InvalidAMIName.Duplicate</Code>") {
			t.Errorf("call %d: body %s", i, body)
		}
	}
	if total, injected := f.Counts(); total != 5 || injected != 2 {
		t.Errorf("counts %d/%d, want 5/2", total, injected)
	}
}

// TestStartMoto starts a moto of its own and checks Reset empties it.
func TestStartMoto(t *testing.T) {
	m := StartMoto(t)
	resp := ec2Request(t, m.URL, "us-east-1", "CreateKeyPair&KeyName=kiln-awstest")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("CreateKeyPair: %s", resp.Status)
	}
	list := func() string {
		resp := ec2Request(t, m.URL, "us-east-1", "DescribeKeyPairs")
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if !strings.Contains(list(), "kiln-awstest") {
		t.Fatal("key pair not listed")
	}
	m.Reset(t)
	if strings.Contains(list(), "kiln-awstest") {
		t.Error("key pair still there after Reset")
	}
}
