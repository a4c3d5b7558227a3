package awsrelease

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kiln-images/kiln/internal/cloud/local/debimage"
	"github.com/kiln-images/kiln/internal/cloud/local/debimage/debimagetest"
	"github.com/kiln-images/kiln/internal/config"
)

// BuildExampleDisk builds the raw disk of `kiln init`'s example recipe with
// the local builder into dir (a 2 GiB disk, sparse) and returns its path.
// The base root filesystem comes from the cache the local tests share.
func BuildExampleDisk(ctx context.Context, dir string) (string, error) {
	sub, err := fs.Sub(config.Example, "example")
	if err != nil {
		return "", err
	}
	project := filepath.Join(dir, "project")
	if err := os.CopyFS(project, sub); err != nil {
		return "", err
	}
	cfg, err := config.Load(filepath.Join(project, "kiln.yaml"))
	if err != nil {
		return "", err
	}
	u, err := cfg.UseCase("debian-sandbox")
	if err != nil {
		return "", err
	}
	res, err := debimage.Build(ctx, debimage.Spec{
		Arch:     "x86_64",
		Suite:    u.Base.Suite,
		Packages: u.Base.Packages,
		Steps:    u.Provision,
		Dir:      project,
		DiskSize: u.DiskSize.Bytes(),
		WorkDir:  filepath.Join(dir, "work"),
		CacheDir: filepath.Join(debimagetest.CacheDir(), "rootfs"),
	})
	if err != nil {
		return "", fmt.Errorf("build the example disk: %w", err)
	}
	return res.Disk, nil
}

// sent is how many bytes the requests carried.
func sent(reqs []Request) int64 {
	var n int64
	for _, r := range reqs {
		n += r.Bytes
	}
	return n
}

// uploadSpan is from the first StartSnapshot to the last CompleteSnapshot
// answered, or 0.
func uploadSpan(reqs []Request) time.Duration {
	var first, last time.Duration
	seen := false
	for _, r := range reqs {
		switch r.Action {
		case "StartSnapshot":
			if !seen || r.Start < first {
				first = r.Start
			}
			seen = true
		case "CompleteSnapshot":
			last = max(last, r.End)
		}
	}
	if !seen || last < first {
		return 0
	}
	return last - first
}

// UploadMarkdown renders BenchmarkUpload's generated section.
func (rep Report) UploadMarkdown() string {
	var b bytes.Buffer
	type sample struct{ walls, reqs, mib, upload []float64 }
	by := map[string]*sample{}
	var order []string
	for _, res := range rep.Results {
		s, ok := by[res.Variant]
		if !ok {
			s = &sample{}
			by[res.Variant] = s
			order = append(order, res.Variant)
		}
		s.walls = append(s.walls, res.Wall.Seconds())
		s.reqs = append(s.reqs, float64(len(res.Log)))
		s.mib = append(s.mib, float64(sent(res.Log))/(1<<20))
		s.upload = append(s.upload, uploadSpan(res.Log).Seconds())
	}
	slices.SortStableFunc(order, func(a, b string) int {
		switch {
		case a == rep.Reference:
			return -1
		case b == rep.Reference:
			return 1
		}
		return 0
	})
	ref := Summarize(by[rep.Reference].walls)
	fmt.Fprintf(&b, "Command: `%s`\n\n", rep.Command)
	fmt.Fprintf(&b, "| variant | runs | wall median (s) | wall min–max (s) | requests median | sent median (MiB) | upload: first StartSnapshot to last CompleteSnapshot (s) | wall ratio to %s |\n", rep.Reference)
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range order {
		s := by[name]
		w, q, m, u := Summarize(s.walls), Summarize(s.reqs), Summarize(s.mib), Summarize(s.upload)
		ratio := "–"
		if name != rep.Reference && ref.Median > 0 {
			ratio = fmt.Sprintf("%.2f", w.Median/ref.Median)
		}
		up := "–"
		if u.Median > 0 {
			up = fmt.Sprintf("%.1f", u.Median)
		}
		fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f–%.2f | %.0f | %.1f | %s | %s |\n", name, w.N, w.Median, w.Min, w.Max, q.Median, m.Median, up, ratio)
	}
	b.WriteString("\n")
	rep.profiles(&b)
	b.WriteString("#### Machine\n\n")
	for _, l := range rep.Machine {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	b.WriteString("\n#### Versions\n\n")
	for _, l := range rep.Versions {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	b.WriteString("\n#### Settings\n\n")
	for _, l := range rep.Settings {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	return b.String()
}
