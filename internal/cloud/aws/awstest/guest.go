package awstest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Guests plays the guests of kiln's instances until the test ends. Moto
// never runs user data and puts instances straight into running, so for
// every instance kiln starts it does what the user data's bootstrap does
// on a real instance: it reads the user data, fetches the bundle through
// the presigned URL in it (or unpacks it from the user data itself),
// checks the bundle's sha256 against the digest the user data names, and
// reports PASS, or FAIL with the reason, on the console (see Console).
// A build instance is then stopped, as the bundle's run.sh powers the
// machine off when the steps are done (InstanceInitiatedShutdownBehavior
// stop); a test instance is left running for kiln to terminate.
//
// The steps themselves do not run here: they would write to the host.
// The aws package runs bundles in a sandbox for that (userdata_test.go);
// here a test can inspect each fetched bundle's files (Bundles).
//
// It talks to moto directly for instances and user data; bundles are
// fetched from the URL in the user data, which points at whatever
// endpoint kiln used (the fault proxy, the stub, moto).
type Guests struct {
	mu      sync.Mutex
	seen    map[string]bool
	console map[string]string // instance id -> console text
	bundles map[string]Bundle // instance id -> what it fetched
	fail    func(phase, instance string) string
}

// Bundle is what a guest found in the bundle of an instance's user data.
type Bundle struct {
	Phase  string            // kiln:phase of the instance
	URL    string            // "" when the bundle was inline
	SHA256 string            // the digest the user data names
	Size   int               // bytes of the .tar.gz
	Files  map[string][]byte // regular files by path
	Modes  map[string]int64  // permission bits by path
	Err    error             // why the bootstrap failed, if it did
}

// SimulateGuests starts playing the guests of instances tagged
// kiln:phase build or test in regions.
func SimulateGuests(t testing.TB, motoURL string, regions ...string) *Guests {
	g := &Guests{seen: map[string]bool{}, console: map[string]string{}, bundles: map[string]Bundle{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	clients := make([]*ec2.Client, len(regions))
	for i, r := range regions {
		clients[i] = ec2.NewFromConfig(Config(motoURL, r))
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, c := range clients {
				g.play(ctx, c)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return g
}

// FailWith makes the guest of the instances fn picks report FAIL with
// fn's text instead of PASS (after the bootstrap checks, which come
// first): a failing step or test.
func (g *Guests) FailWith(fn func(phase, instance string) string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail = fn
}

// Console is the console text of an instance a guest has played: for a
// stub's SetConsole. ok is false for instances it has not played.
func (g *Guests) Console(region, instance string) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	text, ok := g.console[instance]
	return text, ok
}

// Bundles returns what the guests fetched, by instance id.
func (g *Guests) Bundles() map[string]Bundle {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]Bundle, len(g.bundles))
	for k, v := range g.bundles {
		out[k] = v
	}
	return out
}

func (g *Guests) play(ctx context.Context, c *ec2.Client) {
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:kiln:phase"), Values: []string{"build", "test"}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
	}})
	if err != nil {
		return // moto is being reset or the test is ending; try again
	}
	var stop []string
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			id := aws.ToString(inst.InstanceId)
			phase := ""
			for _, tag := range inst.Tags {
				if aws.ToString(tag.Key) == "kiln:phase" {
					phase = aws.ToString(tag.Value)
				}
			}
			g.mu.Lock()
			seen := g.seen[id]
			g.seen[id] = true
			g.mu.Unlock()
			if !seen {
				g.boot(ctx, c, id, phase)
			}
			if phase == "build" {
				stop = append(stop, id)
			}
		}
	}
	if len(stop) > 0 {
		c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: stop})
	}
}

// Markers, as the generated scripts print them.
var markers = map[string]string{"build": "KILN-BUILD-RESULT: ", "test": "KILN-TEST-RESULT: "}

// boot does what the user data's bootstrap does and records the console.
func (g *Guests) boot(ctx context.Context, c *ec2.Client, id, phase string) {
	attr, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameUserData,
	})
	if err != nil || attr.UserData == nil {
		return
	}
	ud, err := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
	if err != nil || !bytes.Contains(ud, []byte("\nsum=")) {
		return // not a kiln bootstrap: nothing to play
	}
	b := fetchBundle(ctx, ud)
	b.Phase = phase
	text := markers[phase]
	switch {
	case b.Err != nil:
		text += "FAIL bootstrap: " + b.Err.Error()
	default:
		text += "PASS"
		g.mu.Lock()
		fail := g.fail
		g.mu.Unlock()
		if fail != nil {
			if reason := fail(phase, id); reason != "" {
				text = markers[phase] + "FAIL " + reason
			}
		}
	}
	g.mu.Lock()
	g.bundles[id] = b
	g.console[id] = "[    3.2] cloud-init[412]: running user data\n" + text + "\n"
	g.mu.Unlock()
}

var (
	sumRE    = regexp.MustCompile(`(?m)^sum=([0-9a-f]{64})$`)
	urlRE    = regexp.MustCompile(`(?m)^url='([^']*)'$`)
	inlineRE = regexp.MustCompile(`(?s)<<'KILN_EOF'[^\n]*\n(.*?)\nKILN_EOF\n`)
)

// fetchBundle gets the bundle the user data names and checks it.
func fetchBundle(ctx context.Context, ud []byte) Bundle {
	var b Bundle
	m := sumRE.FindSubmatch(ud)
	if m == nil {
		b.Err = errors.New("no digest in the user data")
		return b
	}
	b.SHA256 = string(m[1])
	var data []byte
	if u := urlRE.FindSubmatch(ud); u != nil {
		b.URL = string(u[1])
		var err error
		if data, err = get(ctx, b.URL); err != nil {
			b.Err = fmt.Errorf("cannot fetch the bundle: %w", err)
			return b
		}
	} else if in := inlineRE.FindSubmatch(ud); in != nil {
		var err error
		if data, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(string(in[1]), "\n", "")); err != nil {
			b.Err = fmt.Errorf("cannot write the bundle: %w", err)
			return b
		}
	} else {
		b.Err = errors.New("neither a URL nor an inline bundle in the user data")
		return b
	}
	b.Size = len(data)
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != b.SHA256 {
		b.Err = fmt.Errorf("the bundle's sha256 is %s, not %s", got, b.SHA256)
		return b
	}
	b.Files, b.Modes, b.Err = unpack(data)
	return b
}

// get fetches url like curl --retry 5: transient failures (the fault
// proxy's throttles and 503s) are tried again.
func get(ctx context.Context, url string) ([]byte, error) {
	var last error
	for attempt := range 6 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err
			continue
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			last = err
		case resp.StatusCode == http.StatusOK:
			return data, nil
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			last = fmt.Errorf("HTTP %s", resp.Status)
		default:
			return nil, fmt.Errorf("HTTP %s", resp.Status)
		}
	}
	return nil, last
}

func unpack(data []byte) (map[string][]byte, map[string]int64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("cannot unpack the bundle: %w", err)
	}
	tr := tar.NewReader(zr)
	files, modes := map[string][]byte{}, map[string]int64{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("cannot unpack the bundle: %w", err)
		}
		modes[strings.TrimSuffix(hdr.Name, "/")] = hdr.Mode
		if hdr.Typeflag == tar.TypeReg {
			if files[hdr.Name], err = io.ReadAll(tr); err != nil {
				return nil, nil, fmt.Errorf("cannot unpack the bundle: %w", err)
			}
		}
	}
	if _, ok := files["run.sh"]; !ok {
		return nil, nil, errors.New("the bundle has no run.sh")
	}
	return files, modes, nil
}
