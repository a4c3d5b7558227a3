package awsrelease

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
)

var (
	flagRounds      = flag.Int("rounds", 5, "rounds; each runs every variant once, in rotating order")
	flagLatency     = flag.Duration("latency", 150*time.Millisecond, "latency the proxy adds to every request")
	flagPoll        = flag.Duration("poll", time.Second, "kiln's poll_interval and Packer's aws_polling delay (whole seconds)")
	flagConcurrency = flag.Int("concurrency", 20, "kiln's copy_concurrency for the main kiln variants (kiln's default is 20)")
	flagKiln        = flag.String("kiln", "", "kiln binary (default: go build ./cmd/kiln into a temporary directory)")
	flagBaseline    = flag.String("kiln-baseline", "", "a second kiln binary to measure `kiln release` with, e.g. built from an older commit")
	flagBaselineRef = flag.String("kiln-baseline-name", "baseline", "what to call -kiln-baseline in the report")
	flagBaselineCC  = flag.Int("kiln-baseline-concurrency", 8, "copy_concurrency for -kiln-baseline (8: kiln's default before it became 20)")
	flagPacker      = flag.String("packer", "packer", "packer binary")
	flagOut         = flag.String("out", "", "write the report's generated section into this markdown file")
	flagLogs        = flag.String("logs", "", "keep each run's request log as CSV in this directory")
	flagCommand     = flag.String("command", "", "the command line to print in the report (the script passes its own)")
)

// BenchmarkRelease measures build + copy to 15 regions + make public, kiln
// against Packer, in one process against one moto, interleaved round by
// round. It does the whole measurement once whatever b.N is (run it with
// -benchtime 1x) and reports medians as custom metrics.
func BenchmarkRelease(b *testing.B) {
	if *flagPoll%time.Second != 0 || *flagPoll <= 0 {
		b.Fatalf("-poll %s: Packer's aws_polling delay is whole seconds", *flagPoll)
	}
	if *flagOut != "" {
		// go test runs in the package directory: a relative path would
		// land there, found missing only after the whole measurement.
		if !filepath.IsAbs(*flagOut) {
			b.Fatalf("-out %s: give an absolute path", *flagOut)
		}
		if _, err := os.Stat(filepath.Dir(*flagOut)); err != nil {
			b.Fatalf("-out: %v", err)
		}
	}
	packer, err := exec.LookPath(*flagPacker)
	if err != nil {
		b.Fatalf("packer is needed as the peer (Debian package packer): %v", err)
	}
	work := b.TempDir()
	kiln := *flagKiln
	if kiln == "" {
		kiln = filepath.Join(work, "kiln")
		build := exec.Command("go", "build", "-o", kiln, "./cmd/kiln")
		build.Dir = moduleRoot(b)
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("go build ./cmd/kiln: %v\n%s", err, out)
		}
	}

	amis := filepath.Join(work, "amis.json")
	if err := WriteSourceImages(amis); err != nil {
		b.Fatal(err)
	}
	b.Setenv("MOTO_AMIS_PATH", amis)
	moto, err := awstest.Launch(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer moto.Close()
	if err := moto.Warm(b.Context()); err != nil {
		b.Fatal(err)
	}
	// Plays the guest of kiln's build instance (shuts it down when
	// "provisioning" is done), talking to moto directly. It runs for both
	// tools so that both see the same background load on moto.
	awstest.SimulateGuests(b, moto.URL, BuildRegion)

	poll := *flagPoll
	plain := Project{Poll: poll, Concurrency: *flagConcurrency}
	staged, upload := plain, plain
	staged.Bucket = "kiln-bench"
	upload.UploadDisk = filepath.Join(work, "sample-disk.raw")
	if err := WriteSampleDisk(upload.UploadDisk); err != nil {
		b.Fatal(err)
	}
	variants := []Variant{
		PackerVariant(packer, int(poll/time.Second)),
		KilnReleaseVariant("kiln release", kiln, plain),
		KilnReleaseVariant("kiln release, staged", kiln, staged),
		KilnReleaseVariant("kiln release, upload", kiln, upload),
		KilnPhasesVariant("kiln phases", kiln, plain),
	}
	if *flagBaseline != "" {
		variants = append(variants, KilnReleaseVariant(fmt.Sprintf("kiln release (%s, copy_concurrency %d)", *flagBaselineRef, *flagBaselineCC), *flagBaseline,
			Project{Poll: poll, Concurrency: *flagBaselineCC}))
	}

	rep := Report{
		Command:   *flagCommand,
		Latency:   *flagLatency,
		Reference: "packer",
		Machine:   Machine(),
		Versions:  versions(b, kiln, packer),
		Settings: []string{
			fmt.Sprintf("proxy latency %s on every request, both tools; moto reset before every run", *flagLatency),
			fmt.Sprintf("build region %s, %d destination regions: %s", BuildRegion, len(Destinations), strings.Join(Destinations, ", ")),
			fmt.Sprintf("kiln: poll_interval %s (first pause of every wait; grows by half up to 6×; the reads confirming an available image are a fifth of it apart), copy_concurrency %d unless the variant says otherwise, publish {public: true}, one shell provisioning step, one test", poll, *flagConcurrency),
			"kiln release: bundles inline in the user data (no bucket); staged: in a bucket (PutObject and DeleteObject for build and test, the guest fetches them through presigned URLs); upload: build: {method: upload} from a 64 MiB sample disk with 8 MiB of data (the API orchestration of the method; the bytes of a real disk are measured in aws-upload.md)",
			fmt.Sprintf("Packer: amazon-ebs, communicator none, ami_regions (15), ami_groups [all], aws_polling delay_seconds %d (a fixed pause between waiter attempts)", int(poll/time.Second)),
			fmt.Sprintf("%d rounds, variants in rotating order", *flagRounds),
		},
	}
	if rep.Command == "" {
		rep.Command = "go test ./bench/awsrelease -run '^$' -bench Release -benchtime 1x -timeout 2h " + strings.Join(os.Args[1:], " ")
	}
	for round := range *flagRounds {
		for _, v := range Interleave(variants, round) {
			w, err := NewWorld(b, moto, *flagLatency)
			if err != nil {
				b.Fatal(err)
			}
			dir, err := mkdir(work, round, strings.ReplaceAll(v.Name, " ", "_"))
			if err != nil {
				b.Fatal(err)
			}
			res, err := Measure(b.Context(), v, w, dir)
			w.Close()
			res.Round = round + 1
			if *flagLogs != "" {
				os.MkdirAll(*flagLogs, 0o755)
				name := fmt.Sprintf("round%d-%s.csv", round+1, strings.NewReplacer(" ", "_", ",", "", "(", "", ")", "").Replace(v.Name))
				if werr := WriteLog(filepath.Join(*flagLogs, name), res); werr != nil {
					b.Error(werr)
				}
			}
			if err != nil {
				b.Fatalf("round %d: %v", round+1, err)
			}
			b.Logf("round %d %-40s %6.2fs %4d requests", round+1, v.Name, res.Wall.Seconds(), len(res.Log))
			rep.Results = append(rep.Results, res)
		}
	}
	rep.Machine = append(rep.Machine, "load average at the end: "+LoadAvg())

	for _, r := range rep.rows() {
		w, q := Summarize(r.walls), Summarize(r.reqs)
		unit := strings.NewReplacer(" ", "-", ",", "", ":", "", "+", "", "(", "", ")", "").Replace(r.name)
		b.ReportMetric(w.Median, unit+"-s")
		b.ReportMetric(q.Median, unit+"-requests")
	}
	md := rep.Markdown()
	if *flagOut != "" {
		if err := WriteReport(*flagOut, md); err != nil {
			b.Fatal(err)
		}
	}
	b.Log("\n" + md)
}

// moduleRoot is the directory of go.mod, two levels up from this package.
func moduleRoot(tb testing.TB) string {
	dir, err := filepath.Abs("../..")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		tb.Fatalf("module root: %v", err)
	}
	return dir
}

func versions(tb testing.TB, kiln, packer string) []string {
	v, err := Versions(kiln, packer)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
