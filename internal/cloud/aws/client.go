package aws

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// regional holds the clients of one region. SDK clients are safe for
// concurrent use, so one set serves every goroutine.
type regional struct {
	region string // the AWS region
	loc    string // the location asked for: region, or ACCOUNT/REGION in another account
	ec2    *ec2.Client
	ebs    *ebs.Client
	ssm    *ssm.Client
	s3     *s3.Client
	cfn    *cloudformation.Client
	tag    *resourcegroupstaggingapi.Client
}

// clientSet makes the regional clients lazily from one loaded SDK config.
// The build account's set also makes, on first use, the sets of the
// accounts in backend.aws.publish_accounts, whose credentials come from
// assuming the account's role with the build account's.
type clientSet struct {
	base    aws.Config
	regions []string

	stsOnce   sync.Once
	stsClient *sts.Client

	mu sync.Mutex
	by map[string]*regional

	roles  map[string]config.PublishAccount // account id -> its role, in the build account's set
	others map[string]*clientSet            // account id -> its clients, made on first use
	// identity is the account another account's credentials were seen
	// to act as ("" until checked).
	identity string
}

func newClientSet(ctx context.Context, cfg config.AWSBackend, regions []string, o options) (*clientSet, error) {
	load := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer { return newRetryer(o) }),
	}
	if cfg.Profile != "" {
		load = append(load, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	if o.httpClient != nil {
		load = append(load, awsconfig.WithHTTPClient(o.httpClient))
	} else {
		// A request that gets no answer times out and is retried, instead
		// of hanging until the step's deadline.
		load = append(load, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = responseTimeout
		})))
	}
	// LoadDefaultConfig reads the credential chain, the profile and
	// AWS_ENDPOINT_URL; each service client then applies its own
	// AWS_ENDPOINT_URL_<SERVICE> override when it is made.
	base, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		if cfg.Profile != "" {
			return nil, fmt.Errorf("aws backend: load SDK config with profile %q (backend.aws.profile): %w", cfg.Profile, err)
		}
		return nil, fmt.Errorf("aws backend: load SDK config: %w", err)
	}
	roles := map[string]config.PublishAccount{}
	for _, a := range cfg.PublishAccounts {
		roles[a.Account()] = a
	}
	return &clientSet{base: base, regions: regions, by: map[string]*regional{}, roles: roles, others: map[string]*clientSet{}}, nil
}

// sessionName names kiln's sessions in assumed roles, in CloudTrail.
const sessionName = "kiln"

// account returns the clients of another account, assuming its role with
// this set's credentials; the SDK's credential cache renews the session
// before it expires.
func (cs *clientSet) account(id string) (*clientSet, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if o, ok := cs.others[id]; ok {
		return o, nil
	}
	role, ok := cs.roles[id]
	if !ok {
		return nil, cloud.Mark(fmt.Errorf("account %s is not in backend.aws.publish_accounts; kiln has no role to act in it", id), cloud.ErrInvalid)
	}
	provider := stscreds.NewAssumeRoleProvider(cs.stsLocked(), role.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = sessionName
		if role.ExternalID != "" {
			o.ExternalID = aws.String(role.ExternalID)
		}
	})
	base := cs.base.Copy()
	base.Credentials = aws.NewCredentialsCache(provider)
	o := &clientSet{base: base, regions: cs.regions, by: map[string]*regional{}}
	cs.others[id] = o
	return o, nil
}

// responseTimeout bounds the wait for a response's headers. EC2 answers
// in well under a second; a minute means the connection is dead.
const responseTimeout = 60 * time.Second

// newRetryer is the SDK's standard retryer with more attempts and a longer
// cap on the backoff than its defaults (3 attempts, 20s). Standard mode
// rather than adaptive: adaptive adds a client-side send-rate limiter that
// delays even first attempts after one throttle, which suits a steady
// request stream better than kiln's bursts of waits and copies; exponential
// backoff with full jitter is what AWS recommends for the throttling and
// 5xx answers (and connection timeouts) we retry. The retry quota (token
// bucket) is off: it is meant to shed load from long-running services, and
// in a release run it would turn a throttling burst into failed steps.
//
// An endpoint that cannot be reached at all is given up on sooner (see
// reachRetryer).
func newRetryer(o options) aws.Retryer {
	std := retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = o.maxAttempts
		so.MaxBackoff = o.maxBackoff
		so.Backoff = retry.NewExponentialJitterBackoff(o.maxBackoff)
		so.RateLimiter = ratelimit.None
	})
	return reachRetryer{RetryerV2: std, log: o.logger}
}

// region returns the clients of a location, making them on first use: a
// region of this set's account, or ACCOUNT/REGION in an account of
// backend.aws.publish_accounts. A region outside the configured list is
// refused so a typo cannot create resources where nobody looks for them.
func (cs *clientSet) region(loc string) (*regional, error) {
	acct, region := config.SplitLocation(loc)
	if acct == "" {
		return cs.regional(region, loc)
	}
	o, err := cs.account(acct)
	if err != nil {
		return nil, err
	}
	return o.regional(region, loc)
}

// regional returns the clients of one of this set's regions, for loc.
func (cs *clientSet) regional(region, loc string) (*regional, error) {
	if !validRegion(region) {
		return nil, cloud.Mark(fmt.Errorf("region %q: want a region name such as us-east-1", region), cloud.ErrInvalid)
	}
	if len(cs.regions) > 0 && !slices.Contains(cs.regions, region) {
		return nil, cloud.Mark(fmt.Errorf("region %q is not configured (configured: %s)", region, strings.Join(cs.regions, ", ")), cloud.ErrInvalid)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if r, ok := cs.by[region]; ok {
		return r, nil
	}
	cfg := cs.base.Copy()
	cfg.Region = region
	r := &regional{
		region: region,
		loc:    loc,
		ec2:    ec2.NewFromConfig(cfg),
		ebs:    ebs.NewFromConfig(cfg),
		ssm:    ssm.NewFromConfig(cfg),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			// Custom endpoints (moto, MinIO, LocalStack) serve buckets
			// by path, not as virtual hosts.
			if o.BaseEndpoint != nil {
				o.UsePathStyle = true
			}
		}),
		cfn: cloudformation.NewFromConfig(cfg),
		tag: resourcegroupstaggingapi.NewFromConfig(cfg),
	}
	cs.by[region] = r
	return r, nil
}

// sts returns the STS client, in the first configured region (or the SDK
// config's, or us-east-1): regional STS endpoints all answer for the
// account.
func (cs *clientSet) sts() *sts.Client {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.stsLocked()
}

// stsLocked is sts for a caller holding cs.mu.
func (cs *clientSet) stsLocked() *sts.Client {
	cs.stsOnce.Do(func() {
		cfg := cs.base.Copy()
		switch {
		case len(cs.regions) > 0:
			cfg.Region = cs.regions[0]
		case cfg.Region == "":
			cfg.Region = "us-east-1"
		}
		cs.stsClient = sts.NewFromConfig(cfg)
	})
	return cs.stsClient
}
