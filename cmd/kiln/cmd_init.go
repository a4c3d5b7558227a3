package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/config"
)

func newInitCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a small working example project for the local backend",
		Long: `init writes kiln.yaml, a provisioning script, a boot test and a .gitignore for
kiln's local state into DIR (default: the current directory). It refuses to
overwrite existing files and then writes nothing.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runInit(g, dir)
		},
	}
}

func runInit(g *globalOptions, dir string) error {
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
		fmt.Fprintf(g.streams.out, "wrote %s\n", dst)
	}
	fmt.Fprintf(g.streams.out, "\nNext: kiln validate -c %s\n      kiln release -c %s debian-sandbox\n",
		filepath.Join(dir, "kiln.yaml"), filepath.Join(dir, "kiln.yaml"))
	return nil
}
