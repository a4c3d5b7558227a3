package aws

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/kiln-images/kiln/internal/cloud"
)

// TestClaim: a claim is a key pair one holder at a time has: another is
// refused while the lease runs, takes it over once it lapsed, and the old
// holder's Unclaim then leaves the new holder's claim alone.
func TestClaim(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	a := cloud.Claim{Region: "us-east-1", Name: "grit.ci-runner.x86_64.latest", Holder: "kiln-20261121T093012Z-aaaaaa",
		Until: time.Now().Add(time.Minute), Tags: map[string]string{cloud.TagManaged: "true", cloud.TagAssetID: "kiln-20261121T093012Z-aaaaaa"}}
	b := a
	b.Holder = "kiln-20261121T093013Z-bbbbbb"
	if err := r.b.Claim(ctx, a); err != nil {
		t.Fatal(err)
	}
	var ce *cloud.ClaimedError
	if err := r.b.Claim(ctx, b); !errors.As(err, &ce) || ce.Holder != a.Holder {
		t.Fatalf("claim by another holder: %v", err)
	}
	if err := r.b.Claim(ctx, a); err != nil {
		t.Fatalf("renewal: %v", err)
	}
	// The claim is a kiln asset of its run: cleanup finds it.
	as, err := r.b.ListAssets(ctx, "us-east-1", cloud.Filter{Tags: map[string]string{cloud.TagAssetID: a.Holder}})
	if err != nil || len(as) != 1 || as[0].Kind != cloud.KindKeyPair {
		t.Fatalf("assets of the holder: %+v, %v", as, err)
	}
	// a lapses; b takes over.
	a.Until = time.Now().Add(-time.Second)
	if err := r.b.Claim(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := r.b.Claim(ctx, b); err != nil {
		t.Fatalf("takeover of a lapsed claim: %v", err)
	}
	if err := r.b.Unclaim(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := r.b.Claim(ctx, a); !errors.Is(err, cloud.ErrClaimed) {
		t.Fatalf("after the old holder's Unclaim: %v, want b's claim to stand", err)
	}
	if err := r.b.Unclaim(ctx, b); err != nil {
		t.Fatal(err)
	}
	out, err := r.ec2("us-east-1").DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil || len(out.KeyPairs) != 0 {
		t.Fatalf("key pairs left after both gave up: %+v, %v", out.KeyPairs, err)
	}
}
