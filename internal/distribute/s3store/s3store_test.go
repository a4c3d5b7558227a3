package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/distribute"
	"github.com/kiln-images/kiln/internal/minisign"
)

var moto *awstest.Moto

func TestMain(m *testing.M) { os.Exit(awstest.RunMain(m, &moto)) }

func client(t *testing.T) *s3.Client {
	return s3.NewFromConfig(awstest.Config(moto.URL, "us-east-1"), func(o *s3.Options) { o.UsePathStyle = true })
}

// export puts an object as ExportImage would and returns its location
// and content.
func export(t *testing.T, c *s3.Client, key string, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("exports"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	return "s3://exports/" + key, data
}

func keys(t *testing.T, c *s3.Client, bucket string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, o := range out.Contents {
		ks = append(ks, aws.ToString(o.Key))
	}
	return ks
}

// The tree in a bucket: exports copied server-side (a large one in
// parts), read back, signed index; retired files and old products files
// leave one publication after the index dropped them.
func TestTreeInBucket(t *testing.T) {
	moto.Reset(t)
	c := client(t)
	for _, b := range []string{"exports", "downloads"} {
		if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	st := New(awstest.Config(moto.URL, "us-east-1"), "downloads", "us-east-1", "demo", nil)
	st.CopyLimit, st.PartSize = 6<<20, 5<<20
	key, _ := minisign.GenerateKey(nil)
	pub := &distribute.Publisher{Store: st, Project: "demo", Key: key, Retention: distribute.Retention{Keep: 1}}
	var contents [][]byte
	release := func(v string, day int, size int) distribute.Release {
		loc, data := export(t, c, "exports/export-ami-"+v+".vmdk", size)
		contents = append(contents, data)
		sum := sha256.Sum256(data)
		return distribute.Release{Channel: "latest", UseCase: "runner", Arch: "x86_64", Version: v, AssetID: "kiln-" + v,
			Created: time.Date(2026, 11, day, 3, 0, 0, 0, time.UTC),
			Files:   []distribute.SourceFile{{Format: "vmdk", Source: distribute.Source{Object: loc}, SHA256: hex.EncodeToString(sum[:])}}}
	}
	ctx := context.Background()
	if _, err := pub.Publish(ctx, []distribute.Release{release("1.0", 1, 11<<20)}, true); err != nil {
		t.Fatal(err)
	}
	got := keys(t, c, "downloads")
	for _, k := range []string{"images/runner/x86_64/1.0/runner-x86_64-1.0.vmdk", "images/runner/x86_64/1.0/SHA256SUMS", "streams/v1/index.json", "streams/v1/index.json.minisig"} {
		if !slices.Contains(got, k) {
			t.Fatalf("%s not in the bucket: %v", k, got)
		}
	}
	obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("downloads"), Key: aws.String("images/runner/x86_64/1.0/runner-x86_64-1.0.vmdk")})
	if err != nil {
		t.Fatal(err)
	}
	copied, _ := io.ReadAll(obj.Body)
	if !bytes.Equal(copied, contents[0]) || aws.ToString(obj.ContentType) != "application/x-vmdk" || !strings.Contains(aws.ToString(obj.CacheControl), "immutable") {
		t.Fatalf("the 11 MiB export copied in parts: %d bytes, type %q, cache %q", len(copied), aws.ToString(obj.ContentType), aws.ToString(obj.CacheControl))
	}
	pk := key.Public()
	if _, err := distribute.LoadCatalog(ctx, fetcher{st}, &pk); err != nil {
		t.Fatalf("the index in the bucket does not verify: %v", err)
	}
	firstProducts := slices.DeleteFunc(keys(t, c, "downloads"), func(k string) bool { return !strings.HasPrefix(k, "streams/v1/latest-") })

	// Keep 1: 1.0 leaves the index at 1.1, its files at 1.2.
	if _, err := pub.Publish(ctx, []distribute.Release{release("1.1", 2, 1000)}, true); err != nil {
		t.Fatal(err)
	}
	got = keys(t, c, "downloads")
	if !slices.Contains(got, "images/runner/x86_64/1.0/SHA256SUMS") || !slices.Contains(got, firstProducts[0]) {
		t.Fatalf("1.0's files or products went with the index that dropped them: %v", got)
	}
	if _, err := pub.Publish(ctx, []distribute.Release{release("1.2", 3, 1000)}, true); err != nil {
		t.Fatal(err)
	}
	got = keys(t, c, "downloads")
	for _, k := range got {
		if strings.HasPrefix(k, "images/runner/x86_64/1.0/") || k == firstProducts[0] {
			t.Errorf("%s is still in the bucket two publications after it left the index", k)
		}
	}
	// No CloudFront distribution: nothing to invalidate, no error.
	if id, err := st.Invalidate(ctx, []string{"/streams/v1/index.json"}, "abc"); err != nil || id != "" {
		t.Errorf("invalidate without a distribution: %q %v", id, err)
	}
	// Compressing into S3 is refused rather than faked.
	if err := st.Put(ctx, "images/x/y/z/f.raw.gz", distribute.Source{Bytes: []byte("x"), Gzip: true}); err == nil {
		t.Error("a gzip put was accepted")
	}
}
