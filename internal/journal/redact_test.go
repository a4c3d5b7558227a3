package journal

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	const (
		secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
		// Shaped like an STS session token: long base64.
		sessionToken = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6example0KeyMaterialAAAAbbbbCCCCddddEEEEffffGGGGhhhhIIIIjjjjKKKK+1234567890abcdef=="
	)
	tests := []struct {
		name, in string
		gone     []string // must not appear in the output
		kept     []string // must still appear
	}{
		{"password pair", "connect: password=hunter2 user=bob", []string{"hunter2"}, []string{"password=[REDACTED]", "user=bob"}},
		{"PASSWORD colon quoted", `config: "DB_PASSWORD": "s3cr3t!" rest`, []string{"s3cr3t!"}, []string{"DB_PASSWORD", "rest"}},
		{"passwd", "passwd: abc123", []string{"abc123"}, []string{"passwd"}},
		{"env secret key", "AWS_SECRET_ACCESS_KEY=" + secretKey, []string{secretKey, "wJalr"}, []string{"AWS_SECRET_ACCESS_KEY="}},
		{"bare secret key", "bad key " + secretKey + " in profile", []string{secretKey}, []string{"bad key [REDACTED] in profile"}},
		{"json secret", `{"AccessKeyId":"AKIAIOSFODNN7EXAMPLE","SecretAccessKey":"` + secretKey + `"}`,
			[]string{secretKey}, []string{"AKIAIOSFODNN7EXAMPLE"}},
		{"session token pair", "aws_session_token = " + sessionToken, []string{sessionToken, "IQoJb3Jp"}, []string{"aws_session_token"}},
		{"bare session token", "token " + sessionToken + " expired", []string{sessionToken, "IQoJb3Jp"}, []string{"expired"}},
		{"presigned url", "GET https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE&X-Amz-Signature=abcdef0123&X-Amz-Expires=60: 403",
			[]string{"FwoGZXIvYXdzEXAMPLE", "abcdef0123"}, []string{"X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Expires=60", ": 403"}},
		{"bearer", "Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig_ok-x", []string{"eyJhbGciOi"}, []string{"Bearer [REDACTED]"}},
		{"url password", "dial https://admin:pa55w0rd@registry.example.com/v2: refused", []string{"pa55w0rd"}, []string{"https://admin:", "@registry.example.com/v2"}},
		{"api key", "api_key=k-123456 region=us-east-1", []string{"k-123456"}, []string{"region=us-east-1"}},
		// Things that are not secrets stay.
		{"plain error", "copy ami-0123456789abcdef0 to eu-west-1: InvalidAMIID.NotFound", nil, []string{"copy ami-0123456789abcdef0 to eu-west-1: InvalidAMIID.NotFound"}},
		{"git commit", "manifest at 3f786850e387550fdab836ed7e6dc881de23001b differs", nil, []string{"3f786850e387550fdab836ed7e6dc881de23001b"}},
		{"sha256", "blob sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 missing", nil, []string{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}},
		{"client token", "CopyImage ClientToken=kiln-20261121T093012Z-7f3a9c-replicate-us-east-1: IdempotentParameterMismatch", nil, []string{"ClientToken=kiln-20261121T093012Z-7f3a9c-replicate-us-east-1"}},
		{"access key id", "credentials AKIAIOSFODNN7EXAMPLE are invalid", nil, []string{"AKIAIOSFODNN7EXAMPLE"}},
		{"empty", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(tt.in)
			for _, s := range tt.gone {
				if strings.Contains(got, s) {
					t.Errorf("Redact(%q) = %q, still contains %q", tt.in, got, s)
				}
			}
			for _, s := range tt.kept {
				if !strings.Contains(got, s) {
					t.Errorf("Redact(%q) = %q, lost %q", tt.in, got, s)
				}
			}
			if len(tt.gone) > 0 && !strings.Contains(got, redacted) {
				t.Errorf("Redact(%q) = %q, no %s marker", tt.in, got, redacted)
			}
			if len(tt.gone) == 0 && got != tt.in {
				t.Errorf("Redact(%q) = %q, want it unchanged", tt.in, got)
			}
		})
	}
}
