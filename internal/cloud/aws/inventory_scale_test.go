package aws

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

var filterValueRE = regexp.MustCompile(`^Filter\.\d+\.Value\.\d+$`)

// filterLimit stands in front of an EC2 endpoint and does what AWS does and
// moto does not: it refuses a call with more than 200 filter values
// (FilterLimitExceeded). It counts the calls by action.
type filterLimit struct {
	next  http.Handler
	mu    sync.Mutex
	calls map[string]int
}

func (f *filterLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	values := 0
	for k := range form {
		if filterValueRE.MatchString(k) {
			values++
		}
	}
	f.mu.Lock()
	f.calls[form.Get("Action")]++
	f.mu.Unlock()
	if values > 200 {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>FilterLimitExceeded</Code>`+
			`<Message>The maximum number of filter values specified on a single call is 200</Message></Error></Errors>`+
			`<RequestID>0</RequestID></Response>`)
		return
	}
	f.next.ServeHTTP(w, r)
}

// TestListAssetsBatches: an inventory of hundreds of images confirms them
// and their snapshots in batches within EC2's filter limit, not one call
// per image, and still links every snapshot to its image.
func TestListAssetsBatches(t *testing.T) {
	motoServer.Reset(t)
	target, _ := url.Parse(motoServer.URL)
	limit := &filterLimit{next: httputil.NewSingleHostReverseProxy(target), calls: map[string]int{}}
	srv := httptest.NewServer(limit)
	t.Cleanup(srv.Close)
	awstest.Env(t, srv.URL)
	b, err := New(t.Context(), config.AWSBackend{AllowedAccounts: []string{awstest.Account}}, testRegions,
		WithPollInterval(5*time.Millisecond, 40*time.Millisecond), WithRetryMaxBackoff(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}

	// 250 images from one instance, straight into moto: more than one batch.
	c := ec2.NewFromConfig(awstest.Config(motoServer.URL, "us-east-1"))
	inst := runFrom(t, c, "ami-12c6146b")
	const n = 250
	for i := range n {
		if _, err := c.CreateImage(t.Context(), &ec2.CreateImageInput{
			InstanceId: aws.String(inst), Name: aws.String(fmt.Sprintf("img-%d", i)),
			TagSpecifications: tagSpecs(runTags(), ec2types.ResourceTypeImage),
		}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{} // snapshot -> image
	for _, im := range ownImages(t, c) {
		want[snapshotIDs(im)[0]] = aws.ToString(im.ImageId)
	}
	if len(want) != n {
		t.Fatalf("%d images with distinct snapshots, want %d", len(want), n)
	}

	limit.calls = map[string]int{}
	as, err := b.ListAssets(t.Context(), "us-east-1", cloud.Filter{Tags: map[string]string{cloud.TagManaged: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	images, snapshots := 0, 0
	for _, a := range as {
		switch a.Kind {
		case cloud.KindImage:
			images++
		case cloud.KindSnapshot:
			snapshots++
			if want[a.ID] == "" || a.Parent != want[a.ID] {
				t.Errorf("snapshot %s: parent %q, want %q", a.ID, a.Parent, want[a.ID])
			}
		}
	}
	if images != n || snapshots != n {
		t.Fatalf("listed %d images and %d snapshots, want %d of each", images, snapshots, n)
	}
	// ceil(250/200) = 2 batches of each.
	if limit.calls["DescribeImages"] != 2 || limit.calls["DescribeSnapshots"] != 2 {
		t.Errorf("calls %v: want 2 DescribeImages and 2 DescribeSnapshots", limit.calls)
	}
}
