package awsrelease

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
)

// BuildRegion is where both tools build; Destinations are the 15 regions
// the image is copied to.
const BuildRegion = "us-east-1"

// Destinations are fifteen commercial regions besides the build region.
var Destinations = []string{
	"us-east-2", "us-west-1", "us-west-2", "ca-central-1",
	"eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1",
	"ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ap-northeast-2", "ap-south-1",
	"sa-east-1",
}

// World is one measured run's view of moto: a fresh account holding only
// the source image, reached through the recorder and the stub.
type World struct {
	Moto     *awstest.Moto
	Stub     *awstest.Stub
	Recorder *Recorder
	URL      string // the recorder's: what the tools are pointed at

	srv *httptest.Server
}

// NewWorld resets moto (which then holds only SourceAMI, when it was
// started with WriteSourceImages' file) and puts a new stub and recorder
// in front of it. Close stops the recorder.
func NewWorld(tb testing.TB, moto *awstest.Moto, latency time.Duration) (*World, error) {
	if err := reset(moto.URL); err != nil {
		return nil, err
	}
	w := &World{Moto: moto, Stub: awstest.NewStub(tb, moto.URL)}
	// The guest of kiln's test instance prints the marker its test script
	// would print; moto runs no user data.
	w.Stub.SetConsole(func(region, instance string) (string, bool) {
		return "[    9.8] cloud-init[812]: running kiln tests\nKILN-TEST-RESULT: PASS\n", true
	})
	w.Recorder = NewRecorder(w.Stub.URL, latency)
	w.srv = httptest.NewServer(w.Recorder)
	w.URL = w.srv.URL
	return w, nil
}

// Close stops the recorder's server.
func (w *World) Close() { w.srv.Close() }

// reset drops all of moto's state.
func reset(motoURL string) error {
	resp, err := http.Post(motoURL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset moto: %s", resp.Status)
	}
	return nil
}

// SourceAMI is the public Debian-like image both tools start from. Moto
// gives the images it makes (CreateImage, RegisterImage) a root device of
// type "standard", which Packer refuses as a source; only images it loads
// at start can say "ebs". WriteSourceImages writes a file for
// MOTO_AMIS_PATH holding just this one, so every region of every reset
// account has it, and nothing else.
const SourceAMI = "ami-0b5e1d2c3a4f56789"

// WriteSourceImages writes moto's image list (for MOTO_AMIS_PATH) to path.
func WriteSourceImages(path string) error {
	images := []map[string]any{{
		"ami_id":              SourceAMI,
		"name":                "debian-12-amd64-20260101-2000",
		"description":         "Debian 12 (bench source image)",
		"owner_id":            "136693071363",
		"public":              true,
		"state":               "available",
		"architecture":        "x86_64",
		"virtualization_type": "hvm",
		"hypervisor":          "xen",
		"root_device_type":    "ebs",
		"root_device_name":    "/dev/xvda",
		"image_type":          "machine",
		"image_location":      "136693071363/debian-12-amd64-20260101-2000",
		"sriov":               "simple",
	}}
	data, err := json.MarshalIndent(images, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// MakeBucket makes an S3 bucket in BuildRegion, straight in moto.
func (w *World) MakeBucket(ctx context.Context, name string) error {
	c := s3.NewFromConfig(awstest.Config(w.Moto.URL, BuildRegion), func(o *s3.Options) { o.UsePathStyle = true })
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	return err
}

// WriteSampleDisk writes the 64 MiB sparse raw disk the upload variant of
// BenchmarkRelease uploads: 8 MiB of data in 16 blocks spread over it.
func WriteSampleDisk(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(64 << 20); err != nil {
		f.Close()
		return err
	}
	block := make([]byte, 512<<10)
	for i := range 16 {
		for j := range block {
			block[j] = byte(i*31 + j)
		}
		if _, err := f.WriteAt(block, int64(i)*4<<20); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
