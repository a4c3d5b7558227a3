package awsdestroy

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/bench/awsrelease"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/teardown/teardowntest"
)

var (
	flagRounds      = flag.Int("rounds", 3, "rounds; each runs both variants once, in rotating order")
	flagLatency     = flag.Duration("latency", 150*time.Millisecond, "latency the proxy adds to every request")
	flagPoll        = flag.Duration("poll", time.Second, "kiln's poll_interval and the minimal sequence's pause between stack reads")
	flagConcurrency = flag.Int("concurrency", 10, "how many deletes the minimal sequence has in flight at once")
	flagKiln        = flag.String("kiln", "", "kiln binary (default: go build ./cmd/kiln into a temporary directory)")
	flagOut         = flag.String("out", "", "write the report's generated section into this markdown file (absolute path)")
	flagLogs        = flag.String("logs", "", "keep each run's request log as CSV in this directory")
	flagCommand     = flag.String("command", "", "the command line to print in the report (the script passes its own)")
)

const minimalName = "minimal sequence (ids known, no listing, no check)"

// BenchmarkDestroy measures `kiln destroy hub --apply` of Scenario against
// Minimal, each on a freshly seeded moto behind the recorder, interleaved
// round by round; after every run the account is read back directly. It
// does the whole measurement once whatever b.N is (-benchtime 1x).
func BenchmarkDestroy(b *testing.B) {
	if *flagOut != "" && !filepath.IsAbs(*flagOut) {
		b.Fatalf("-out %s: give an absolute path", *flagOut)
	}
	work := b.TempDir()
	kiln := *flagKiln
	if kiln == "" {
		kiln = filepath.Join(work, "kiln")
		build := exec.Command("go", "build", "-o", kiln, "./cmd/kiln")
		build.Dir = "../.."
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("go build ./cmd/kiln: %v\n%s", err, out)
		}
	}
	moto, err := awstest.Launch(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer moto.Close()
	if err := moto.Warm(b.Context()); err != nil {
		b.Fatal(err)
	}
	versions, err := awsrelease.Versions(kiln, "")
	if err != nil {
		b.Fatal(err)
	}
	s := Scenario()
	rep := awsrelease.Report{
		Command: *flagCommand, Latency: *flagLatency, Reference: minimalName,
		Machine: awsrelease.Machine(), Versions: versions,
		Settings: []string{
			fmt.Sprintf("proxy latency %s on every request, both variants; moto reset and the scenario seeded (straight into moto, not measured) before every run", *flagLatency),
			fmt.Sprintf("deployment %s: %d stacks (%s, each after the one before), %d buckets and %d repositories besides the stacks', %d volumes, %d snapshots, a role, a log group and a user pool (destroy.retain), %d versions and %d delete markers in the first stack's bucket and a tenth of each in every other; stacks with termination protection; a neighbour deployment",
				s.Deployment, len(s.Units), strings.Join(s.Units, ", "), s.Buckets, s.Repositories, s.Volumes, s.Snapshots, s.Versions, s.Markers),
			fmt.Sprintf("kiln destroy %s --apply --yes --force-protected: poll_interval %s; the plan, hooks, emptying, stacks, leftovers by tag, verification by tag and per-service listers with describes", s.Deployment, *flagPoll),
			fmt.Sprintf("minimal sequence: every id given; %d deletes in flight; stacks in reverse order, read every %s until gone (bench/awsdestroy/minimal.go)", *flagConcurrency, *flagPoll),
			fmt.Sprintf("%d rounds, variants in rotating order", *flagRounds),
		},
	}
	if rep.Command == "" {
		rep.Command = "go test ./bench/awsdestroy -run '^$' -bench Destroy -benchtime 1x " + strings.Join(os.Args[1:], " ")
	}
	variants := []string{"kiln destroy", minimalName}
	for round := range *flagRounds {
		for i := range variants {
			v := variants[(i+round)%len(variants)]
			res, err := measure(b, moto, kiln, v, filepath.Join(work, fmt.Sprintf("round%d-%d", round+1, i)))
			res.Round = round + 1
			if *flagLogs != "" {
				os.MkdirAll(*flagLogs, 0o755)
				name := fmt.Sprintf("destroy-round%d-%s.csv", round+1, strings.Fields(v)[0])
				if werr := awsrelease.WriteLog(filepath.Join(*flagLogs, name), res); werr != nil {
					b.Error(werr)
				}
			}
			if err != nil {
				b.Fatalf("round %d, %s: %v", round+1, v, err)
			}
			b.Logf("round %d %-50s %6.2fs %4d requests", round+1, v, res.Wall.Seconds(), len(res.Log))
			rep.Results = append(rep.Results, res)
		}
	}
	rep.Machine = append(rep.Machine, "load average at the end: "+awsrelease.LoadAvg())
	md := rep.Markdown()
	if *flagOut != "" {
		if err := awsrelease.WriteReport(*flagOut, md); err != nil {
			b.Fatal(err)
		}
	}
	b.Log("\n" + md)
}

// measure seeds a fresh account, runs variant v against it through a new
// recorder and checks the account afterwards.
func measure(b *testing.B, moto *awstest.Moto, kiln, v, dir string) (awsrelease.Result, error) {
	ctx := b.Context()
	res := awsrelease.Result{Variant: v}
	w, err := awsrelease.NewWorld(b, moto, *flagLatency)
	if err != nil {
		return res, err
	}
	defer w.Close()
	w.Stub.EmulateStackFailures()
	seeded, err := teardowntest.NewAWS(moto.URL, Region).Seed(ctx, Scenario())
	if err != nil {
		return res, fmt.Errorf("seed: %w", err)
	}
	from := w.Recorder.Len()
	start := time.Now()
	switch v {
	case minimalName:
		err = Minimal(ctx, w.URL, Scenario(), seeded, *flagPoll, *flagConcurrency)
	default:
		err = kilnDestroy(ctx, kiln, dir, w.URL)
	}
	res.Wall = time.Since(start)
	res.SetLog(w.Recorder.Since(from))
	if err != nil {
		return res, err
	}
	return res, Check(ctx, moto.URL, seeded)
}

func kilnDestroy(ctx context.Context, bin, dir, endpoint string) error {
	cfg, err := KilnProject(dir, Scenario(), *flagPoll)
	if err != nil {
		return err
	}
	s := Scenario()
	_, _, err = awsrelease.Kiln{Bin: bin, Config: cfg, Endpoint: endpoint}.Run(ctx, "destroy", s.Deployment, "--apply", "--yes", "--force-protected")
	return err
}
