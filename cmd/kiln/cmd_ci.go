package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/gitlabci"
	"github.com/kiln-images/kiln/internal/gitrepo"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

func newCICommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ci",
		Short: "Write the CI pipeline that releases the project on your CI system's runners",
		Example: `  kiln ci gitlab           # write .gitlab-ci.yml from kiln.yaml
  kiln ci gitlab --check   # in CI: exit 1 when the committed pipeline is stale`,
		Args: noArgs,
	}
	cmd.AddCommand(newCIGitLabCommand(g))
	return cmd
}

type ciGitLabOptions struct {
	check bool
}

func newCIGitLabCommand(g *globalOptions) *cobra.Command {
	var o ciGitLabOptions
	cmd := &cobra.Command{
		Use:   "gitlab [--check]",
		Short: "Write the project's GitLab CI pipeline (ci.file, default .gitlab-ci.yml)",
		Long: `gitlab writes a GitLab CI pipeline for the project from kiln.yaml: for every
use case and architecture a chain of jobs build -> test -> replicate ->
publish that passes the run's asset id on as a dotenv artifact; a job per
further channel that promotes into it; and in scheduled pipelines the drift
check and the cleanup of orphans. Jobs that write a channel's manifest share
the channel's resource_group, so two pipelines never write one manifest at
once, and record the change as ci.document says (push, merge-request, none).
Whether each channel's job runs on its own or waits for a person is
ci.channels.

The file is ci.file (default .gitlab-ci.yml, next to kiln.yaml); kiln
overwrites only a file it wrote. The output depends on kiln.yaml alone, so
--check can fail a pipeline whose committed file is stale.
Exit 0 written or up to date, 1 stale (with --check), 2 error.`,
		Example: `  kiln ci gitlab
  kiln ci gitlab --check -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runCIGitLab(g, cmd, o) },
	}
	cmd.Flags().BoolVar(&o.check, "check", false, "write nothing; exit 1 when the file is missing or not what kiln.yaml makes")
	return cmd
}

func runCIGitLab(g *globalOptions, cmd *cobra.Command, o ciGitLabOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	file := cfg.Resolve(cfg.CI.File)
	opts, err := ciPaths(cmd, cfg, file)
	if err != nil {
		return err
	}
	p, err := gitlabci.Generate(cfg, opts)
	if err != nil {
		return err
	}
	rep := report.CI{Schema: report.SchemaCI, File: file, Jobs: p.Jobs}
	old, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rep.Stale = true
	case err != nil:
		return fmt.Errorf("read %s: %w", file, err)
	default:
		rep.Stale = !bytes.Equal(old, p.YAML)
		if rep.Stale && !o.check && !bytes.HasPrefix(old, []byte(gitlabci.Header)) {
			return usageError(fmt.Errorf("refusing to overwrite %s: kiln did not write it; move it away, or set ci.file (e.g. .gitlab/kiln.yml) and include that file from it", file))
		}
	}
	if rep.Stale && !o.check {
		if err := writeFileAtomic(file, p.YAML); err != nil {
			return err
		}
		rep.Written = true
	}
	if g.json() {
		if err := g.write(rep); err != nil {
			return err
		}
	} else {
		t := output.NewTable(g.streams.out, "JOB", "STAGE", "RUNS", "RESOURCE GROUP")
		for _, j := range rep.Jobs {
			t.Row(j.Name, j.Stage, j.When, j.ResourceGroup)
		}
		t.Flush()
	}
	switch {
	case o.check && rep.Stale && old == nil:
		return findings("%s does not exist; run kiln ci gitlab to write it", file)
	case o.check && rep.Stale:
		return findings("%s is stale (%s); run kiln ci gitlab and commit it", file, firstDifference(old, p.YAML))
	case rep.Written:
		fmt.Fprintf(g.streams.err, "wrote %s (%d jobs)\n", file, len(rep.Jobs))
	default:
		fmt.Fprintf(g.streams.err, "%s is up to date\n", file)
	}
	return nil
}

// ciPaths places kiln.yaml and the manifests relative to where jobs run:
// the top of the git repository, or without one the directory of the
// pipeline file.
func ciPaths(cmd *cobra.Command, cfg *config.Config, file string) (gitlabci.Options, error) {
	root := filepath.Dir(file)
	if repo, err := gitrepo.Open(cmd.Context(), cfg.Dir); err == nil {
		root = repo.Top()
	}
	rel := func(p string) (string, error) {
		r, err := filepath.Rel(root, p)
		if err != nil || !filepath.IsLocal(r) {
			return "", usageError(fmt.Errorf("%s is outside %s, where the pipeline's jobs run", p, root))
		}
		return filepath.ToSlash(r), nil
	}
	o := gitlabci.Options{ManifestPaths: map[string]string{}}
	var err error
	if o.ConfigPath, err = rel(cfg.Path); err != nil {
		return o, err
	}
	for _, ch := range cfg.ChannelNames() {
		mp, _ := cfg.ManifestPath(ch)
		if o.ManifestPaths[ch], err = rel(mp); err != nil {
			return o, err
		}
	}
	return o, nil
}

// firstDifference says where two versions of a file first differ.
func firstDifference(old, new []byte) string {
	a, b := strings.Split(string(old), "\n"), strings.Split(string(new), "\n")
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("line %d is %q, kiln.yaml makes %q", i+1, a[i], b[i])
		}
	}
	return fmt.Sprintf("it has %d lines, kiln.yaml makes %d", len(a), len(b))
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory. A symlink is refused: kiln writes its own files only.
func writeFileAtomic(path string, data []byte) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return usageError(fmt.Errorf("refusing to write %s: it is a symbolic link", path))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
