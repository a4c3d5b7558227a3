// Command inventory measures `kiln assets --all` at scale, on the local
// backend and on the aws backend through moto, side by side with the
// minimal scan (package scale): wall time over several interleaved rounds
// and the number of API (aws) or backend (local) calls.
//
// Run it with scripts/bench-scale.sh; by hand:
//
//	go build -o /tmp/kiln ./cmd/kiln
//	go run ./bench/inventory -kiln /tmp/kiln -out /tmp/inventory.md
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/kiln-images/kiln/bench/inventory/scale"
	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
)

type options struct {
	scale.Options
	localImages, awsImages int
}

func main() {
	scale.MaybePeer()
	var o options
	o.Register(flag.CommandLine)
	flag.IntVar(&o.localImages, "local-images", 2000, "kiln-managed images per local region")
	flag.IntVar(&o.awsImages, "aws-images", 250, "kiln-managed images per aws region (moto is slow beyond a few hundred)")
	flag.Parse()
	scale.Main("inventory", o.Options, map[string]scale.Bench{
		"local": func(ctx context.Context, w io.Writer) error { return benchLocal(ctx, o, w) },
		"aws":   func(ctx context.Context, w io.Writer) error { return benchAWS(ctx, o, w) },
	})
}

// runID names the run of the i-th release: each release has one copy per
// region, all with the same asset id.
func runID(i int) string { return fmt.Sprintf("kiln-20260101T000000Z-%06x", i) }

func releaseSpec(created time.Time) func(region string, i int) scale.ImageSpec {
	return func(region string, i int) scale.ImageSpec {
		return scale.ImageSpec{
			Name: fmt.Sprintf("uc-01-x86_64-%d", i),
			Tags: map[string]string{
				cloud.TagManaged: "true", cloud.TagProject: "scale", cloud.TagAssetID: runID(i), cloud.TagUseCase: "uc-01", cloud.TagArch: "x86_64",
				cloud.TagVersion: fmt.Sprint(i), cloud.TagPhase: cloud.PhaseReplicate, cloud.TagTest: cloud.TestPassed,
				"deployment_name": "scale",
			},
			Created: created,
		}
	}
}

// checkAssets checks that kiln assets found exactly want assets.
func checkAssets(want int) func(scale.Result) error {
	return func(res scale.Result) error {
		if res.Code != 0 {
			return fmt.Errorf("exit %d", res.Code)
		}
		var rep struct {
			Schema string        `json:"schema"`
			Assets []cloud.Asset `json:"assets"`
		}
		if err := json.Unmarshal(res.Stdout, &rep); err != nil {
			return err
		}
		if rep.Schema != "kiln.assets/v1" || len(rep.Assets) != want {
			return fmt.Errorf("listed %d assets (schema %q), want %d", len(rep.Assets), rep.Schema, want)
		}
		return nil
	}
}

func benchLocal(ctx context.Context, o options, w io.Writer) error {
	p, err := o.NewProject("kiln-bench-inventory-", "local", 1)
	if err != nil {
		return err
	}
	defer p.Close()
	cfg := p.Config
	start := time.Now()
	fmt.Fprintf(os.Stderr, "local: seeding %d regions x %d images...\n", o.LocalRegions, o.localImages)
	if _, err := scale.SeedLocal(ctx, cfg, o.localImages, releaseSpec(time.Now().Add(-48*time.Hour))); err != nil {
		return err
	}
	seeded := time.Since(start)
	total := o.LocalRegions * o.localImages
	env := scale.Env()
	args := []string{"assets", "--all", "-o", "json", "-c", p.Path}

	// Backend calls, counted in process on the same code path as the
	// command (assets.Scan over the configured regions).
	b, err := local.New(cfg.Backend.Local, cfg.Backend.Local.Root, cfg.Regions)
	if err != nil {
		return err
	}
	counter := scale.NewCountingBackend(b)
	inv := assets.Scan(ctx, counter, cfg.Regions, cloud.Filter{}, len(cfg.Regions))
	if err := inv.Err(); err != nil {
		return err
	}
	if len(inv.Assets) != total {
		return fmt.Errorf("scan found %d assets, want %d", len(inv.Assets), total)
	}
	calls := counter.Calls()
	noCount := func() (int, string) { return calls["ListAssets"], "" }

	vs := o.KilnVariants(env, args, noCount, checkAssets(total))
	peer, err := scale.PeerVariant("local", cfg.Backend.Local.Root, p.Regions, total, func() (int, string) { return len(p.Regions), "" })
	if err != nil {
		return err
	}
	vs = append(vs, peer)
	if err := scale.Warm(ctx, vs); err != nil {
		return err
	}
	samples, err := scale.Interleave(ctx, o.Reps, vs, os.Stderr)
	if err != nil {
		return err
	}
	sys, serr := scale.Syscalls(ctx, o.Kiln, env, args...)

	fmt.Fprintf(w, "### Inventory, local backend: %d regions x %d images (%d records)\n\n", o.LocalRegions, o.localImages, total)
	fmt.Fprintf(w, "Seeded in %s through the store's API (one import per region, then copies within the region). "+
		"`kiln assets --all -o json` as a separate process, %d interleaved rounds after one warm-up run each (page cache warm); "+
		"the peer, `minimal`, a process that reads and decodes every image record, regions in parallel, and prints only their number.\n\n", seeded.Round(time.Second), o.Reps)
	fmt.Fprint(w, scale.Table(vs, samples, "minimal"))
	fmt.Fprintf(w, "\nBackend calls of the scan: %v (minimum: one ListAssets per region = %d).\n", calls, len(p.Regions))
	if serr != nil {
		fmt.Fprintf(w, "System calls: not measured (%v).\n\n", serr)
	} else {
		fmt.Fprintf(w, "System calls of one `kiln assets --all` (strace -f -c, the most frequent): %s, for %d records "+
			"(one open and one read per record is the floor).\n\n", scale.TopCounts(sys, 8), total)
	}
	return nil
}

func benchAWS(ctx context.Context, o options, w io.Writer) error {
	p, err := o.NewProject("kiln-bench-inventory-aws-", "aws", 1)
	if err != nil {
		return err
	}
	defer p.Close()
	moto, err := scale.StartMoto(ctx)
	if err != nil {
		return err
	}
	defer moto.Close()
	start := time.Now()
	fmt.Fprintf(os.Stderr, "aws: seeding %d regions x %d images...\n", o.AWSRegions, o.awsImages)
	if _, err := scale.SeedMoto(ctx, moto.URL, p.Regions, o.awsImages, releaseSpec(time.Time{})); err != nil {
		return err
	}
	seeded := time.Since(start)
	images := o.AWSRegions * o.awsImages
	total := 2 * images // each image has one snapshot
	env, err := scale.AWSEnv(p.Dir, moto.Counter.URL)
	if err != nil {
		return err
	}
	args := []string{"assets", "--all", "-o", "json", "-c", p.Path}
	vs := o.KilnVariants(env, args, moto.Take, checkAssets(total))
	peer, err := scale.PeerVariant("aws-inventory", moto.Counter.URL, p.Regions, total, moto.Take)
	if err != nil {
		return err
	}
	vs = append(vs, peer)
	samples, err := scale.Interleave(ctx, o.Reps, vs, os.Stderr)
	if err != nil {
		return err
	}
	// The floor as moto pages GetResources: it caps a page at 100 tags by
	// default, so at 8 tags an image a page holds 12 images (on AWS, kiln
	// asks for 100 resources a page). Then DescribeImages and
	// DescribeSnapshots in batches of 200 ids and one DescribeKeyPairs per
	// region, and one STS call.
	const tagsPerImage = 8
	motoPages := pages(o.awsImages, 99/tagsPerImage)
	floor := 1 + o.AWSRegions*(motoPages+2*pages(o.awsImages, 200)+1)

	fmt.Fprintf(w, "### Inventory, aws backend through moto: %d regions x %d images (%d images + %d snapshots)\n\n", o.AWSRegions, o.awsImages, images, images)
	fmt.Fprintf(w, "Seeded in %s (one CreateImage per image, tagged at creation; moto makes one snapshot per image). "+
		"`kiln assets --all -o json` as a separate process through a counting proxy in front of moto, %d interleaved rounds; "+
		"the peer, `minimal`, makes only the calls such a scan needs (package scale, MinimalAWSInventory).\n\n", seeded.Round(time.Second), o.Reps)
	fmt.Fprint(w, scale.Table(vs, samples, "minimal"))
	fmt.Fprintf(w, "\nThe floor: 1 GetCallerIdentity + %d x (%d GetResources pages as moto cuts them, at most 100 tags a page, 12 images of 8 tags; "+
		"%d DescribeImages + %d DescribeSnapshots in batches of 200 ids; 1 DescribeKeyPairs) = %d calls. "+
		"On AWS the same scan needs %d GetResources pages per region (100 resources a page).\n\n",
		o.AWSRegions, motoPages, pages(o.awsImages, 200), pages(o.awsImages, 200), floor, pages(o.awsImages, 100))
	scale.LastCalls(w, vs, samples)
	return nil
}

func pages(n, size int) int { return int(math.Ceil(float64(n) / float64(size))) }
