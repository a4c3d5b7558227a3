package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/report"
)

type initOptions struct {
	git bool
}

func newInitCommand(g *globalOptions) *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a small working example project for the local backend",
		Long: `init writes kiln.yaml, a provisioning script, a boot test and a .gitignore for
kiln's local state into DIR (default: the current directory). It refuses to
overwrite existing files and then writes nothing.

kiln keeps the history of the channel manifests in git: --commit records each
release, rollback restores a manifest from a git ref, cleanup protects the
images of manifests at git tags, and promotion intervals are read from the
history. init says when DIR is not in a git repository; with --git it starts
one there (git init).`,
		Example: `  kiln init demo --git && cd demo && kiln release debian-sandbox
  kiln init -o json`,
		Args: maxArgs("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runInit(cmd.Context(), g, dir, o)
		},
	}
	cmd.Flags().BoolVar(&o.git, "git", false, "start a git repository in DIR when it is not in one")
	return cmd
}

func runInit(ctx context.Context, g *globalOptions, dir string, o initOptions) error {
	example, err := fs.Sub(config.Example, "example")
	if err != nil {
		return err
	}
	var files []string
	err = fs.WalkDir(example, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read example project: %w", err)
	}
	sort.Strings(files)

	// Check everything first so that a conflict writes nothing: the
	// files, and the directories on their way, which must be directories
	// (not files, nor links, dangling or not, that would lead elsewhere).
	var exist, blocked []string
	checked := map[string]bool{}
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			exist = append(exist, filepath.Join(dir, f))
		} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return err
		}
		for d := filepath.Dir(f); d != "." && !checked[d]; d = filepath.Dir(d) {
			checked[d] = true
			fi, err := os.Lstat(filepath.Join(dir, d))
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return err
			case !fi.IsDir():
				blocked = append(blocked, filepath.Join(dir, d))
			}
		}
	}
	if len(exist) > 0 {
		return usageError(fmt.Errorf("init %s: refusing to overwrite existing files: %s; nothing was written", dir, strings.Join(exist, ", ")))
	}
	if len(blocked) > 0 {
		sort.Strings(blocked)
		return usageError(fmt.Errorf("init %s: %s must be directories (they are files or symbolic links); nothing was written", dir, strings.Join(blocked, ", ")))
	}

	rep := report.Init{Schema: report.SchemaInit, Dir: dir}
	for _, f := range files {
		data, err := fs.ReadFile(example, f)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(f, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(dst, data, mode); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		rep.Files = append(rep.Files, dst)
		if !g.json() {
			fmt.Fprintf(g.streams.out, "wrote %s\n", dst)
		}
	}
	rep.Git = manifest.CheckWorkTree(ctx, dir) == nil
	if !rep.Git && o.git {
		if err := gitInit(ctx, dir); err != nil {
			return err
		}
		rep.Git = true
		if !g.json() {
			fmt.Fprintf(g.streams.out, "started a git repository in %s\n", dir)
		}
	}
	cd := ""
	if dir != "." {
		cd = "cd " + dir + " && "
	}
	rep.Next = []string{cd + "kiln validate", cd + "kiln release debian-sandbox"}
	if g.json() {
		return g.write(rep)
	}
	if !rep.Git {
		fmt.Fprintf(g.streams.out, `
%s is not in a git repository. kiln keeps the channel manifests' history in
git: --commit records each release, kiln rollback --ref restores a manifest,
cleanup protects the images of manifests at release tags, and promotion
intervals are read from it. Start one with: git init %s (or kiln init --git)
`, dir, dir)
	}
	fmt.Fprintf(g.streams.out, "\nNext: %s\n", strings.Join(rep.Next, "\n      "))
	return nil
}

// gitInit starts a git repository in dir.
func gitInit(ctx context.Context, dir string) error {
	out, err := exec.CommandContext(ctx, "git", "init", "--quiet", dir).CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("init --git: git is not installed; install it (e.g. apt-get install git) or run kiln init without --git")
	}
	if err != nil {
		return fmt.Errorf("init --git: git init %s failed: %s", dir, strings.TrimSpace(string(out)))
	}
	return nil
}
