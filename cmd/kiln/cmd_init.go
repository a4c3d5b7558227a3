package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

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

	// Check everything first so that a conflict writes nothing.
	var exist []string
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			exist = append(exist, filepath.Join(dir, f))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(exist) > 0 {
		return usageError(fmt.Errorf("init %s: refusing to overwrite existing files: %s", dir, strings.Join(exist, ", ")))
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
	cfg := filepath.Join(dir, "kiln.yaml")
	fmt.Fprintf(g.streams.out, "\nNext: kiln validate -c %[1]s\n      kiln release -c %[1]s debian-sandbox\n"+
		"      kiln deploy -c %[1]s dev --apply\n      kiln promote -c %[1]s --from dev --to staging --apply\n", cfg)
	return nil
}
