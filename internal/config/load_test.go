package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fileCases are whole-file problems: each gives exactly one error.
var fileCases = []errorCase{
	{"empty", "", []string{"kiln.yaml: file is empty; `kiln init` writes an example"}},
	{"whitespace", " \n\t\n", []string{"kiln.yaml: file is empty; `kiln init` writes an example"}},
	{"comments only", "# nothing yet\n", []string{"kiln.yaml: file has no settings; `kiln init` writes an example"}},
	{"empty document", "---\n# nothing yet\n", []string{"kiln.yaml: file has no settings; `kiln init` writes an example"}},
	{"invalid UTF-8", "project: demo\nregions: [r\xff]\n", []string{
		"kiln.yaml:2:12: invalid UTF-8 (byte 0xff); the file must be UTF-8 text"}},
	{"Latin-1", "project: d\xe9mo\n", []string{
		"kiln.yaml:1:11: invalid UTF-8 (byte 0xe9); the file must be UTF-8 text"}},
	{"UTF-16", "\xff\xfep\x00r\x00", []string{
		"kiln.yaml:1:1: invalid UTF-8 (byte 0xff); the file must be UTF-8 text"}},
	{"NUL byte", "project: dé\x00mo\n", []string{
		"kiln.yaml:1:12: control character U+0000 is not allowed in YAML"}},
	{"list document", "- a\n- b\n", []string{
		"kiln.yaml:1:1: the document is a list; expected a mapping of settings (project, regions, use_cases, ...)"}},
	{"scalar document", "hello\n", []string{
		`kiln.yaml:1:1: the document is "hello"; expected a mapping of settings (project, regions, use_cases, ...)`}},
	{"null document", "~\n", []string{
		"kiln.yaml:1:1: the document is nothing; expected a mapping of settings (project, regions, use_cases, ...)"}},
	{"two documents", localBase + "---\nproject: other\n", []string{
		"kiln.yaml:7:1: a second YAML document starts here; a config is one document"}},
	{"trailing document marker", localBase + "---\n", []string{
		"kiln.yaml:7:1: a second YAML document starts here; a config is one document"}},
	{"tab indentation", "project: demo\nregions:\n\t- r1\n", []string{
		"kiln.yaml:3: invalid YAML: found character that cannot start any token"}},
	{"unclosed quote", "project: demo\nregions: ['r1]\n", []string{
		"kiln.yaml:2: invalid YAML: found unexpected end of stream"}},
	{"bad nesting", "project: demo\nregions: [r1]\nuse_cases: x: y\n", []string{
		"kiln.yaml:3: invalid YAML: mapping values are not allowed in this context"}},
	{"unknown anchor", "project: *nope\n", []string{
		"kiln.yaml: invalid YAML: unknown anchor 'nope' referenced"}},
}

func TestFileProblems(t *testing.T) {
	dir := newProject(t)
	for _, tc := range fileCases {
		t.Run(tc.name, func(t *testing.T) {
			wantErrors(t, tc.doc, dir, tc.want)
		})
	}
}

func TestLoad(t *testing.T) {
	dir := newProject(t)
	path := filepath.Join(dir, "kiln.yaml")
	if err := os.WriteFile(path, []byte(localBase), 0o644); err != nil {
		t.Fatal(err)
	}
	// A relative path, as the CLI's default ./kiln.yaml is.
	t.Chdir(dir)
	c, err := Load("kiln.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != path || c.Dir != dir {
		t.Errorf("Path, Dir = %q, %q; want %q, %q", c.Path, c.Dir, path, dir)
	}
	// Messages name the file as the caller gave it.
	if err := os.WriteFile(path, []byte(localBase+"x: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load("kiln.yaml")
	if got := errorStrings(t, err); len(got) != 1 || !strings.HasPrefix(got[0], "kiln.yaml:7:1: x: unknown field") {
		t.Errorf("errors = %q", got)
	}
}

func TestLoadFileProblems(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// 100 MB of real content, not a sparse file: Load must refuse it by its
	// size without reading it.
	chunk := []byte(strings.Repeat("# padding padding padding padding\n", 30000))
	for written := 0; written < 100<<20; written += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(big)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, path, want string
		is               error
	}{
		{"missing", filepath.Join(dir, "nope.yaml"), "DIR/nope.yaml: cannot open: no such file or directory", fs.ErrNotExist},
		{"directory", dir, "DIR: is a directory; give the path of a kiln.yaml file", nil},
		{"too large", big, "DIR/big.yaml: file is " + itoa(info.Size()) + " bytes; a config may be at most 1 MiB (1048576 bytes)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c, err := Load(tc.path)
			elapsed := time.Since(start)
			want := []string{strings.ReplaceAll(tc.want, "DIR", dir)}
			if got := errorStrings(t, err); !slices.Equal(got, want) {
				t.Errorf("errors = %q, want %q", got, want)
			}
			if c != nil {
				t.Error("config returned with an error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(err, %v) = false", tc.is)
			}
			if elapsed > time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte(strings.Repeat("#", maxFileSize+1))
	_, err := Parse("kiln.yaml", data, t.TempDir())
	want := []string{"kiln.yaml: file is 1048577 bytes; a config may be at most 1 MiB (1048576 bytes)"}
	if got := errorStrings(t, err); !slices.Equal(got, want) {
		t.Errorf("errors = %q, want %q", got, want)
	}
	// Exactly the limit is fine as far as size goes.
	_, err = Parse("kiln.yaml", data[:maxFileSize], t.TempDir())
	if got := errorStrings(t, err); len(got) != 1 || strings.Contains(got[0], "1 MiB") {
		t.Errorf("errors at the limit = %q", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Positions count lines as YAML does, whatever the line breaks.
func TestLineBreaks(t *testing.T) {
	dir := newProject(t)
	for name, doc := range map[string]string{
		"CR LF": "project: demo\r\nregions: [r1, r2]\r\nx: \xff\r\n",
		"CR":    "project: demo\rregions: [r1, r2]\rx: \xff\r",
		"NEL":   "project: demo\u0085regions: [r1, r2]\u0085x: \xff\n",
	} {
		t.Run(name, func(t *testing.T) {
			wantErrors(t, doc, dir, []string{"kiln.yaml:3:4: invalid UTF-8 (byte 0xff); the file must be UTF-8 text"})
		})
	}
	wantErrors(t, "project: demo\r\nregions: [r1, r2]\r\nuse_cases: {u: {architectures: [x86_64], tests: [t.sh]}}\r\nx: 1\r\n", dir,
		[]string{"kiln.yaml:4:1: x: unknown field; allowed: backend, build_region, channels, ci, cleanup, cost_tag, deployments, destroy, distribution, forge, manifest_formats, naming, project, regions, serve, state, use_cases, variables"})
}
