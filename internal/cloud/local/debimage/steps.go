package debimage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// step is a validated provisioning step.
type step struct {
	n     int    // 1-based position
	label string // name, or kind and path
	kind  string // shell, file, ansible
	src   string // absolute host path: script, file or directory, playbook
	// shell
	shebang bool
	// file
	dest  string // absolute path in the image
	mode  string // octal, or "" to keep the source's
	owner string // user[:group]
	// ansible
	vars map[string]string
}

var (
	modeRE    = regexp.MustCompile(`^[0-7]{3,4}$`)
	ownerRE   = regexp.MustCompile(`^([a-z_][a-z0-9_.-]*\$?|[0-9]+)(:([a-z_][a-z0-9_.-]*\$?|[0-9]+))?$`)
	varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// parseSteps checks the recipe's steps against the files they name. Errors
// name the step and field and match cloud.ErrInvalid.
func parseSteps(dir string, in []config.Step) ([]step, error) {
	var errs []error
	var out []step
	for i, cs := range in {
		st, err := parseStep(dir, i+1, cs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, st)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, cloud.Mark(err, cloud.ErrInvalid)
	}
	return out, nil
}

func parseStep(dir string, n int, cs config.Step) (step, error) {
	st := step{n: n}
	where := fmt.Sprintf("step %d", n)
	if cs.Name != "" {
		where += fmt.Sprintf(" (%q)", cs.Name)
		if strings.ContainsFunc(cs.Name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return st, fmt.Errorf("%s: name %q: control characters are not allowed", where, cs.Name)
		}
	}
	set := 0
	for _, b := range []bool{cs.Shell != "", cs.File != nil, cs.Ansible != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return st, fmt.Errorf("%s: exactly one of shell, file and ansible must be set, found %d", where, set)
	}
	resolve := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(dir, p)
	}
	// Every file a step names is the project's: a path or link leading
	// out of it would copy a host file into the image.
	inside := func(p string) error {
		if dir == "" {
			return nil
		}
		_, err := config.ResolveInside(dir, p)
		return err
	}
	var err error
	switch {
	case cs.Shell != "":
		st.kind, st.label, st.src = "shell", "shell "+cs.Shell, resolve(cs.Shell)
		if err = inside(cs.Shell); err != nil {
			return st, fmt.Errorf("%s: shell: %w", where, err)
		}
		if err = wantFile(st.src, false); err != nil {
			return st, fmt.Errorf("%s: shell %q: %w", where, cs.Shell, err)
		}
		if st.shebang, err = hasShebang(st.src); err != nil {
			return st, fmt.Errorf("%s: shell %q: %w", where, cs.Shell, err)
		}
	case cs.File != nil:
		f := cs.File
		st.kind, st.label, st.src = "file", "file "+f.Source, resolve(f.Source)
		if f.Source == "" {
			return st, fmt.Errorf("%s: file.source: empty", where)
		}
		if err = inside(f.Source); err != nil {
			return st, fmt.Errorf("%s: file.source: %w", where, err)
		}
		if err = wantFile(st.src, true); err != nil {
			return st, fmt.Errorf("%s: file.source %q: %w", where, f.Source, err)
		}
		d := f.Destination
		if !path.IsAbs(d) || strings.ContainsAny(d, "\x00\n") {
			return st, fmt.Errorf("%s: file.destination %q: want an absolute path in the image", where, d)
		}
		if strings.HasSuffix(d, "/") {
			d += filepath.Base(st.src)
		}
		st.dest = path.Clean(d)
		if st.dest == "/" {
			return st, fmt.Errorf("%s: file.destination %q: cannot replace the root directory", where, f.Destination)
		}
		if f.Mode != "" && !modeRE.MatchString(f.Mode) {
			return st, fmt.Errorf("%s: file.mode %q: want 3 or 4 octal digits, e.g. 0644", where, f.Mode)
		}
		st.mode = f.Mode
		st.owner = f.Owner
		if st.owner == "" {
			st.owner = "root:root"
		} else if !ownerRE.MatchString(st.owner) {
			return st, fmt.Errorf("%s: file.owner %q: want user or user:group (names or numbers)", where, f.Owner)
		}
	case cs.Ansible != nil:
		a := cs.Ansible
		st.kind, st.label, st.src = "ansible", "ansible "+a.Playbook, resolve(a.Playbook)
		if a.Playbook == "" {
			return st, fmt.Errorf("%s: ansible.playbook: empty", where)
		}
		if err = inside(a.Playbook); err != nil {
			return st, fmt.Errorf("%s: ansible.playbook: %w", where, err)
		}
		if err = wantFile(st.src, false); err != nil {
			return st, fmt.Errorf("%s: ansible.playbook %q: %w", where, a.Playbook, err)
		}
		for k := range a.ExtraVars {
			if !varNameRE.MatchString(k) {
				return st, fmt.Errorf("%s: ansible.extra_vars: %q is not a valid variable name", where, k)
			}
		}
		st.vars = a.ExtraVars
	}
	if cs.Name != "" {
		st.label = cs.Name
	}
	return st, nil
}

// wantFile checks that p is a readable regular file, or a directory when
// dirOK.
func wantFile(p string, dirOK bool) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		return f.Close()
	case fi.IsDir() && dirOK:
		return nil
	case fi.IsDir():
		return fmt.Errorf("%s is a directory, want a file", p)
	default:
		return fmt.Errorf("%s is not a regular file", p)
	}
}

func hasShebang(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	b := make([]byte, 2)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, err
	}
	return n == 2 && string(b) == "#!", nil
}

// Paths inside the chroot while provisioning; mmdebstrap empties /tmp at
// the end, so none of it reaches the image.
const (
	chrootScratch  = "/tmp/kiln"
	chrootFileStep = chrootScratch + "/file-step"
	chrootAnsible  = chrootScratch + "/ansible"
)

func (st step) stage() string { return fmt.Sprintf("%s/steps/%d", chrootScratch, st.n) }

// staged is where the step's source lands in the chroot: copy-in keeps the
// base name.
func (st step) staged() string { return st.stage() + "/" + filepath.Base(st.src) }

// hooks returns the mmdebstrap --customize-hook arguments that run the step.
// The last one prints begin and end lines with nonce around the step's own
// output (see stepWatcher) and exits with the step's status. v says which
// variable files are in the chroot (vars.go).
func (st step) hooks(nonce string, v hookVars) []string {
	var hooks []string
	var cmd string
	switch st.kind {
	case "shell":
		hooks = append(hooks, "copy-in "+quote(st.src)+" "+st.stage())
		// The recipe's variables come from a file, never the command line.
		source := ""
		if v.env {
			source = ". " + chrootVarEnv + " && "
		}
		if st.shebang {
			cmd = `chroot "$1" /bin/sh -c '` + source + `chmod 0755 "$0" && exec "$0"' ` + quote(st.staged())
		} else if source != "" {
			cmd = `chroot "$1" /bin/sh -c '` + source + `exec /bin/sh -e "$0"' ` + quote(st.staged())
		} else {
			cmd = `chroot "$1" /bin/sh -e ` + quote(st.staged())
		}
	case "file":
		hooks = append(hooks, "copy-in "+quote(st.src)+" "+st.stage())
		cmd = `chroot "$1" /bin/sh ` + chrootFileStep + " " + quote(st.staged()) + " " +
			quote(st.dest) + " " + quote(st.mode) + " " + quote(st.owner)
	case "ansible":
		// ansible-playbook runs outside the chroot and reaches in with the
		// chroot connection; its home and temporary files stay in the
		// chroot's /tmp so that unshare mode needs no writable host path.
		env := strings.Join([]string{
			`HOME="$1` + chrootAnsible + `/home"`,
			`ANSIBLE_HOME="$1` + chrootAnsible + `/home"`,
			`ANSIBLE_LOCAL_TEMP="$1` + chrootAnsible + `/local"`,
			"ANSIBLE_REMOTE_TEMP=" + chrootAnsible + "/remote",
			"ANSIBLE_NOCOLOR=1",
			"ANSIBLE_FORCE_COLOR=0",
			"ANSIBLE_PYTHON_INTERPRETER=auto_silent",
			"ANSIBLE_RETRY_FILES_ENABLED=0",
		}, " ")
		cmd = "cd " + quote(filepath.Dir(st.src)) + " && " + env +
			` ansible-playbook -i "$1," -c community.general.chroot`
		if v.extra {
			// Extra vars (the recipe's variables and the step's own) from
			// a file only root reads, never on the command line.
			cmd += ` -e @"$1` + chrootExtraVars(st.n) + `"`
		}
		cmd += " " + quote(st.src)
		if v.extra {
			// Gone as soon as ansible is done with it, whatever happened.
			cmd += `; r=$?; rm -f "$1` + chrootExtraVars(st.n) + `"; exit "$r"`
		}
	}
	// The marker text is put together by printf: mmdebstrap echoes hook
	// commands, and the echo must not look like a marker.
	return append(hooks, fmt.Sprintf(
		`printf 'kiln-step %%s begin %%d\n' %[1]s %[2]d; (%[3]s); s=$?; printf 'kiln-step %%s end %%d %%d\n' %[1]s %[2]d "$s"; exit "$s"`,
		nonce, st.n, cmd))
}

// scratchDirs are the directories the steps need in the chroot.
func scratchDirs(steps []step) []string {
	dirs := []string{chrootAnsible + "/home", chrootAnsible + "/local", chrootAnsible + "/remote"}
	for _, st := range steps {
		dirs = append(dirs, st.stage())
	}
	return slices.Clip(dirs)
}
