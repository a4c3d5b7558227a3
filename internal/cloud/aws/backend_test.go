package aws

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

func TestAccount(t *testing.T) {
	r := newRig(t)
	acct, err := r.b.Account(t.Context())
	if err != nil || acct != awstest.Account {
		t.Fatalf("Account() = %q, %v; want %s", acct, err, awstest.Account)
	}
	if err := r.b.CheckAccount(t.Context()); err != nil {
		t.Errorf("CheckAccount with the account allowed: %v", err)
	}
}

func TestAccountCheckRefusesOtherAccounts(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.AWSBackend) { c.AllowedAccounts = []string{"111111111111", "222222222222"} }))
	src := seedImage(t, r.ec2("us-east-1"), "source-image", nil)

	err := r.b.CheckAccount(t.Context())
	if !errors.Is(err, cloud.ErrAccessDenied) {
		t.Fatalf("CheckAccount: %v, want ErrAccessDenied", err)
	}
	for _, want := range []string{awstest.Account, "111111111111, 222222222222"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	_, err = r.b.CopyImage(t.Context(), cloud.CopyInput{SourceRegion: "us-east-1", SourceID: *src.ImageId, Region: "us-west-2", Name: "copy", Token: "t1"})
	if !errors.Is(err, cloud.ErrAccessDenied) {
		t.Errorf("CopyImage as a refused account: %v, want ErrAccessDenied", err)
	}
	if got := r.stub.Calls("ec2", "CopyImage"); got != 0 {
		t.Errorf("CopyImage reached the endpoint %d times", got)
	}
	if got := r.stub.Calls("sts", "GetCallerIdentity"); got != 1 {
		t.Errorf("GetCallerIdentity called %d times, want 1 (cached)", got)
	}
	// Reading is still allowed.
	if _, err := r.b.ListImages(t.Context(), "us-east-1", cloud.Filter{}); err != nil {
		t.Errorf("ListImages: %v", err)
	}
}

func TestUnconfiguredRegion(t *testing.T) {
	r := newRig(t)
	_, err := r.b.ListImages(t.Context(), "ap-south-1", cloud.Filter{})
	if !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), "ap-south-1") {
		t.Errorf("ListImages in an unconfigured region: %v, want ErrInvalid naming it", err)
	}
	_, err = r.b.ListImages(t.Context(), "Bad Region", cloud.Filter{})
	if !errors.Is(err, cloud.ErrInvalid) {
		t.Errorf("ListImages in an invalid region: %v", err)
	}
}

// countingTransport counts the requests an http.Client sends.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func TestWithHTTPClient(t *testing.T) {
	motoServer.Reset(t)
	awstest.Env(t, motoServer.URL)
	ct := &countingTransport{}
	b, err := New(t.Context(), config.AWSBackend{}, []string{"us-east-1"}, WithHTTPClient(&http.Client{Transport: ct}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Account(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ListImages(t.Context(), "us-east-1", cloud.Filter{}); err != nil {
		t.Fatal(err)
	}
	if got := ct.n.Load(); got != 2 {
		t.Errorf("%d requests went through the given client, want 2", got)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	awstest.Env(t, motoServer.URL)
	for name, opts := range map[string][]Option{
		"attempts": {WithRetryMaxAttempts(0)},
		"poll":     {WithPollInterval(time.Second, time.Millisecond)},
	} {
		if _, err := New(t.Context(), config.AWSBackend{}, nil, opts...); err == nil {
			t.Errorf("%s: New accepted bad options", name)
		}
	}
	if _, err := New(t.Context(), config.AWSBackend{}, []string{"US East"}); !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), `"US East"`) {
		t.Errorf("New with a bad region: %v", err)
	}
	if _, err := New(t.Context(), config.AWSBackend{Profile: "no-such-profile"}, nil); err == nil || !strings.Contains(err.Error(), "no-such-profile") {
		t.Errorf("New with a missing profile: %v, want an error naming it", err)
	}
}

// TestTimeoutsAreRetried holds the first request past the client's timeout;
// the SDK's retryer must try again and succeed.
func TestTimeoutsAreRetried(t *testing.T) {
	r := newRig(t)
	r.faults.Fail(awstest.Rule{Service: "ec2", Action: "DescribeImages", Delay: 2 * time.Second, Times: 1})
	b, err := New(t.Context(), config.AWSBackend{}, []string{"us-east-1"},
		WithHTTPClient(&http.Client{Timeout: 300 * time.Millisecond}), WithRetryMaxBackoff(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := b.ListImages(t.Context(), "us-east-1", cloud.Filter{}); err != nil {
		t.Fatalf("ListImages after a timed-out attempt: %v", err)
	}
	if total, injected := r.faults.Counts(); total != 2 || injected != 1 {
		t.Errorf("%d requests (%d held), want the held one and a retry", total, injected)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("took %s: the held request was waited out, not timed out", d)
	}
}
