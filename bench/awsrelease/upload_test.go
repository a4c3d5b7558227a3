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
	flagDisk      = flag.String("disk", "", "BenchmarkUpload: the raw disk to upload (default: build the example recipe's 2 GiB disk with the local builder)")
	flagBandwidth = flag.Float64("bandwidth", 1e9, "BenchmarkUpload: the uplink the proxy models, bits per second, shared by all requests")
	flagUploadOut = flag.String("upload-out", "", "BenchmarkUpload: write the report's generated section into this markdown file")
)

// BenchmarkUpload measures one release to 16 regions two ways, side by
// side against one moto behind a proxy that adds latency and limits the
// client's uplink: an instance build then CopyImage to 15 regions, and
// build: {method: upload} of a disk the local builder made. It reports
// bytes sent, requests and wall time.
func BenchmarkUpload(b *testing.B) {
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
	disk := *flagDisk
	var diskNote string
	if disk == "" {
		start := time.Now()
		var err error
		if disk, err = BuildExampleDisk(b.Context(), filepath.Join(work, "disk")); err != nil {
			b.Fatal(err)
		}
		diskNote = fmt.Sprintf("built from the example recipe by the local builder in %s (not part of the timings)", time.Since(start).Round(time.Second))
	} else {
		diskNote = "given with -disk"
	}
	fi, err := os.Stat(disk)
	if err != nil {
		b.Fatal(err)
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
	awstest.SimulateGuests(b, moto.URL, BuildRegion)

	poll := *flagPoll
	copyProject := Project{Poll: poll, Concurrency: *flagConcurrency}
	uploadProject := copyProject
	uploadProject.UploadDisk = disk
	variants := []Variant{
		KilnReleaseVariant("instance build + CopyImage", kiln, copyProject),
		KilnReleaseVariant("upload", kiln, uploadProject),
	}
	rep := Report{
		Command:   *flagCommand,
		Latency:   *flagLatency,
		Reference: "instance build + CopyImage",
		Machine:   Machine(),
		Versions:  versions(b, kiln, ""),
		Settings: []string{
			fmt.Sprintf("proxy latency %s on every request; request bodies through one modelled uplink of %.0f Mbit/s shared by all requests; moto reset before every run", *flagLatency, *flagBandwidth/1e6),
			fmt.Sprintf("16 regions: %s and %s", BuildRegion, strings.Join(Destinations, ", ")),
			fmt.Sprintf("disk: %s, %d MiB, %s", filepath.Base(disk), fi.Size()>>20, diskNote),
			fmt.Sprintf("kiln: poll_interval %s, copy_concurrency %d, upload_concurrency 64 (the default), publish {public: true}, boot test included in both", poll, *flagConcurrency),
			"modelled, not measured: moto finishes every CopyImage at once and completes snapshots at once; the awstest stub answers PutSnapshotBlock (checking each block's SHA-256, keeping only digests)",
			fmt.Sprintf("%d rounds, variants in rotating order", *flagRounds),
		},
	}
	if rep.Command == "" {
		rep.Command = "go test ./bench/awsrelease -run '^$' -bench Upload -benchtime 1x " + strings.Join(os.Args[1:], " ")
	}
	for round := range *flagRounds {
		for _, v := range Interleave(variants, round) {
			w, err := NewWorld(b, moto, *flagLatency)
			if err != nil {
				b.Fatal(err)
			}
			w.Recorder.LimitBandwidth(*flagBandwidth / 8)
			dir, err := mkdir(work, round, strings.ReplaceAll(v.Name, " ", "_"))
			if err != nil {
				b.Fatal(err)
			}
			res, err := Measure(b.Context(), v, w, dir)
			w.Close()
			res.Round = round + 1
			if *flagLogs != "" {
				os.MkdirAll(*flagLogs, 0o755)
				name := fmt.Sprintf("upload-round%d-%s.csv", round+1, strings.NewReplacer(" ", "_", "+", "", ",", "").Replace(v.Name))
				if werr := WriteLog(filepath.Join(*flagLogs, name), res); werr != nil {
					b.Error(werr)
				}
			}
			if err != nil {
				b.Fatalf("round %d: %v", round+1, err)
			}
			b.Logf("round %d %-28s %7.2fs %5d requests %8.1f MiB sent", round+1, v.Name, res.Wall.Seconds(), len(res.Log), float64(sent(res.Log))/(1<<20))
			rep.Results = append(rep.Results, res)
		}
	}
	rep.Machine = append(rep.Machine, "load average at the end: "+LoadAvg())
	md := rep.UploadMarkdown()
	if *flagUploadOut != "" {
		if err := WriteReport(*flagUploadOut, md); err != nil {
			b.Fatal(err)
		}
	}
	b.Log("\n" + md)
}
