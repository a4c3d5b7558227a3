package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

var _ cloud.Claimer = (*Backend)(nil)

// Tags on the key pair that holds a claim.
const (
	tagClaimHolder = "kiln:claim-holder"
	tagClaimUntil  = "kiln:claim-until"
)

// A claim is a key pair named after it. EC2 makes key pair names unique per
// account and region: of two CreateKeyPair calls with one name, one fails
// with InvalidKeyPair.Duplicate, whichever machines they come from. The
// holder and the lease are the key pair's tags; an expired claim is taken
// over by deleting exactly that key pair (by its id, so a claim someone
// else took over meanwhile is not touched) and creating it anew. The key
// pair is tagged with the holder run's creation tags, so kiln cleanup
// --run removes a crashed run's claim with the rest of it.

// claimKeyName is the key pair that holds claim name: printable ASCII
// only, at most 255 characters.
func claimKeyName(name string) string {
	var b strings.Builder
	b.WriteString("kiln-claim.")
	for _, r := range name {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '.' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 255 {
		s = s[:255]
	}
	return s
}

// Claim takes (or renews) the claim; see cloud.Claimer.
func (b *Backend) Claim(ctx context.Context, cl cloud.Claim) error {
	if err := b.CheckAccount(ctx); err != nil {
		return err
	}
	c, err := b.clients.region(cl.Region)
	if err != nil {
		return err
	}
	key := claimKeyName(cl.Name)
	until := cl.Until.UTC().Format(time.RFC3339)
	for range 4 {
		kp, found, err := describeKeyPair(ctx, c, key)
		if err != nil {
			return fmt.Errorf("claim %s: %w", cl.Name, err)
		}
		if !found {
			tags := withTags(cl.Tags, map[string]string{tagClaimHolder: cl.Holder, tagClaimUntil: until})
			_, err := c.ec2.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{
				KeyName: aws.String(key), TagSpecifications: tagSpecs(tags, ec2types.ResourceTypeKeyPair),
			})
			switch {
			case err == nil:
				return nil
			case isCode(err, "InvalidKeyPair.Duplicate"):
				continue // another machine was quicker: see who
			default:
				return fmt.Errorf("claim %s: %w", cl.Name, classify(err))
			}
		}
		tags := tagMap(kp.Tags)
		holder := tags[tagClaimHolder]
		lease, _ := time.Parse(time.RFC3339, tags[tagClaimUntil])
		switch {
		case holder == cl.Holder:
			_, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{
				Resources: []string{aws.ToString(kp.KeyPairId)},
				Tags:      ec2Tags(map[string]string{tagClaimUntil: until}),
			})
			if err != nil {
				return fmt.Errorf("renew claim %s: %w", cl.Name, classify(err))
			}
			return nil
		case time.Now().Before(lease):
			return &cloud.ClaimedError{Name: cl.Name, Holder: holder, Until: lease}
		}
		b.log.Info("taking over an expired claim", "name", cl.Name, "holder", holder, "lapsed", lease)
		if _, err := c.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyPairId: kp.KeyPairId}); err != nil && !errors.Is(classify(err), cloud.ErrNotFound) {
			return fmt.Errorf("claim %s: remove the expired claim of %s: %w", cl.Name, holder, classify(err))
		}
	}
	return fmt.Errorf("claim %s: others keep claiming it at the same time; try again", cl.Name)
}

// Unclaim gives up the claim if cl.Holder holds it.
func (b *Backend) Unclaim(ctx context.Context, cl cloud.Claim) error {
	c, err := b.clients.region(cl.Region)
	if err != nil {
		return err
	}
	kp, found, err := describeKeyPair(ctx, c, claimKeyName(cl.Name))
	if err != nil || !found || tagMap(kp.Tags)[tagClaimHolder] != cl.Holder {
		return err
	}
	if _, err := c.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyPairId: kp.KeyPairId}); err != nil && !errors.Is(classify(err), cloud.ErrNotFound) {
		return fmt.Errorf("give up claim %s: %w", cl.Name, classify(err))
	}
	return nil
}

// describeKeyPair returns the key pair called name, if there is one.
func describeKeyPair(ctx context.Context, c *regional, name string) (ec2types.KeyPairInfo, bool, error) {
	out, err := c.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{name}})
	if err != nil {
		if isCode(err, "InvalidKeyPair.NotFound") || errors.Is(classify(err), cloud.ErrNotFound) {
			return ec2types.KeyPairInfo{}, false, nil
		}
		return ec2types.KeyPairInfo{}, false, classify(err)
	}
	if len(out.KeyPairs) == 0 {
		return ec2types.KeyPairInfo{}, false, nil
	}
	return out.KeyPairs[0], true, nil
}
