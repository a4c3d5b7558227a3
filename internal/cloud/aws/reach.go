package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// maxUnreachable is how many attempts a request gets when the endpoint
// cannot be reached at all (refused, no route, no such host): throttling
// and 5xx answers deserve the full retry budget, but an endpoint that is
// not there will not appear within it, and ten attempts with backoff take
// minutes to say so.
const maxUnreachable = 3

// reachRetryer is the retryer of every client: r for everything, except
// that a request whose endpoint cannot be reached gives up after
// maxUnreachable attempts, and each such retry is logged with what failed,
// so that a wrong AWS_ENDPOINT_URL or a missing network is reported in
// seconds, saying so.
type reachRetryer struct {
	aws.RetryerV2
	log *slog.Logger
}

func (r reachRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	if endpoint, cause, ok := unreachable(err); ok {
		if attempt >= maxUnreachable {
			return 0, &UnreachableError{Endpoint: endpoint, Attempts: attempt, Err: cause}
		}
		d, derr := r.RetryerV2.RetryDelay(attempt, err)
		if derr == nil {
			r.log.Warn("aws endpoint unreachable; retrying", "endpoint", endpoint, "attempt", attempt, "of", maxUnreachable,
				"in", d.Round(10*time.Millisecond), "cause", cause.Error())
		}
		return d, derr
	}
	return r.RetryerV2.RetryDelay(attempt, err)
}

// GetAttemptToken passes on to the wrapped retryer (aws.RetryerV2 has it
// twice, through aws.Retryer).
func (r reachRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	return r.RetryerV2.GetAttemptToken(ctx)
}

// UnreachableError means requests to an endpoint never got there.
type UnreachableError struct {
	Endpoint string // scheme://host:port
	Attempts int
	Err      error // the network error, without the SDK's wrapping
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s (%v) after %d attempts; check the network, the region and any endpoint override (AWS_ENDPOINT_URL)",
		e.Endpoint, e.Err, e.Attempts)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// unreachable reports whether err says the request never reached its
// endpoint, with the endpoint and the network error.
func unreachable(err error) (endpoint string, cause error, ok bool) {
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		cause = dns
	case errors.As(err, &op) && op.Op == "dial":
		cause = op
	default:
		return "", nil, false
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			endpoint = u.Scheme + "://" + u.Host
		}
	}
	if endpoint == "" {
		endpoint = "the endpoint"
	}
	return endpoint, cause, true
}
