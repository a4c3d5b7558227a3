package awsrelease

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Result is one measured run of one variant.
type Result struct {
	Variant string
	Round   int
	Wall    time.Duration // from process start to exit, summed over processes
	Span    time.Duration // first request to last answer, on the recorder's clock
	Log     []Request     // every request of the run
	Phases  []Phase       // per process, for variants that run several
}

// Phase is one process of a multi-process variant.
type Phase struct {
	Name string
	Wall time.Duration
	Log  []Request
}

// Variant is one way of releasing the image, measured as a whole.
type Variant struct {
	Name string
	// Run releases SourceAMI to BuildRegion and Destinations in w, using dir
	// for its files, and returns its timings (Log and Span are filled in
	// by Measure).
	Run func(ctx context.Context, w *World, dir string) (Result, error)
}

// Measure runs v in w and checks the outcome in moto.
func Measure(ctx context.Context, v Variant, w *World, dir string) (Result, error) {
	from := w.Recorder.Len()
	res, err := v.Run(ctx, w, dir)
	res.Variant = v.Name
	res.SetLog(w.Recorder.Since(from))
	if err != nil {
		return res, fmt.Errorf("%s: %w", v.Name, err)
	}
	if _, err := Verify(ctx, w.Moto.URL, append([]string{BuildRegion}, Destinations...)); err != nil {
		return res, fmt.Errorf("%s: %w", v.Name, err)
	}
	return res, nil
}

// SetLog sets the run's request log, and its Span from it.
func (res *Result) SetLog(log []Request) {
	res.Log = log
	if len(log) == 0 {
		return
	}
	first, last := log[0].Start, log[0].End
	for _, r := range log {
		first, last = min(first, r.Start), max(last, r.End)
	}
	res.Span = last - first
}

// PackerVariant runs `packer build` with the generated template.
func PackerVariant(bin string, pollSeconds int) Variant {
	return Variant{Name: "packer", Run: func(ctx context.Context, w *World, dir string) (Result, error) {
		tmpl, err := PackerTemplate(w.URL, SourceAMI, Destinations, pollSeconds)
		if err != nil {
			return Result{}, err
		}
		res, err := RunPacker(ctx, bin, dir, tmpl)
		if err != nil {
			return Result{Wall: res.Wall}, err
		}
		if len(res.Images) != 1+len(Destinations) {
			return Result{Wall: res.Wall}, fmt.Errorf("packer reported %d images, want %d: %v", len(res.Images), 1+len(Destinations), res.Images)
		}
		return Result{Wall: res.Wall}, nil
	}}
}

// KilnReleaseVariant runs `kiln release` on a new project.
func KilnReleaseVariant(name, bin string, p Project) Variant {
	return Variant{Name: name, Run: func(ctx context.Context, w *World, dir string) (Result, error) {
		if p.Bucket != "" {
			if err := w.MakeBucket(ctx, p.Bucket); err != nil {
				return Result{}, err
			}
		}
		cfg, err := KilnProject(filepath.Join(dir, "project"), p)
		if err != nil {
			return Result{}, err
		}
		k := Kiln{Bin: bin, Config: cfg, Endpoint: w.URL}
		_, wall, err := k.Release(ctx, "bench")
		return Result{Wall: wall}, err
	}}
}

// KilnPhasesVariant runs the phases as separate commands, as a CI pipeline
// with one job per phase would: build, test, replicate, publish.
func KilnPhasesVariant(name, bin string, p Project) Variant {
	return Variant{Name: name, Run: func(ctx context.Context, w *World, dir string) (Result, error) {
		cfg, err := KilnProject(filepath.Join(dir, "project"), p)
		if err != nil {
			return Result{}, err
		}
		k := Kiln{Bin: bin, Config: cfg, Endpoint: w.URL}
		var res Result
		phase := func(name string, fn func() (time.Duration, error)) error {
			from := w.Recorder.Len()
			wall, err := fn()
			res.Wall += wall
			res.Phases = append(res.Phases, Phase{Name: name, Wall: wall, Log: w.Recorder.Since(from)})
			return err
		}
		var id string
		if err := phase("build", func() (time.Duration, error) {
			var wall time.Duration
			id, wall, err = k.Build(ctx, "bench")
			return wall, err
		}); err != nil {
			return res, err
		}
		for _, p := range []string{"test", "replicate", "publish"} {
			if err := phase(p, func() (time.Duration, error) {
				_, wall, err := k.Run(ctx, p, "--run", id)
				return wall, err
			}); err != nil {
				return res, err
			}
		}
		return res, nil
	}}
}

// Interleave returns the order of the variants in round r: rotated by one
// each round, so that none always runs first (on a cold cache) or right
// after the same neighbour.
func Interleave(vs []Variant, r int) []Variant {
	out := make([]Variant, 0, len(vs))
	for i := range vs {
		out = append(out, vs[(i+r)%len(vs)])
	}
	return out
}

// mkdir makes a fresh directory for one run.
func mkdir(root string, round int, variant string) (string, error) {
	dir := filepath.Join(root, fmt.Sprintf("round%d-%s", round, variant))
	return dir, os.MkdirAll(dir, 0o755)
}
