package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
)

// TestInterruptedErrorsInKilnsWords: an error a signal caused prints what
// kiln was doing and "interrupted", not the SDK's text.
func TestInterruptedErrorsInKilnsWords(t *testing.T) {
	sdk := &smithy.OperationError{ServiceID: "EC2", OperationName: "RunInstances",
		Err: fmt.Errorf("https response error StatusCode: 0, RequestID: , canceled, %w", &aws.RequestCanceledError{Err: context.Canceled})}
	err := fmt.Errorf("build ci-runner (run kiln-20261121T093012Z-7f3a9c): aws: run build instance in us-east-1: %w\nresume with: kiln release --resume kiln-20261121T093012Z-7f3a9c", sdk)
	var stderr bytes.Buffer
	g := &globalOptions{streams: &streams{err: &stderr}}
	if code := exitCode(err, g); code != exitError {
		t.Fatalf("exit %d", code)
	}
	got := stderr.String()
	want := "kiln: interrupted: build ci-runner (run kiln-20261121T093012Z-7f3a9c): aws: run build instance in us-east-1: interrupted\nresume with: kiln release --resume kiln-20261121T093012Z-7f3a9c\n"
	if got != want {
		t.Errorf("printed\n%q\nwant\n%q", got, want)
	}
	stderr.Reset()
	exitCode(fmt.Errorf("wait for image: %w", context.Canceled), g)
	if stderr.String() != "kiln: interrupted: wait for image: interrupted\n" {
		t.Errorf("printed %q", stderr.String())
	}
}

// TestInterruptAWSRelease: SIGINT while a cloud call is in flight ends
// kiln with exit 2 and a message in its own words.
func TestInterruptAWSRelease(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	w.faults.Fail(awstest.Rule{Service: "ec2", Action: "RunInstances", Delay: time.Minute})
	p := startKiln(t, nil, "release", "ci-runner", "-c", w.cfg)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, held := w.faults.Counts(); held > 0 {
			break
		}
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("kiln never reached RunInstances\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	p.cmd.Process.Signal(os.Interrupt)
	code := p.wait()
	stderr := p.stderr.String()
	if code != 2 || !strings.Contains(stderr, "kiln: interrupted: ") || !strings.Contains(stderr, "resume with: kiln release --resume") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, raw := range []string{"operation error", "context canceled", "https response error"} {
		if strings.Contains(stderr, raw) {
			t.Errorf("stderr holds %q:\n%s", raw, stderr)
		}
	}
}

// TestValidateRefusesSpecialFiles: a FIFO given as kiln.yaml is refused at
// once instead of blocking kiln (which then ignored SIGINT and SIGTERM).
func TestValidateRefusesSpecialFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "kiln.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var stderr string
	var code int
	go func() {
		defer close(done)
		_, stderr, code = kiln(t, "validate", "-c", fifo)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("kiln validate -c FIFO hangs")
	}
	if code != 2 || !strings.Contains(stderr, fifo+": is not a regular file (a named pipe)") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// TestInitChecksBeforeWriting: a dangling link where init would make a
// directory is found before anything is written.
func TestInitChecksBeforeWriting(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(t.TempDir(), "gone"), filepath.Join(dir, "scripts")); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := kiln(t, "init", dir)
	if code != 2 || !strings.Contains(stderr, filepath.Join(dir, "scripts")+" must be directories") || !strings.Contains(stderr, "nothing was written") {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("init wrote %v before failing", names)
	}
}

// TestUnreachableEndpoint: with nothing listening at the endpoint, kiln
// says what it could not reach, within seconds, not minutes.
func TestUnreachableEndpoint(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()
	awstest.Env(t, endpoint)
	start := time.Now()
	_, stderr, code := w.kiln(t, "assets")
	if code != 2 || !strings.Contains(stderr, "kiln: aws: who am I: get caller identity: cannot reach "+endpoint) ||
		!strings.Contains(stderr, "aws endpoint unreachable; retrying") || strings.Contains(stderr, "operation error") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("kiln took %s to give up", took)
	}
}
