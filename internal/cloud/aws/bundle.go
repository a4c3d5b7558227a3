package aws

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// A bundle is what an instance runs: a gzipped tar holding run.sh, the
// script that does the work, and the files it uses (the recipe's scripts,
// files, playbooks and tests, and the variables). The user data that
// starts the instance only fetches the bundle (or carries it, when it is
// small and no bucket is set), checks its sha256 and runs run.sh; so a
// recipe is limited by S3's object size, not by EC2's 16 KiB of user data.
//
// Bundles are byte for byte the same for the same recipe: entries sorted,
// times and owners fixed. A rerun after a crash stages the very bytes
// whose digest an instance started by the crashed attempt checks.
type bundle struct {
	data   []byte // the .tar.gz
	sha256 string // hex
	secret bool   // holds a secret variable's value
}

// bundleWriter collects a bundle's files.
type bundleWriter struct {
	files map[string]bundleFile
}

type bundleFile struct {
	data []byte
	mode fs.FileMode // permission bits; fs.ModeDir for a directory
}

func newBundleWriter() *bundleWriter { return &bundleWriter{files: map[string]bundleFile{}} }

func (w *bundleWriter) add(name string, data []byte, mode fs.FileMode) {
	w.files[name] = bundleFile{data: data, mode: mode}
}

// addTree adds the regular files, directories and symbolic links under
// root as name/..., keeping their permission bits.
func (w *bundleWriter) addTree(name, root string, skip func(string) bool) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if skip != nil && rel != "." && skip(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := path.Join(name, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			w.add(dst, nil, fs.ModeDir|info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			w.add(dst, []byte(target), fs.ModeSymlink|0o777)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			w.add(dst, data, info.Mode().Perm())
		}
		return nil
	})
}

// epoch is the time of every bundle entry.
var epoch = time.Unix(0, 0)

// finish packs the files, sorted by name.
func (w *bundleWriter) finish(secret bool) (bundle, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return bundle{}, err
	}
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(w.files))
	for name := range w.files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f := w.files[name]
		hdr := &tar.Header{Name: name, Mode: int64(f.mode.Perm()), ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case f.mode&fs.ModeDir != 0:
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		case f.mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(f.data)
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return bundle{}, err
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.data); err != nil {
				return bundle{}, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return bundle{}, err
	}
	if err := zw.Close(); err != nil {
		return bundle{}, err
	}
	sum := sha256.Sum256(buf.Bytes())
	return bundle{data: buf.Bytes(), sha256: hex.EncodeToString(sum[:]), secret: secret}, nil
}

// Paths inside a bundle.
const (
	bundleRun    = "run.sh"
	bundleVarEnv = "vars/vars.env"
)

func bundleStep(n int) string        { return fmt.Sprintf("steps/%d", n) }
func bundleExtraVars(n int) string   { return fmt.Sprintf("vars/ansible-%d.json", n) }
func bundleTest(n int) string        { return fmt.Sprintf("tests/%d", n) }
func bundlePlaybookDir(n int) string { return fmt.Sprintf("steps/%d/playbook", n) }

// provisionBundle is the bundle of a build: run.sh runs the recipe's
// steps in order (shell scripts with the recipe's variables in their
// environment, files and directories copied with their mode and owner,
// Ansible playbooks run locally with the variables and the step's
// extra_vars as extra vars from a file), then prints a PASS marker and
// powers the machine off, which stops the instance and tells the builder
// it is done. A failed step prints a FAIL marker naming it and powers off
// too. stateDir is left out of playbook directories.
func provisionBundle(dir, stateDir string, steps []config.Step, vars []cloud.Var) (bundle, error) {
	w := newBundleWriter()
	var s strings.Builder
	s.WriteString(scriptHead)
	s.WriteString(`m="KILN-BUILD""-RESULT"
kiln_fail() { kiln_say "$m: FAIL $1"; kiln_poweroff 1; }
set -u
bundle=$(cd "$(dirname "$0")" && pwd)
cd "$bundle" || kiln_fail "cannot enter the bundle"
export DEBIAN_FRONTEND=noninteractive
# The steps' output goes to the console, which kiln keeps (masking secret
# values), not to a log file on the disk that becomes the image.
exec >>"${KILN_OUT:-/dev/console}" 2>&1
`)
	secret := false
	if len(vars) > 0 {
		var env strings.Builder
		for _, v := range vars {
			fmt.Fprintf(&env, "export %s=%s\n", v.Name, shq(v.Value))
			secret = secret || v.Secret
		}
		w.add("vars", nil, fs.ModeDir|0o700)
		w.add(bundleVarEnv, []byte(env.String()), 0o600)
		s.WriteString(". \"$bundle/" + bundleVarEnv + "\" || kiln_fail \"cannot read the recipe's variables\"\n")
	}
	ansibleInstalled := false
	for i, st := range steps {
		n := i + 1
		field := fmt.Sprintf("provision[%d]", i)
		label := stepLabel(n, st)
		fmt.Fprintf(&s, "\n# step %d: %s\n", n, comment(label))
		switch {
		case st.Shell != "":
			data, err := readRecipeFile(dir, st.Shell)
			if err != nil {
				return bundle{}, fmt.Errorf("%s.shell: %w", field, err)
			}
			f := bundleStep(n) + "/" + path.Base(filepath.ToSlash(st.Shell))
			w.add(f, data, 0o755)
			fmt.Fprintf(&s, "(cd \"$bundle/%s\" && exec ./%s) || kiln_fail %s\n", bundleStep(n), shq(path.Base(f)), shq(label+" exited with status ")+`"$?"`)
		case st.File != nil:
			if err := fileStep(w, &s, dir, field, n, label, st.File); err != nil {
				return bundle{}, err
			}
		case st.Ansible != nil:
			if !ansibleInstalled {
				s.WriteString(installAnsible)
				ansibleInstalled = true
			}
			if err := ansibleStep(w, &s, dir, stateDir, field, n, label, st.Ansible, vars); err != nil {
				return bundle{}, err
			}
		default:
			return bundle{}, fmt.Errorf("%s: no shell, file or ansible set", field)
		}
	}
	s.WriteString(`
cd / && rm -rf "$bundle"
# cloud-init keeps the user data (the bundle itself when it is inline, the
# presigned URL otherwise) on the disk the image is made from.
cloud=${KILN_CLOUD_DIR:-/var/lib/cloud}
rm -f "$cloud"/instance/user-data.txt* "$cloud"/instances/*/user-data.txt* \
	"$cloud"/instance/scripts/part-* "$cloud"/instances/*/scripts/part-* 2>/dev/null
kiln_say "$m: PASS"
kiln_poweroff 0
`)
	w.add(bundleRun, []byte(s.String()), 0o755)
	return w.finish(secret)
}

func stepLabel(n int, st config.Step) string {
	if st.Name != "" {
		return fmt.Sprintf("step %d (%s)", n, st.Name)
	}
	return fmt.Sprintf("step %d", n)
}

var modeRE = regexp.MustCompile(`^[0-7]{3,4}$`)

func fileStep(w *bundleWriter, s *strings.Builder, dir, field string, n int, label string, f *config.FileStep) error {
	if f.Destination == "" || !strings.HasPrefix(f.Destination, "/") {
		return fmt.Errorf("%s.file.destination %q: want an absolute path inside the image", field, f.Destination)
	}
	if f.Mode != "" && !modeRE.MatchString(f.Mode) {
		return fmt.Errorf("%s.file.mode %q: want an octal mode such as 0644", field, f.Mode)
	}
	if err := inside(dir, f.Source); err != nil {
		return fmt.Errorf("%s.file.source: %w", field, err)
	}
	src := resolve(dir, f.Source)
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("%s.file.source %q: %w", field, f.Source, err)
	}
	owner := f.Owner
	if owner == "" {
		owner = "root:root"
	}
	dst := shq(f.Destination)
	fail := " || kiln_fail " + shq(label+": copy to "+f.Destination+" failed")
	from := "\"$bundle/" + bundleStep(n) + "/src\""
	if fi.IsDir() {
		if err := w.addTree(bundleStep(n)+"/src", src, nil); err != nil {
			return fmt.Errorf("%s.file.source %q: %w", field, f.Source, err)
		}
		fmt.Fprintf(s, "mkdir -p %s%s\n", dst, fail)
		fmt.Fprintf(s, "cp -R %s/. %s%s\n", from, dst, fail)
		fmt.Fprintf(s, "chown -R %s %s%s\n", shq(owner), dst, fail)
	} else {
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("%s.file.source %q: %w", field, f.Source, err)
		}
		w.add(bundleStep(n)+"/src", data, fi.Mode().Perm())
		fmt.Fprintf(s, "mkdir -p \"$(dirname %s)\"%s\n", dst, fail)
		fmt.Fprintf(s, "cp %s %s%s\n", from, dst, fail)
		fmt.Fprintf(s, "chown %s %s%s\n", shq(owner), dst, fail)
	}
	if f.Mode != "" {
		fmt.Fprintf(s, "chmod %s %s%s\n", f.Mode, dst, fail)
	}
	return nil
}

const installAnsible = `if ! command -v ansible-playbook >/dev/null 2>&1; then
	if command -v apt-get >/dev/null 2>&1; then
		apt-get update -q && apt-get install -y -q ansible
	elif command -v dnf >/dev/null 2>&1; then
		dnf install -y ansible-core || dnf install -y ansible
	elif command -v yum >/dev/null 2>&1; then
		yum install -y ansible
	elif command -v zypper >/dev/null 2>&1; then
		zypper --non-interactive install ansible
	fi
	command -v ansible-playbook >/dev/null 2>&1 || kiln_fail "could not install ansible"
fi
`

// ansibleStep bundles the playbook's directory (its roles, templates and
// files come along), unless that is the project directory itself, where
// only the playbook goes. Extra vars come from a file only root may read.
func ansibleStep(w *bundleWriter, s *strings.Builder, dir, stateDir, field string, n int, label string, a *config.AnsibleStep, vars []cloud.Var) error {
	play := resolve(dir, a.Playbook)
	if _, err := readRecipeFile(dir, a.Playbook); err != nil {
		return fmt.Errorf("%s.ansible.playbook: %w", field, err)
	}
	pdir := filepath.Dir(play)
	base := bundlePlaybookDir(n)
	if same(pdir, dir) {
		data, err := os.ReadFile(play)
		if err != nil {
			return fmt.Errorf("%s.ansible.playbook: %w", field, err)
		}
		w.add(base+"/"+filepath.Base(play), data, 0o644)
	} else {
		skip := func(p string) bool { return stateDir != "" && same(p, stateDir) }
		if err := w.addTree(base, pdir, skip); err != nil {
			return fmt.Errorf("%s.ansible.playbook %q: %w", field, a.Playbook, err)
		}
	}
	extra := cloud.ExtraVars(vars, a.ExtraVars)
	args, vf := "", ""
	if len(extra) > 0 {
		data, err := json.Marshal(extra)
		if err != nil {
			return fmt.Errorf("%s.ansible.extra_vars: %w", field, err)
		}
		w.add("vars", nil, fs.ModeDir|0o700)
		w.add(bundleExtraVars(n), data, 0o600)
		vf = "\"$bundle/" + bundleExtraVars(n) + "\""
		args = " -e @" + vf
	}
	fmt.Fprintf(s, "(cd \"$bundle/%s\" && ansible-playbook -i localhost, -c local%s %s); rc=$?\n",
		base, args, shq(filepath.Base(play)))
	if vf != "" {
		// Gone as soon as ansible is done with it, whatever happened.
		fmt.Fprintf(s, "rm -f %s\n", vf)
	}
	fmt.Fprintf(s, "[ \"$rc\" -eq 0 ] || kiln_fail %s\n", shq(label+" (ansible) exited with status ")+`"$rc"`)
	return nil
}

// same reports whether two paths name the same directory.
func same(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && filepath.Clean(aa) == filepath.Clean(bb)
}

// testBundle is the bundle of a boot test: run.sh runs each test in
// order with its output on the console, then one marker line says PASS
// or names the first failing test and its exit status, and the machine
// powers off.
func testBundle(dir string, tests []string) (bundle, error) {
	w := newBundleWriter()
	var s strings.Builder
	s.WriteString(scriptHead)
	s.WriteString(`m="KILN-TEST""-RESULT"
bundle=$(cd "$(dirname "$0")" && pwd)
out=${KILN_OUT:-/dev/console}
cd "$bundle" || { kiln_say "$m: FAIL setup 1"; kiln_poweroff 1; }
result=PASS
`)
	for i, t := range tests {
		data, err := readRecipeFile(dir, t)
		if err != nil {
			return bundle{}, fmt.Errorf("tests[%d]: %w", i, err)
		}
		n := i + 1
		f := bundleTest(n)
		w.add(f, data, 0o755)
		name := strings.ReplaceAll(t, " ", "_")
		fmt.Fprintf(&s, "\n# test %d: %s\n", n, comment(t))
		fmt.Fprintf(&s, "\"$bundle/%s\" >>\"$out\" 2>&1 </dev/null; rc=$?\n", f)
		fmt.Fprintf(&s, "if [ \"$result\" = PASS ] && [ \"$rc\" -ne 0 ]; then result=%s\"$rc\"; fi\n", shq("FAIL "+name+" "))
	}
	s.WriteString(`
cd / && rm -rf "$bundle"
kiln_say "$m: $result"
kiln_poweroff 0
`)
	w.add(bundleRun, []byte(s.String()), 0o755)
	return w.finish(false)
}
