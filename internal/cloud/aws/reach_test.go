package aws

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

// TestUnreachableEndpointFailsFast: with nothing listening at the
// endpoint, a call gives up after maxUnreachable attempts, in seconds, with
// an error that names the endpoint and says what to check, and each retry
// is logged with its cause.
func TestUnreachableEndpointFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	awstest.Env(t, endpoint)
	var log bytes.Buffer
	b, err := New(t.Context(), config.AWSBackend{AllowedAccounts: []string{awstest.Account}}, []string{"us-east-1"},
		WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = b.Account(t.Context())
	took := time.Since(start)
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Attempts != maxUnreachable || !strings.Contains(err.Error(), "cannot reach "+endpoint) {
		t.Fatalf("Account: %v, want an UnreachableError after %d attempts", err, maxUnreachable)
	}
	if took > 20*time.Second {
		t.Errorf("giving up took %s", took)
	}
	if n := strings.Count(log.String(), "aws endpoint unreachable; retrying"); n != maxUnreachable-1 || !strings.Contains(log.String(), "connection refused") {
		t.Errorf("%d retries logged, want %d:\n%s", n, maxUnreachable-1, log.String())
	}
}
