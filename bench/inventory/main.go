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
	"os/signal"
	"strings"
	"time"

	"github.com/kiln-images/kiln/bench/inventory/scale"
	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
)

type options struct {
	kiln, baseline, baselineName string
	backends                     string
	regions, localImages         int
	awsRegions, awsImages        int
	reps                         int
	out                          string
	keep                         bool
}

func main() {
	scale.MaybePeer()
	var o options
	flag.StringVar(&o.kiln, "kiln", "", "the kiln binary to measure (required)")
	flag.StringVar(&o.baseline, "baseline", "", "another kiln binary to measure side by side, e.g. an earlier commit")
	flag.StringVar(&o.baselineName, "baseline-name", "baseline", "what to call the baseline in the report")
	flag.StringVar(&o.backends, "backends", "local,aws", "backends to measure")
	flag.IntVar(&o.regions, "regions", 16, "local regions")
	flag.IntVar(&o.localImages, "local-images", 2000, "kiln-managed images per local region")
	flag.IntVar(&o.awsRegions, "aws-regions", 16, "aws regions")
	flag.IntVar(&o.awsImages, "aws-images", 250, "kiln-managed images per aws region (moto is slow beyond a few hundred)")
	flag.IntVar(&o.reps, "reps", 5, "rounds; each runs every variant once")
	flag.StringVar(&o.out, "out", "", "write the markdown report here (default: stdout)")
	flag.BoolVar(&o.keep, "keep", false, "leave the projects (and local stores) in place for inspection")
	flag.Parse()
	if o.kiln == "" {
		fmt.Fprintln(os.Stderr, "inventory: -kiln is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var report strings.Builder
	for _, b := range strings.Split(o.backends, ",") {
		var err error
		switch b {
		case "local":
			err = benchLocal(ctx, o, &report)
		case "aws":
			err = benchAWS(ctx, o, &report)
		default:
			err = fmt.Errorf("unknown backend %q", b)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "inventory:", err)
			os.Exit(1)
		}
	}
	if o.out == "" {
		fmt.Print(report.String())
		return
	}
	if err := os.WriteFile(o.out, []byte(report.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "inventory:", err)
		os.Exit(1)
	}
}

// runID names the run of the i-th release: each release has one copy per
// region, all with the same asset id.
func runID(i int) string { return fmt.Sprintf("kiln-20260101T000000Z-%06x", i) }

func releaseSpec(created time.Time) func(region string, i int) scale.ImageSpec {
	return func(region string, i int) scale.ImageSpec {
		return scale.ImageSpec{
			Name: fmt.Sprintf("uc-01-x86_64-%d", i),
			Tags: map[string]string{
				cloud.TagManaged: "true", cloud.TagAssetID: runID(i), cloud.TagUseCase: "uc-01", cloud.TagArch: "x86_64",
				cloud.TagVersion: fmt.Sprint(i), cloud.TagPhase: cloud.PhaseReplicate, cloud.TagTest: cloud.TestPassed,
				"deployment_name": "scale",
			},
			Created: created,
		}
	}
}

// kilnVariants are the kiln binaries to measure, each running args and
// checking its answer with check.
func kilnVariants(o options, env func() []string, args []string, counts func() (int, string), check func(scale.Result) error) []scale.Variant {
	var vs []scale.Variant
	add := func(name, bin string) {
		vs = append(vs, scale.Variant{Name: name, Run: func(ctx context.Context) (scale.Sample, error) {
			counts() // drop what came before
			res, err := scale.Kiln(ctx, bin, env(), args...)
			if err != nil {
				return scale.Sample{}, err
			}
			if err := check(res); err != nil {
				return scale.Sample{}, fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, res.Stderr)
			}
			n, note := counts()
			return scale.Sample{Wall: res.Wall, CPU: res.CPU, Calls: n, Note: note}, nil
		}})
	}
	add("kiln", o.kiln)
	if o.baseline != "" {
		add(o.baselineName, o.baseline)
	}
	return vs
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
	dir, err := os.MkdirTemp("", "kiln-bench-inventory-")
	if err != nil {
		return err
	}
	defer cleanup(o, dir)
	regions, _ := scale.Regions("local", o.regions)
	path, err := scale.WriteProject(dir, "local", regions, scale.UseCases(1))
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "local: seeding %d regions x %d images...\n", o.regions, o.localImages)
	if _, err := scale.SeedLocal(ctx, cfg, o.localImages, releaseSpec(time.Now().Add(-48*time.Hour))); err != nil {
		return err
	}
	seeded := time.Since(start)
	total := o.regions * o.localImages
	env := func() []string { return scale.Env() }
	args := []string{"assets", "--all", "-o", "json", "-c", path}

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

	vs := kilnVariants(o, env, args, noCount, checkAssets(total))
	peer, err := scale.PeerVariant("local", cfg.Backend.Local.Root, regions, total, func() (int, string) { return len(regions), "" })
	if err != nil {
		return err
	}
	vs = append(vs, peer)
	// One untimed run of each first: the page cache holds the records.
	for _, v := range vs {
		if _, err := v.Run(ctx); err != nil {
			return err
		}
	}
	samples, err := scale.Interleave(ctx, o.reps, vs, os.Stderr)
	if err != nil {
		return err
	}
	sys, serr := scale.Syscalls(ctx, o.kiln, env(), args...)

	fmt.Fprintf(w, "### Inventory, local backend: %d regions x %d images (%d records)\n\n", o.regions, o.localImages, total)
	fmt.Fprintf(w, "Seeded in %s through the store's API (one import per region, then copies within the region). "+
		"`kiln assets --all -o json` as a separate process, %d interleaved rounds after one warm-up run each (page cache warm); "+
		"the peer, `minimal`, a process that reads and decodes every image record, regions in parallel, and prints only their number.\n\n", seeded.Round(time.Second), o.reps)
	fmt.Fprint(w, scale.Table(vs, samples, "minimal"))
	fmt.Fprintf(w, "\nBackend calls of the scan: %v (minimum: one ListAssets per region = %d).\n", calls, len(regions))
	if serr != nil {
		fmt.Fprintf(w, "System calls: not measured (%v).\n\n", serr)
	} else {
		fmt.Fprintf(w, "System calls of one `kiln assets --all` (strace -f -c, the most frequent): %s, for %d records "+
			"(one open and one read per record is the floor).\n\n", scale.TopCounts(sys, 8), total)
	}
	return nil
}

func benchAWS(ctx context.Context, o options, w io.Writer) error {
	dir, err := os.MkdirTemp("", "kiln-bench-inventory-aws-")
	if err != nil {
		return err
	}
	defer cleanup(o, dir)
	fmt.Fprintln(os.Stderr, "aws: starting moto...")
	moto, err := awstest.Launch(ctx)
	if err != nil {
		return err
	}
	defer moto.Close()
	if err := moto.Warm(ctx); err != nil {
		return err
	}
	counter, err := scale.StartCounter(moto.URL)
	if err != nil {
		return err
	}
	defer counter.Close()
	regions, err := scale.Regions("aws", o.awsRegions)
	if err != nil {
		return err
	}
	path, err := scale.WriteProject(dir, "aws", regions, scale.UseCases(1))
	if err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "aws: seeding %d regions x %d images...\n", o.awsRegions, o.awsImages)
	if _, err := scale.SeedMoto(ctx, moto.URL, regions, o.awsImages, releaseSpec(time.Time{})); err != nil {
		return err
	}
	seeded := time.Since(start)
	images := o.awsRegions * o.awsImages
	total := 2 * images // each image has one snapshot
	env, err := scale.AWSEnv(dir, counter.URL)
	if err != nil {
		return err
	}
	args := []string{"assets", "--all", "-o", "json", "-c", path}
	take := func() (int, string) {
		cs := counter.Take()
		return cs.Total(), cs.String()
	}
	vs := kilnVariants(o, func() []string { return env }, args, take, checkAssets(total))
	peer, err := scale.PeerVariant("aws-inventory", counter.URL, regions, total, take)
	if err != nil {
		return err
	}
	vs = append(vs, peer)
	samples, err := scale.Interleave(ctx, o.reps, vs, os.Stderr)
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
	floor := 1 + o.awsRegions*(motoPages+2*pages(o.awsImages, 200)+1)

	fmt.Fprintf(w, "### Inventory, aws backend through moto: %d regions x %d images (%d images + %d snapshots)\n\n", o.awsRegions, o.awsImages, images, images)
	fmt.Fprintf(w, "Seeded in %s (one CreateImage per image, tagged at creation; moto makes one snapshot per image). "+
		"`kiln assets --all -o json` as a separate process through a counting proxy in front of moto, %d interleaved rounds; "+
		"the peer, `minimal`, makes only the calls such a scan needs (package scale, MinimalAWSInventory).\n\n", seeded.Round(time.Second), o.reps)
	fmt.Fprint(w, scale.Table(vs, samples, "minimal"))
	fmt.Fprintf(w, "\nThe floor: 1 GetCallerIdentity + %d x (%d GetResources pages as moto cuts them, at most 100 tags a page, 12 images of 8 tags; "+
		"%d DescribeImages + %d DescribeSnapshots in batches of 200 ids; 1 DescribeKeyPairs) = %d calls. "+
		"On AWS the same scan needs %d GetResources pages per region (100 resources a page).\n\n",
		o.awsRegions, motoPages, pages(o.awsImages, 200), pages(o.awsImages, 200), floor, pages(o.awsImages, 100))
	for _, v := range vs {
		fmt.Fprintf(w, "- %s, calls of the last round: %s\n", v.Name, samples[v.Name][len(samples[v.Name])-1].Note)
	}
	fmt.Fprintln(w)
	return nil
}

func pages(n, size int) int { return int(math.Ceil(float64(n) / float64(size))) }

// cleanup removes a project directory unless -keep was given.
func cleanup(o options, dir string) {
	if o.keep {
		fmt.Fprintln(os.Stderr, "kept", dir)
		return
	}
	os.RemoveAll(dir)
}
